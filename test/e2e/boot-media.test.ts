// Boot the media under QEMU (software emulation) and read what the fixture's
// initrd reports on the serial port: which menu entry the firmware's boot
// loader chose (its kernel command line), and whether the kickstart named by
// inst.ks= (or the OEMDRV medium) was found and read.
//
// The remastered fixture boots four ways (BIOS/UEFI x CD/USB stick); the
// unmodified fixture boots with oemdrv.iso as a second CD, waiting out RHEL's
// own 60 s menu timeout like a user would. Boots run two at a time.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { remasterIso } from '../../builder/media/iso.js'
import { buildOemdrv } from '../../builder/media/oemdrv.js'
import { prepareOvmfVars, runQemu, type Firmware, type QemuDrive } from '../../builder/tools/qemu.js'
import { FIXTURE_VOLID, fixtureIso } from '../helpers/fixture-iso.js'
import { limiter } from '../helpers/proc.js'

const KS = '#version=RHEL8 boot-test kickstart\ntext\neula --agreed\ncdrom\nreboot --eject\n'
const KS_FIRST = KS.split('\n')[0]!
const EPOCH = 1700000000
const KSARG = `inst.ks=hd:LABEL=${FIXTURE_VOLID}:/ks.cfg`
const BOOT_TIMEOUT_MS = 300_000

interface Boot {
  log: string
  ms: number
  code: number | null
}

const dir = t.testdir()

async function boot(name: string, firmware: Firmware, drives: QemuDrive[]): Promise<Boot> {
  const serialLog = join(dir, `${name}.serial.log`)
  const ovmfVars = join(dir, `${name}.vars.fd`)
  if (firmware === 'uefi') await prepareOvmfVars(ovmfVars)
  const start = Date.now()
  const r = await runQemu({ firmware, ovmfVars, drives, serialLog }, { timeoutMs: BOOT_TIMEOUT_MS })
  const log = (await readFile(serialLog, 'latin1').catch(() => '')).replace(/\x1b\[[0-9;?=]*[A-Za-z]|\x1bc/g, '')
  return { log, ms: Date.now() - start, code: r.code }
}

/** The report line that carries tag; firmware and GRUB output may precede it on the same line. */
function line(log: string, tag: string): string | undefined {
  const l = log.split(/\r?\n/).find((x) => x.includes(tag))
  return l?.slice(l.indexOf(tag)).trimEnd()
}

t.test('boot media under QEMU', async (t) => {
  const base = await fixtureIso()
  const remastered = join(dir, 'remastered.iso')
  const oemdrv = join(dir, 'oemdrv.iso')
  await remasterIso({ baseIso: base, outFile: remastered, ksText: KS, epoch: EPOCH })
  await buildOemdrv({ ksText: KS, outFile: oemdrv, epoch: EPOCH })

  // The OEMDRV boot idles in isolinux's 60 s menu, so it runs beside the pool.
  const oem = boot('oemdrv-bios-cd', 'bios', [
    { file: base, kind: 'cdrom', readonly: true },
    { file: oemdrv, kind: 'cdrom', readonly: true },
  ])
  const pool = limiter(2)
  const modes = [
    { name: 'bios-cd', firmware: 'bios', kind: 'cdrom', kernel: 'BOOT_IMAGE=vmlinuz ', dev: /\/dev\/sr0/ },
    { name: 'uefi-cd', firmware: 'uefi', kind: 'cdrom', kernel: 'BOOT_IMAGE=/images/pxeboot/vmlinuz ', dev: /\/dev\/sr0/ },
    { name: 'bios-usb', firmware: 'bios', kind: 'usb', kernel: 'BOOT_IMAGE=vmlinuz ', dev: /\/dev\/sd[a-z]\d*/ },
    { name: 'uefi-usb', firmware: 'uefi', kind: 'usb', kernel: 'BOOT_IMAGE=/images/pxeboot/vmlinuz ', dev: /\/dev\/sd[a-z]\d*/ },
  ] as const
  const runs = modes.map((m) => pool(() => boot(m.name, m.firmware, [{ file: remastered, kind: m.kind, readonly: true }])))
  runs.forEach((p) => p.catch(() => {}))

  for (const [i, m] of modes.entries()) {
    await t.test(`remastered ISO, ${m.name}: default entry is the unattended install and the kickstart is read`, async (t) => {
      const b = await runs[i]!
      t.comment(`${m.name}: ${(b.ms / 1000).toFixed(1)} s, qemu exit ${b.code}`)
      const cmdline = line(b.log, 'CMDLINE: ')
      t.ok(cmdline, 'the fixture initrd ran and reported its command line')
      t.ok(cmdline?.includes(m.kernel), `kernel from the ${m.firmware === 'bios' ? 'isolinux' : 'grub'} menu`)
      t.ok(cmdline?.includes(KSARG), 'inst.ks on the command line')
      t.notOk(cmdline?.includes('rd.live.check'), 'not the media-check entry')
      t.equal(line(b.log, 'STAGE2-FOUND: '), `STAGE2-FOUND: ${FIXTURE_VOLID}`, 'inst.stage2 label matches the medium')
      t.match(line(b.log, `MOUNTED: LABEL=${FIXTURE_VOLID} `) ?? '', m.dev, `medium seen as ${m.kind}`)
      t.equal(line(b.log, 'KS-FOUND: '), `KS-FOUND: ${KS_FIRST}`, 'kickstart found and read')
      t.equal(b.code, 0, 'guest powered off by itself')
      if (!line(b.log, 'KS-FOUND: ')) t.comment(b.log.slice(-3000))
    })
  }

  await t.test('unmodified fixture + oemdrv.iso: Anaconda-style OEMDRV discovery', async (t) => {
    const b = await oem
    t.comment(`oemdrv-bios-cd: ${(b.ms / 1000).toFixed(1)} s, qemu exit ${b.code}`)
    const cmdline = line(b.log, 'CMDLINE: ')
    t.ok(cmdline, 'booted')
    t.notOk(cmdline?.includes('inst.ks='), 'no inst.ks: the base ISO is untouched')
    t.match(line(b.log, 'MOUNTED: LABEL=OEMDRV ') ?? '', /\/dev\/sr1/, 'OEMDRV is the second CD')
    t.equal(line(b.log, 'OEMDRV-KS-FOUND: '), `OEMDRV-KS-FOUND: ${KS_FIRST}`)
    t.equal(b.code, 0)
    if (!line(b.log, 'OEMDRV-KS-FOUND: ')) t.comment(b.log.slice(-3000))
  })
})

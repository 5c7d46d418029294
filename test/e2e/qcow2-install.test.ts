// qcow2 path 2 with the RHEL-shaped fixture ISO: its busybox initrd stands in
// for Anaconda, reports whether it found the kickstart (inst.ks= on the
// remastered ISO, or the OEMDRV medium beside the stock ISO) and powers off,
// which is where a real install would start writing the disk.
import t from 'tap'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildQcow2ByInstall, kvmProbeBios } from '../../builder/media/qcow2-install.js'
import { remasterIso } from '../../builder/media/iso.js'
import { buildOemdrv } from '../../builder/media/oemdrv.js'
import { imageInfo } from '../../builder/tools/qemu-img.js'
import { sha256File } from '../../builder/hash.js'
import { fixtureIso } from '../helpers/fixture-iso.js'

const KS = '#version=RHEL8 mirror-appliance qcow2 install test\ntext\npoweroff\n'
const EPOCH = 1700000000

t.test('the KVM probe BIOS puts its code at the reset vector', async (t) => {
  const b = kvmProbeBios()
  t.equal(b.length, 65536)
  t.same([...b.subarray(0xfff0, 0xfff6)], [0xb0, 0x4b, 0xba, 0xf8, 0x03, 0xee], "mov al,'K'; mov dx,0x3f8; out dx,al")
})

t.test('install into a blank qcow2: remastered ISO, then stock ISO + OEMDRV', async (t) => {
  const dir = t.testdir()
  const iso = await fixtureIso()
  const remastered = join(dir, 'remastered.iso')
  await remasterIso({ baseIso: iso, outFile: remastered, ksText: KS, epoch: EPOCH })
  const oemdrv = join(dir, 'oemdrv.iso')
  await buildOemdrv({ ksText: KS, outFile: oemdrv, epoch: EPOCH })

  const cases = [
    { name: 'remastered ISO', iso: remastered, oemdrvIso: undefined, marker: 'KS-FOUND: #version=RHEL8 mirror-appliance' },
    { name: 'stock ISO + OEMDRV', iso, oemdrvIso: oemdrv, marker: 'OEMDRV-KS-FOUND: #version=RHEL8 mirror-appliance' },
  ]
  for (const c of cases) {
    const out = join(dir, `${c.name.replace(/\W+/g, '-')}.qcow2`)
    const lines: string[] = []
    const warnings: string[] = []
    const r = await buildQcow2ByInstall({
      iso: c.iso,
      oemdrvIso: c.oemdrvIso,
      outFile: out,
      sizeGiB: 2,
      timeoutMs: 240_000,
      memoryMb: 512,
      cpus: 1,
      onSerialLine: (l) => lines.push(l),
      onWarning: (w) => warnings.push(w),
    })
    t.comment(`path 2 (${c.name}) under ${r.accel}: ${r.seconds.toFixed(1)} s`)
    t.ok(
      lines.some((l) => l.startsWith(c.marker)),
      `${c.name}: the installer found the kickstart (serial: ${c.marker})`,
    )
    t.ok(lines.includes('FIXTURE-INIT-DONE'), 'serial lines streamed to the end')
    if (r.accel === 'tcg') t.match(warnings.join('\n'), /software emulation \(TCG\)/, 'the fallback to TCG is said out loud')
    else t.same(warnings, [])
    const info = await imageInfo(out)
    t.equal(info.format, 'qcow2')
    t.equal(info.virtualSize, 2 * 1024 ** 3, 'the disk has the asked size')
    t.equal(info.backingFile, undefined)
    t.equal(r.sha256, await sha256File(out))
  }
  t.same(
    (await readdir(dir)).filter((n) => n.startsWith('.')),
    [],
    'no scratch left',
  )
})

t.test('an install that does not power off in time leaves no output', async (t) => {
  const dir = t.testdir()
  const iso = await fixtureIso()
  const out = join(dir, 'slow.qcow2')
  await t.rejects(buildQcow2ByInstall({ iso, outFile: out, sizeGiB: 1, timeoutMs: 2000, memoryMb: 256, kvm: false }), {
    name: 'FailureError',
    message: /did not power off within 2 s/,
  })
  t.same(await readdir(dir), [], 'nothing written')
  await writeFile(join(dir, 'x'), '')
  await t.rejects(buildQcow2ByInstall({ iso: join(dir, 'missing.iso'), outFile: out, sizeGiB: 1, timeoutMs: 1000 }), {
    name: 'UserError',
    message: /does not exist/,
  })
})

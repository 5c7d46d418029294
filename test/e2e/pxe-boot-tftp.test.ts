// The GRUB2 (UEFI) and pxelinux (BIOS) entries of a single-host PXE tree,
// booted the way a site with a TFTP server boots them: slirp's built-in TFTP
// server holds the boot loader, its DHCP names it, the NIC's iPXE ROM chains
// it over TFTP, and the boot loader reads the tree's own entry (pxe/grub.cfg,
// pxe/pxelinux.cfg/default), whose kernel and initrd come by TFTP and whose
// inst.repo= and inst.ks= point at the tree served by `mirror-appliance serve`.
//
// The TFTP root is laid out as each template's comment tells a site to do:
// the tree at the root (images/, pxe/), pxelinux.cfg/ beside it, plus the
// boot loaders: a network GRUB built here with grub-mkimage (Debian's GRUB
// has linuxefi/initrdefi, as RHEL's grubx64.efi has), and Debian's
// lpxelinux.0 with ldlinux.c32.
import t from 'tap'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../../builder/exec.js'
import { fixtureIso } from '../helpers/fixture-iso.js'
import { freePort } from '../helpers/net.js'
import { buildAndServe, IPXE_ROM, line, netboot, type Boot, type NetBoot } from '../helpers/netboot.js'
import { limiter } from '../helpers/proc.js'

const PXELINUX = '/usr/lib/PXELINUX/lpxelinux.0'
const LDLINUX = '/usr/lib/syslinux/modules/bios/ldlinux.c32'
const GRUB_EFI_MODULES = '/usr/lib/grub/x86_64-efi'
/** slirp's host address: its DHCP names it as the next server (TFTP) */
const SERVER = '10.0.2.2'
const GRUB_MODULES = [
  'efinet',
  'net',
  'tftp',
  'normal',
  'configfile',
  'echo',
  'test',
  'true',
  'sleep',
  'linux',
  'linuxefi',
  'gzio',
  'efi_gop',
  'all_video',
  'serial',
  'terminal',
]
const env = { SOURCE_DATE_EPOCH: '1700000000' }

const dir = mkdtempSync(join(tmpdir(), 'pxe-boot-tftp-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const pool = limiter(2)
const qemus = new AbortController()
t.teardown(() => qemus.abort())

/**
 * A network GRUB for UEFI: its embedded config only copies the console to
 * the serial port (so the log shows GRUB's own errors) and points $prefix at
 * pxe/ on the TFTP server, so GRUB's normal mode reads the tree's
 * pxe/grub.cfg; the NIC is configured from the firmware's PXE DHCP answer
 * (efinet).
 */
async function grubNetEfi(out: string): Promise<void> {
  const early = join(dir, 'grub-early.cfg')
  writeFileSync(
    early,
    [
      'serial --unit=0 --speed=115200',
      'terminal_output --append serial',
      `set root=(tftp,${SERVER})`,
      `set prefix=(tftp,${SERVER})/pxe`,
      '',
    ].join('\n'),
  )
  await run(
    'grub-mkimage',
    ['-O', 'x86_64-efi', '-d', GRUB_EFI_MODULES, '-p', `(tftp,${SERVER})/pxe`, '-c', early, '-o', out, ...GRUB_MODULES],
    {
      env,
      why: 'to build a network GRUB for the UEFI PXE boot (grub-efi-amd64-bin)',
    },
  )
}

t.test('the GRUB2 and pxelinux entries boot from TFTP under QEMU (iPXE ROM chains the boot loader)', async (t) => {
  for (const f of [IPXE_ROM, PXELINUX, LDLINUX, GRUB_EFI_MODULES]) {
    if (!existsSync(f)) {
      t.fail(`${f} is missing: apt-get install ipxe-qemu pxelinux syslinux-common grub-efi-amd64-bin`)
      return
    }
  }
  const iso = await fixtureIso()
  const cfg = join(dir, 'appliance.yaml')
  writeFileSync(
    cfg,
    'apiVersion: mirror-appliance/v1\nhost:\n  hostname: pxe-tftp.lab.example\n  disk: {device: vda}\nregistry:\n  flavor: distribution\n',
  )
  const port = await freePort()
  const { tree, url } = await buildAndServe(
    t,
    [
      'build',
      '-c',
      cfg,
      '-o',
      join(dir, 'single'),
      '--iso',
      iso,
      '--pxe',
      '--pxe-url',
      `http://${SERVER}:${port}`,
      '--allow-missing',
      '--cache',
      join(dir, 'empty-cache'),
    ],
    env,
  )

  const tftp = join(dir, 'tftp')
  mkdirSync(tftp)
  symlinkSync(join(tree, 'images'), join(tftp, 'images'))
  symlinkSync(join(tree, 'pxe'), join(tftp, 'pxe'))
  symlinkSync(join(tree, 'pxe', 'pxelinux.cfg'), join(tftp, 'pxelinux.cfg'))
  copyFileSync(PXELINUX, join(tftp, 'lpxelinux.0'))
  copyFileSync(LDLINUX, join(tftp, 'ldlinux.c32'))
  await grubNetEfi(join(tftp, 'grubnetx64.efi'))

  const boots = {
    // 512 MiB: with 256, GRUB's linuxefi fails with "can't allocate kernel" (OVMF and iPXE hold too much of it)
    grub: { name: 'grub-uefi', firmware: 'uefi', tftp, bootfile: 'grubnetx64.efi', mac: '52:54:00:00:00:21', memoryMb: 512 },
    pxelinux: { name: 'pxelinux-bios', firmware: 'bios', tftp, bootfile: 'lpxelinux.0', mac: '52:54:00:00:00:22' },
  } satisfies Record<string, NetBoot>
  const runs = Object.fromEntries(
    Object.entries(boots).map(([k, b]) => [k, pool(() => netboot(b, { dir, signal: qemus.signal }))]),
  ) as Record<keyof typeof boots, Promise<Boot>>
  Object.values(runs).forEach((p) => p.catch(() => {}))

  const ksFirst = readFileSync(join(tree, 'ks.cfg'), 'utf8').split('\n')[0]!
  const entries = { grub: 'pxe/grub.cfg', pxelinux: 'pxe/pxelinux.cfg/default' } as const

  for (const key of ['grub', 'pxelinux'] as const) {
    await t.test(
      `${key} (${boots[key].firmware}): the tree's ${entries[key]} boots the installer, which finds the repo and our kickstart`,
      async (t) => {
        const b = await runs[key]
        t.comment(`${boots[key].name}: ${(b.ms / 1000).toFixed(1)} s, qemu exit ${b.code}`)
        if (key === 'grub')
          t.ok(
            b.log.includes("Booting `Install Red Hat Enterprise Linux 8 (unattended)'"),
            "GRUB read the tree's pxe/grub.cfg and booted its entry",
          )
        const cmdline = line(b.log, 'CMDLINE: ')
        t.ok(cmdline, `the kernel ${entries[key]} names ran the installer initrd`)
        t.match(cmdline ?? '', / ip=dhcp /, 'ip=dhcp')
        t.match(cmdline ?? '', ` inst.repo=${url}/repo `, "inst.repo is the tree's repo/")
        t.match(cmdline ?? '', ` inst.ks=${url}/ks.cfg`, "inst.ks is the tree's ks.cfg")
        t.equal(line(b.log, 'REPO-FOUND: '), 'REPO-FOUND: Red Hat Enterprise Linux 8.10', 'repo/.treeinfo served')
        t.equal(line(b.log, 'KS-FOUND: '), `KS-FOUND: ${ksFirst}`, 'kickstart fetched over HTTP')
        t.equal(line(b.log, 'KS-HOSTNAME: '), 'KS-HOSTNAME: pxe-tftp.lab.example', "and it is this config's kickstart")
        t.equal(b.code, 0, 'guest powered off by itself')
        if (!line(b.log, 'KS-HOSTNAME: ')) t.comment(b.log.slice(-3000))
      },
    )
  }
})

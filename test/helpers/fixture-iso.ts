// A small RHEL-8-shaped ISO for tests, built from Debian packages that are on
// this machine: the same volume id, isolinux menu, EFI grub.cfg, efiboot.img
// (FAT, label ANACONDA) and images/pxeboot layout as a real RHEL 8.10 DVD, with
// Debian's kernel and a busybox initrd whose /init (fixture-iso/init) stands in
// for Anaconda's kickstart discovery and reports on the serial port.
//
// Built once per machine and cached (the cache key covers every input), so the
// many tests that need it pay for it once. Builds go to a temp name and are
// renamed into place, so parallel test processes never see half an ISO.

import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { run } from '../../builder/exec.js'

export const FIXTURE_VOLID = 'RHEL-8-10-0-BaseOS-x86_64'
/** Fixed date for everything inside the fixture (2024-05-22, RHEL 8.10 GA). */
export const FIXTURE_EPOCH = 1716336000

const HERE = join(dirname(fileURLToPath(import.meta.url)), 'fixture-iso')
/** Bump when the build recipe below changes in a way the inputs do not show. */
const RECIPE = 4

/** Kernel modules the initrd loads (with their dependencies): CD, SATA/IDE, virtio, USB storage, ISO9660, FAT, the virtio NIC. */
const MODULES = [
  'cdrom',
  'isofs',
  'sr_mod',
  'sd_mod',
  'ata_piix',
  'ata_generic',
  'ahci',
  'virtio_pci',
  'virtio_blk',
  'virtio_scsi',
  'xhci-pci',
  'ehci-pci',
  'usb-storage',
  'uas',
  'crct10dif_generic',
  'fat',
  'vfat',
  'nls_cp437',
  'nls_iso8859-1',
  'nls_utf8',
  'virtio_net',
]
const BUSYBOX_APPLETS = [
  'sh',
  'mount',
  'cat',
  'findfs',
  'insmod',
  'sleep',
  'head',
  'mkdir',
  'poweroff',
  'printf',
  // network installs (inst.ks=http://…): DHCP, address and route, HTTP
  'udhcpc',
  'ifconfig',
  'route',
  'wget',
  'sed',
  'chmod',
]
const GRUB_MODULES = [
  'normal',
  'configfile',
  'echo',
  'test',
  'true',
  'sleep',
  'ls',
  'cat',
  'reboot',
  'halt',
  'search',
  'search_label',
  'search_fs_uuid',
  'search_fs_file',
  'iso9660',
  'fat',
  'part_gpt',
  'part_msdos',
  'linux',
  'linuxefi',
  'gzio',
  'ext2',
  'efi_gop',
  'efi_uga',
  'video_bochs',
  'video_cirrus',
  'all_video',
  'serial',
  'terminal',
  'regexp',
  'loadenv',
]

interface KernelInfo {
  version: string
  vmlinuz: string
  modulesDir: string
}

async function findKernel(): Promise<KernelInfo> {
  const names = (await readdir('/boot')).filter((n) => n.startsWith('vmlinuz-')).sort()
  const name = names.pop()
  if (!name) throw new Error('no /boot/vmlinuz-*: apt-get install linux-image-amd64')
  const version = name.slice('vmlinuz-'.length)
  return { version, vmlinuz: join('/boot', name), modulesDir: join('/lib/modules', version) }
}

/** Module paths (relative to the modules dir) in load order: dependencies first. */
export function moduleLoadOrder(depText: string, wanted: readonly string[]): string[] {
  const deps = new Map<string, string[]>()
  const byName = new Map<string, string>()
  for (const line of depText.split('\n')) {
    const [mod, rest] = line.split(':')
    if (!mod || rest === undefined) continue
    deps.set(mod, rest.trim().split(/\s+/).filter(Boolean))
    const base = mod
      .split('/')
      .pop()!
      .replace(/\.ko(\.\w+)?$/, '')
    byName.set(base, mod)
    byName.set(base.replace(/-/g, '_'), mod)
  }
  const order: string[] = []
  const seen = new Set<string>()
  const visit = (mod: string): void => {
    if (seen.has(mod)) return
    seen.add(mod)
    for (const d of deps.get(mod) ?? []) visit(d)
    order.push(mod)
  }
  for (const w of wanted) {
    const mod = byName.get(w) ?? byName.get(w.replace(/-/g, '_'))
    if (mod) visit(mod) // absent = built into this kernel, or not built at all
  }
  return order
}

async function setTimes(root: string, epoch: number): Promise<void> {
  const walk = async (p: string): Promise<void> => {
    const s = await stat(p)
    if (s.isDirectory()) for (const n of await readdir(p)) await walk(join(p, n))
    await utimes(p, epoch, epoch)
  }
  await walk(root)
}

async function listTree(root: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (p: string): Promise<void> => {
    for (const n of (await readdir(p, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = join(p, n.name)
      out.push(relative(root, full))
      if (n.isDirectory()) await walk(full)
    }
  }
  await walk(root)
  return out
}

async function buildInitrd(work: string, k: KernelInfo, outFile: string): Promise<void> {
  const root = join(work, 'initrd')
  for (const d of ['bin', 'proc', 'sys', 'dev', 'lib/modules']) await mkdir(join(root, d), { recursive: true })
  await copyFile('/bin/busybox', join(root, 'bin/busybox'))
  await chmod(join(root, 'bin/busybox'), 0o755)
  for (const a of BUSYBOX_APPLETS) await symlink('busybox', join(root, 'bin', a))
  await copyFile(join(HERE, 'init'), join(root, 'init'))
  await chmod(join(root, 'init'), 0o755)
  const order = moduleLoadOrder(await readFile(join(k.modulesDir, 'modules.dep'), 'utf8'), MODULES)
  for (const m of order) {
    await mkdir(dirname(join(root, 'lib/modules', m)), { recursive: true })
    await copyFile(join(k.modulesDir, m), join(root, 'lib/modules', m))
  }
  await writeFile(join(root, 'modules.order'), order.join('\n') + '\n')
  await setTimes(root, FIXTURE_EPOCH)
  const files = await listTree(root)
  await run('cpio', ['-o', '-H', 'newc', '-R', '0:0', '--reproducible', '--quiet', '-O', outFile], {
    cwd: root,
    input: files.join('\n') + '\n',
    why: 'to pack the fixture initrd',
  })
}

async function buildGrubEfi(outFile: string): Promise<void> {
  // Prefix /EFI/BOOT without a device: GRUB reads grub.cfg from the device it
  // was loaded from, like RHEL's grubx64.efi does.
  await run('grub-mkimage', ['-O', 'x86_64-efi', '-p', '/EFI/BOOT', '-o', outFile, ...GRUB_MODULES], {
    env: { SOURCE_DATE_EPOCH: String(FIXTURE_EPOCH) },
    why: 'to build the fixture EFI boot loader (grub-efi-amd64-bin)',
  })
}

async function buildEfiboot(efiBinary: string, grubCfg: string, outFile: string): Promise<void> {
  const kb = Math.ceil(((await stat(efiBinary)).size + (await stat(grubCfg)).size) / 1024) + 512
  await run('mkfs.fat', ['-C', '--invariant', '-i', '4e415c0d', '-n', 'ANACONDA', outFile, String(kb)], {
    env: { SOURCE_DATE_EPOCH: String(FIXTURE_EPOCH) },
    why: 'to make the fixture efiboot.img',
  })
  await run('mmd', ['-i', outFile, '::EFI', '::EFI/BOOT'], { env: { SOURCE_DATE_EPOCH: String(FIXTURE_EPOCH) } })
  await run('mcopy', ['-m', '-i', outFile, efiBinary, '::EFI/BOOT/BOOTX64.EFI'])
  await run('mcopy', ['-m', '-i', outFile, grubCfg, '::EFI/BOOT/grub.cfg'])
}

export interface FixtureOptions {
  /** Volume id to write (default the RHEL 8.10 one); the configs keep naming RHEL 8.10's. */
  volumeId?: string
}

/** Build the fixture ISO at outFile (not cached). */
export async function buildFixtureIso(outFile: string, opts: FixtureOptions = {}): Promise<void> {
  const k = await findKernel()
  const work = await mkdtemp(join(dirname(outFile), '.fixture-work-'))
  try {
    const tree = join(work, 'tree')
    for (const d of ['isolinux', 'EFI/BOOT', 'images/pxeboot']) await mkdir(join(tree, d), { recursive: true })
    await buildInitrd(work, k, join(tree, 'images/pxeboot/initrd.img'))
    await copyFile(k.vmlinuz, join(tree, 'images/pxeboot/vmlinuz'))
    await copyFile(join(tree, 'images/pxeboot/initrd.img'), join(tree, 'isolinux/initrd.img'))
    await copyFile(k.vmlinuz, join(tree, 'isolinux/vmlinuz'))
    await copyFile('/usr/lib/ISOLINUX/isolinux.bin', join(tree, 'isolinux/isolinux.bin'))
    for (const m of ['ldlinux.c32', 'vesamenu.c32', 'libcom32.c32', 'libutil.c32']) {
      await copyFile(join('/usr/lib/syslinux/modules/bios', m), join(tree, 'isolinux', m))
    }
    await copyFile(join(HERE, 'isolinux.cfg'), join(tree, 'isolinux/isolinux.cfg'))
    await writeFile(join(tree, 'isolinux/boot.msg'), '\nsplash.lss\n\n -  Press the 07<ENTER>07 key to begin the installation process.\n\n')
    await copyFile(join(HERE, 'grub.cfg'), join(tree, 'EFI/BOOT/grub.cfg'))
    await buildGrubEfi(join(tree, 'EFI/BOOT/BOOTX64.EFI'))
    await copyFile(join(tree, 'EFI/BOOT/BOOTX64.EFI'), join(tree, 'EFI/BOOT/grubx64.efi'))
    await utimes(join(tree, 'EFI/BOOT/BOOTX64.EFI'), FIXTURE_EPOCH, FIXTURE_EPOCH)
    await utimes(join(tree, 'EFI/BOOT/grub.cfg'), FIXTURE_EPOCH, FIXTURE_EPOCH)
    await buildEfiboot(join(tree, 'EFI/BOOT/BOOTX64.EFI'), join(tree, 'EFI/BOOT/grub.cfg'), join(tree, 'images/efiboot.img'))
    await writeFile(join(tree, '.discinfo'), `${FIXTURE_EPOCH}.000000\n8.10\nx86_64\n`)
    await writeFile(
      join(tree, '.treeinfo'),
      '[general]\narch = x86_64\nfamily = Red Hat Enterprise Linux\nname = Red Hat Enterprise Linux 8.10\nplatforms = x86_64,xen\nversion = 8.10\n\n' +
        '[images-x86_64]\nefiboot.img = images/efiboot.img\ninitrd = images/pxeboot/initrd.img\nkernel = images/pxeboot/vmlinuz\n',
    )
    await setTimes(tree, FIXTURE_EPOCH)
    const tmp = join(work, 'out.iso')
    const d = new Date(FIXTURE_EPOCH * 1000).toISOString().replace(/\D/g, '').slice(0, 14) + '00'
    await run(
      'xorriso',
      [
        '-as',
        'mkisofs',
        '-o',
        tmp,
        '-V',
        opts.volumeId ?? FIXTURE_VOLID,
        '-R',
        '-J',
        '-joliet-long',
        '-iso-level',
        '3',
        '--modification-date=' + d,
        '-isohybrid-mbr',
        '/usr/lib/ISOLINUX/isohdpfx.bin',
        '-b',
        'isolinux/isolinux.bin',
        '-c',
        'isolinux/boot.cat',
        '-no-emul-boot',
        '-boot-load-size',
        '4',
        '-boot-info-table',
        '-eltorito-alt-boot',
        '-e',
        'images/efiboot.img',
        '-no-emul-boot',
        '-isohybrid-gpt-basdat',
        tree,
      ],
      { env: { SOURCE_DATE_EPOCH: String(FIXTURE_EPOCH) }, why: 'to build the fixture ISO' },
    )
    await rename(tmp, outFile)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** Directory for cached test artefacts (override with MIRROR_APPLIANCE_TEST_CACHE). */
export function testCacheDir(): string {
  return process.env.MIRROR_APPLIANCE_TEST_CACHE ?? join(tmpdir(), 'mirror-appliance-test-cache')
}

async function cacheKey(opts: FixtureOptions): Promise<string> {
  const k = await findKernel()
  const h = createHash('sha256')
  h.update(JSON.stringify({ RECIPE, k, MODULES, BUSYBOX_APPLETS, GRUB_MODULES, opts }))
  for (const f of ['init', 'isolinux.cfg', 'grub.cfg']) h.update(await readFile(join(HERE, f)))
  h.update(String((await stat(k.vmlinuz)).size))
  return h.digest('hex').slice(0, 16)
}

/** Path of the cached fixture ISO, building it first if needed. Treat it as read-only. */
export async function fixtureIso(opts: FixtureOptions = {}): Promise<string> {
  const dir = testCacheDir()
  await mkdir(dir, { recursive: true })
  const file = join(dir, `rhel-fixture-${await cacheKey(opts)}.iso`)
  if (!existsSync(file)) await buildFixtureIso(file, opts)
  return file
}

// ---- reading ISOs in tests (through xorriso, as a user would) ----

/** Text of one file inside an ISO, extracted with xorriso (no mount). */
export async function readIsoFile(iso: string, path: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'iso-read-'))
  try {
    await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', path, join(dir, 'f')])
    return await readFile(join(dir, 'f'), 'utf8')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** `-find / -exec lsdl` listing of an ISO: path → size for files, -1 for directories. */
export async function listIso(iso: string): Promise<Map<string, number>> {
  const r = await run('xorriso', ['-indev', iso, '-find', '/', '-exec', 'lsdl', '--'])
  const out = new Map<string, number>()
  for (const line of r.stdout.split('\n')) {
    const m = /^([-d])\S{9}\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\d+\s+\S+\s+'(.*)'$/.exec(line)
    if (m) out.set(m[3]!.replace(/'"'"'/g, "'"), m[1] === 'd' ? -1 : Number(m[2]))
  }
  return out
}

/** Volume descriptor types from sector 16 on (1 primary, 2 supplementary/Joliet, 0 El Torito, 255 end) and whether Joliet's escape is there. */
export async function isoDescriptors(iso: string): Promise<{ types: number[]; joliet: boolean; rockRidge: boolean }> {
  const { open } = await import('node:fs/promises')
  const fh = await open(iso, 'r')
  try {
    const buf = Buffer.alloc(2048 * 64)
    await fh.read(buf, 0, buf.length, 16 * 2048)
    const types: number[] = []
    let joliet = false
    for (let s = 0; s < 64; s++) {
      const d = buf.subarray(s * 2048, (s + 1) * 2048)
      if (d.toString('latin1', 1, 6) !== 'CD001') break
      types.push(d[0]!)
      if (d[0] === 2 && /%\/[@CE]/.test(d.toString('latin1', 88, 91))) joliet = true
      if (d[0] === 255) break
    }
    const head = Buffer.alloc(2048 * 256)
    await fh.read(head, 0, head.length, 0)
    const rockRidge = head.includes('RRIP_1991A') || head.includes('IEEE_P1282')
    return { types, joliet, rockRidge }
  } finally {
    await fh.close()
  }
}

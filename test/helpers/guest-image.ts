// A bootable qcow2 that stands in for the RHEL 8 KVM guest image, built from
// Debian packages only (no Red Hat content exists here): Debian trixie with
// systemd, podman 5 (netavark + nftables, aardvark-dns, the quadlet
// generator), skopeo, cloud-init (NoCloud), openssh-server, sudo, curl and
// its own kernel. Commands RHEL has and Debian lacks get small named shims
// (GUEST_SHIMS), so the product's scripts run unchanged: they never branch on
// "test guest".
//
// Built without loop mounts: `debootstrap --include=…` into a directory (its
// second stage mounts /proc and /sys inside the target on its own), a few
// edits on the host, a tarball, then ONE guestfish session on a new qcow2
// (msdos label, one ext4 partition from 1 MiB, extlinux, syslinux's mbr.bin in
// the first 440 bytes): SeaBIOS boots it as it boots any disk, no -kernel.
// The qcow2 builder can inspect it (inspect-os), grow it (part-resize +
// resize2fs) and lay files in it like in the real image.
//
// guestRootTarball() is the tree before any disk (cached too), and
// guestImageFromRoot() writes variants of it (the kickstart route's root)
// with the same disk builder.
//
// Cached in testCacheDir() under a key over every input we control; built to
// a temp name and renamed; an exclusive lock directory (holding the builder's
// pid) makes parallel test processes wait for one build instead of each
// starting their own.

import { processAlive } from '../../builder/payload/lockfile.js'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { run } from '../../builder/exec.js'
import { GuestfishSession, gfLine } from '../../builder/tools/guestfish.js'
import { createImage } from '../../builder/tools/qemu-img.js'
import { testCacheDir } from './fixture-iso.js'

/** Bump when the recipe changes in a way the inputs below do not show. */
const RECIPE = 1
const SUITE = 'trixie'
/** The only host the build downloads from. */
const MIRROR = 'http://deb.debian.org/debian'
const IMAGE_BYTES = 3 * 1024 ** 3
/** Fixed, so that fstab and the boot loader can name the root file system before it exists. */
const ROOT_UUID = '6b1f4a52-3c1d-4e2a-9d0b-7a3c5e8f1d20'
const ROOT_LABEL = 'root'
const MBR_BIN = '/usr/lib/syslinux/mbr/mbr.bin'

/**
 * Everything the guest gets, as `debootstrap --include` (which follows
 * Depends only, so each needed package is named; python3-cffi-backend
 * provides a virtual package python3-cryptography needs, which debootstrap
 * cannot resolve on its own).
 */
const PACKAGES = [
  // init, devices, kernel (initramfs-tools' MODULES=most has virtio_blk and ext4; virtio_pci is built in)
  'systemd',
  'systemd-sysv',
  'udev',
  'dbus',
  'systemd-resolved',
  'kmod',
  'procps',
  'linux-image-amd64',
  'initramfs-tools',
  'e2fsprogs',
  // containers: netavark runs nft for every container network; aardvark-dns resolves container names
  'podman',
  'netavark',
  'aardvark-dns',
  'nftables',
  'crun',
  'conmon',
  'catatonit',
  'skopeo',
  // first boot: cloud-init renders DHCP for systemd-networkd (no ifupdown, no netplan here)
  'cloud-init',
  'python3-cffi-backend',
  'python3',
  'openssh-server',
  'openssh-sftp-server',
  'sudo',
  'iproute2',
  'curl',
  'openssl',
  'ca-certificates',
]

/** Versions GUEST_NOTE names (major.minor); the build fails if the archive ships others, so the note stays true. */
const EXPECTED = { podman: '5.4', netavark: '1.14', systemd: '257', 'cloud-init': '25.1', 'linux-image-amd64': '6.12' } as const

export const GUEST_NOTE =
  `Debian ${SUITE} stand-in for the RHEL 8 KVM guest image (podman ${EXPECTED.podman}, netavark ${EXPECTED.netavark}, ` +
  `systemd ${EXPECTED.systemd}, cloud-init ${EXPECTED['cloud-init']}, kernel ${EXPECTED['linux-image-amd64']}; ` +
  'no SELinux, no firewalld; RHEL-only commands are shims)'

const UPDATE_CA_TRUST = `#!/bin/sh
# Shim for RHEL's update-ca-trust in the Debian stand-in guest: every file in
# /etc/pki/ca-trust/source/anchors becomes trusted system-wide (Debian's
# bundle /etc/ssl/certs/ca-certificates.crt, which curl, podman and skopeo read).
set -eu
case "\${1:-extract}" in
  extract) ;;
  -h|--help) echo "usage: update-ca-trust [extract]  (Debian stand-in: copies anchors to /usr/local/share/ca-certificates)"; exit 0 ;;
  *) echo "update-ca-trust: unknown command: $1" >&2; exit 2 ;;
esac
src=/etc/pki/ca-trust/source/anchors
dest=/usr/local/share/ca-certificates/pki-ca-trust-anchors
rm -rf "$dest"
mkdir -p "$dest"
for f in "$src"/*; do
  [ -f "$f" ] || continue
  name=\${f##*/}
  cp "$f" "$dest/\${name%.*}.crt"
done
# RHEL's is silent; Debian's prints a rehash warning about its own bundle on every run.
if ! out=$(update-ca-certificates --fresh 2>&1); then
  printf '%s\n' "$out" >&2
  exit 1
fi
`

/** Files the recipe writes into the tree (path → text, mode). Symlinks are in LINKS. */
const FILES: Record<string, { text: string; mode: number }> = {
  'usr/bin/update-ca-trust': { text: UPDATE_CA_TRUST, mode: 0o755 },
  'etc/sudoers.d/wheel': { text: '## RHEL: allows people in group wheel to run all commands\n%wheel\tALL=(ALL)\tALL\n', mode: 0o440 },
  'etc/hostname': { text: 'localhost\n', mode: 0o644 },
  'etc/hosts': { text: '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n', mode: 0o644 },
  'etc/fstab': { text: `UUID=${ROOT_UUID}\t/\text4\tdefaults,errors=remount-ro\t0\t1\n`, mode: 0o644 },
  // RHEL's image defaults to overlay storage in /etc/containers/storage.conf.
  'etc/containers/storage.conf': {
    text: '[storage]\ndriver = "overlay"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n',
    mode: 0o644,
  },
  // Only NoCloud: probing cloud metadata services costs minutes under TCG.
  'etc/cloud/cloud.cfg.d/90-guest-image.cfg': { text: 'datasource_list: [ NoCloud, None ]\n', mode: 0o644 },
  // Like NetworkManager's automatic wired connection on RHEL: DHCP on any
  // ethernet NIC cloud-init configured nothing for (cloud-init's own 10-*.network files sort first).
  'etc/systemd/network/99-dhcp-fallback.network': { text: '[Match]\nName=e*\n\n[Network]\nDHCP=yes\n', mode: 0o644 },
  // No docs in packages installed later (the build removes what debootstrap laid down).
  'etc/dpkg/dpkg.cfg.d/01-nodoc': {
    text: 'path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\npath-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\npath-exclude=/usr/share/locale/*\n',
    mode: 0o644,
  },
}

const LINKS: Record<string, string> = {
  'usr/libexec/platform-python': '/usr/bin/python3',
  'etc/pki/tls/certs/ca-bundle.crt': '/etc/ssl/certs/ca-certificates.crt',
  'etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem': '/etc/ssl/certs/ca-certificates.crt',
}

const DIRS = ['etc/pki/ca-trust/source/anchors', 'usr/local/share/ca-certificates']

/** Units enabled in the guest (systemctl enable, offline in a chroot). */
const ENABLE = ['systemd-networkd.service', 'systemd-resolved.service']

/** The RHEL pieces the Debian guest gets, and why. Printed by the tests that boot it. */
export const GUEST_SHIMS: { path: string; why: string }[] = [
  {
    path: '/usr/bin/update-ca-trust',
    why: 'RHEL\'s "update-ca-trust extract" trusts /etc/pki/ca-trust/source/anchors/*; the shim copies them to /usr/local/share/ca-certificates and runs update-ca-certificates',
  },
  { path: '/etc/pki/ca-trust/source/anchors', why: "RHEL's anchor directory, where our scripts put the registry CA" },
  { path: '/usr/libexec/platform-python', why: "RHEL 8's system Python; a symlink to /usr/bin/python3" },
  { path: '/etc/sudoers.d/wheel', why: 'RHEL\'s sudoers has "%wheel ALL=(ALL) ALL" and Debian\'s does not; plus a wheel group' },
  { path: '/etc/pki/tls/certs/ca-bundle.crt', why: "RHEL's CA bundle path; a symlink to Debian's /etc/ssl/certs/ca-certificates.crt" },
  {
    path: '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
    why: "the bundle RHEL's update-ca-trust extracts; a symlink to Debian's bundle",
  },
  { path: '/etc/containers/storage.conf', why: 'overlay storage as configured on RHEL (Debian ships no storage.conf)' },
]

function extlinuxConf(kernel: string, initrd: string): string {
  return [
    'SERIAL 0 115200',
    'DEFAULT linux',
    'PROMPT 0',
    'TIMEOUT 0',
    'LABEL linux',
    `  LINUX /boot/${kernel}`,
    `  INITRD /boot/${initrd}`,
    // eth0 like RHEL's KVM image (which boots with net.ifnames=0); both consoles like RHEL's. QEMU's
    // floppy controller has no disk: probing it (udev, cloud-init's blkid) costs ~20 s under TCG.
    `  APPEND root=UUID=${ROOT_UUID} ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 modprobe.blacklist=floppy`,
    '',
  ].join('\n')
}

function cacheKey(): string {
  const h = createHash('sha256')
  h.update(
    JSON.stringify({
      RECIPE,
      SUITE,
      MIRROR,
      IMAGE_BYTES,
      ROOT_UUID,
      ROOT_LABEL,
      PACKAGES,
      EXPECTED,
      FILES,
      LINKS,
      DIRS,
      ENABLE,
      conf: extlinuxConf('K', 'I'),
    }),
  )
  h.update(readFileSync(fileURLToPath(import.meta.url)))
  h.update(readFileSync(MBR_BIN))
  return h.digest('hex').slice(0, 16)
}

// ---- mounts: never rm -rf a tree something is still mounted in ----

function mountsUnder(dir: string): string[] {
  const out: string[] = []
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4]
    if (!mp) continue
    const p = mp.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
    if (p === dir || p.startsWith(dir + '/')) out.push(p)
  }
  return out.sort((a, b) => b.length - a.length)
}

async function removeTree(dir: string): Promise<void> {
  for (const mp of mountsUnder(dir)) await run('umount', ['-l', mp], { nothrow: true, why: 'to release a mount debootstrap left' })
  const left = mountsUnder(dir)
  if (left.length) throw new Error(`not removing ${dir}: still mounted: ${left.join(', ')}`)
  await rm(dir, { recursive: true, force: true })
}

// ---- the build ----

/** Package → version from the tree's dpkg status file. */
async function installedVersions(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const stanza of (await readFile(join(root, 'var/lib/dpkg/status'), 'utf8')).split('\n\n')) {
    const pkg = /^Package: (\S+)$/m.exec(stanza)?.[1]
    const ver = /^Version: (\S+)$/m.exec(stanza)?.[1]
    if (pkg && ver && /^Status: install ok installed$/m.test(stanza)) out.set(pkg, ver)
  }
  return out
}

async function emptyDir(dir: string, keep: (name: string) => boolean = () => false): Promise<void> {
  for (const n of await readdir(dir).catch(() => [] as string[])) if (!keep(n)) await rm(join(dir, n), { recursive: true, force: true })
}

async function customize(root: string): Promise<{ kernel: string; initrd: string }> {
  const versions = await installedVersions(root)
  const wrong = Object.entries(EXPECTED).filter(
    ([p, v]) => !(versions.get(p) ?? '').replace(/^\d+:/, '').startsWith(v + '.') && versions.get(p) !== v,
  )
  if (wrong.length)
    throw new Error(
      `the guest has ${wrong.map(([p]) => `${p} ${versions.get(p) ?? '(missing)'}`).join(', ')}; GUEST_NOTE says ${wrong.map(([p, v]) => `${p} ${v}`).join(', ')}: update EXPECTED`,
    )
  for (const p of PACKAGES) if (!versions.has(p)) throw new Error(`debootstrap did not install ${p}`)

  for (const d of DIRS) await mkdir(join(root, d), { recursive: true, mode: 0o755 })
  for (const [p, f] of Object.entries(FILES)) {
    await mkdir(dirname(join(root, p)), { recursive: true })
    await writeFile(join(root, p), f.text)
    await chmod(join(root, p), f.mode)
  }
  for (const [p, target] of Object.entries(LINKS)) {
    await mkdir(dirname(join(root, p)), { recursive: true })
    await rm(join(root, p), { force: true })
    await symlink(target, join(root, p))
  }
  // chroot only runs programs; nothing is mounted for these.
  await run('chroot', [root, 'groupadd', '--system', 'wheel'], { why: 'to add the wheel group in the guest tree' })
  await run('chroot', [root, 'systemctl', 'enable', ...ENABLE], { why: 'to enable units in the guest tree' })

  // Per-instance identity is made at first boot, not baked in: host keys (sshd-keygen / cloud-init), machine id.
  for (const n of await readdir(join(root, 'etc/ssh'))) if (n.startsWith('ssh_host_')) await rm(join(root, 'etc/ssh', n))
  await writeFile(join(root, 'etc/machine-id'), '')
  await rm(join(root, 'var/lib/dbus/machine-id'), { force: true })
  // Small: no package cache, lists, docs (copyright stays), man pages, translations, logs.
  await emptyDir(join(root, 'var/cache/apt'))
  await emptyDir(join(root, 'var/lib/apt/lists'), (n) => n === 'partial')
  await emptyDir(join(root, 'usr/share/man'))
  await emptyDir(join(root, 'usr/share/info'))
  await emptyDir(join(root, 'usr/share/locale'), (n) => n === 'locale.alias')
  for (const d of await readdir(join(root, 'usr/share/doc'))) await emptyDir(join(root, 'usr/share/doc', d), (n) => n === 'copyright')
  for (const n of await readdir(join(root, 'var/log'))) {
    const p = join(root, 'var/log', n)
    if ((await lstat(p)).isFile()) await writeFile(p, '')
  }

  const kernel = basename(await readlink(join(root, 'vmlinuz')))
  const initrd = basename(await readlink(join(root, 'initrd.img')))
  for (const f of [kernel, initrd]) if (!existsSync(join(root, 'boot', f))) throw new Error(`no /boot/${f} in the guest tree`)
  // The initramfs must find the root disk: virtio_blk and ext4 as modules (or built in), virtio_pci built in here.
  const config = await readFile(join(root, 'boot', kernel.replace(/^vmlinuz-/, 'config-')), 'utf8')
  const inInitrd = (await run('chroot', [root, 'lsinitramfs', `/boot/${initrd}`], { why: 'to list the guest initramfs' })).stdout
  for (const [mod, opt] of [
    ['virtio_pci', 'VIRTIO_PCI'],
    ['virtio_blk', 'VIRTIO_BLK'],
    ['ext4', 'EXT4_FS'],
  ] as const) {
    if (!new RegExp(`^CONFIG_${opt}=y$`, 'm').test(config) && !new RegExp(`/${mod}\\.ko(\\.[a-z]+)?$`, 'm').test(inInitrd))
      throw new Error(`the guest initramfs ${initrd} has no ${mod} (and the kernel does not build it in)`)
  }
  await mkdir(join(root, 'boot/extlinux'), { recursive: true })
  await writeFile(join(root, 'boot/extlinux/extlinux.conf'), extlinuxConf(kernel, initrd))
  return { kernel, initrd }
}

/** A work directory beside the cache, which removeStaleWork clears if this process dies. */
const workDir = (dir: string) => mkdtemp(join(dir, `.guest-image-work-${process.pid}-`))
const secs = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(0)} s`

/** debootstrap + customize, packed as a tarball at outFile (numeric owners, xattrs). */
async function buildRootTarball(outFile: string, log: (line: string) => void): Promise<void> {
  const work = await workDir(dirname(outFile))
  try {
    const root = join(work, 'root')
    const t0 = Date.now()
    await run('debootstrap', [`--variant=minbase`, `--include=${PACKAGES.join(',')}`, '--components=main', SUITE, root, MIRROR], {
      why: 'to build the Debian guest that stands in for the RHEL 8 KVM image',
      timeoutMs: 45 * 60_000,
      env: { DEBIAN_FRONTEND: 'noninteractive' },
    })
    log(`debootstrap ${SUITE}: ${secs(t0)}`)
    if (mountsUnder(root).length) throw new Error(`debootstrap left mounts in ${root}: ${mountsUnder(root).join(', ')}`)
    const { kernel } = await customize(root)
    log(`kernel ${kernel}`)
    await packTree(root, join(work, 'root.tar'))
    await rename(join(work, 'root.tar'), outFile)
  } finally {
    await removeTree(work)
  }
}

async function packTree(root: string, tarball: string): Promise<void> {
  await run('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', root, '-cf', tarball, '.'], {
    why: 'to pack the guest tree',
  })
}

/**
 * The disk: a new qcow2 of sizeBytes, msdos label, one ext4 partition from
 * 1 MiB holding the tarball, extlinux and syslinux's MBR; ONE guestfish
 * session. Written to outFile by rename.
 */
async function writeGuestDisk(tarball: string, outFile: string, sizeBytes: number, log: (line: string) => void): Promise<void> {
  const work = await workDir(dirname(outFile))
  try {
    const t0 = Date.now()
    const img = join(work, 'guest.qcow2')
    await createImage(img, 'qcow2', sizeBytes)
    const gf = await GuestfishSession.start({ drives: [{ file: img, format: 'qcow2' }], workDir: work, timeoutMs: 30 * 60_000 })
    try {
      await gf.batch([
        gfLine('part-init', ['/dev/sda', 'mbr']),
        gfLine('part-add', ['/dev/sda', 'p', '2048', '-1']),
        gfLine('part-set-bootable', ['/dev/sda', '1', 'true']),
        gfLine('mke2fs', ['/dev/sda1'], { fstype: 'ext4', label: ROOT_LABEL, uuid: ROOT_UUID }),
        gfLine('mount', ['/dev/sda1', '/']),
        gfLine('tar-in', [tarball, '/'], { xattrs: true }),
        gfLine('extlinux', ['/boot/extlinux']),
        // syslinux's MBR code: loads the active partition's boot sector (extlinux's)
        gfLine('upload-offset', [MBR_BIN, '/dev/sda', '0']),
        gfLine('sync'),
        gfLine('umount-all'),
      ])
      const roots = (await gf.cmd('inspect-os')).trim()
      if (roots !== '/dev/sda1') throw new Error(`libguestfs inspection of the new guest found "${roots}", not /dev/sda1`)
      await gf.close()
    } catch (e) {
      await gf.kill()
      throw e
    }
    log(`guestfish (ext4 ${(sizeBytes / 1024 ** 3).toFixed(0)} GiB, tar-in, extlinux): ${secs(t0)}`)
    await rename(img, outFile)
  } finally {
    await removeTree(work)
  }
}

/** Remove what killed builders left: work dirs whose pid is gone. Called with the lock held. */
async function removeStaleWork(dir: string): Promise<void> {
  for (const n of await readdir(dir)) {
    const m = /^\.guest-image-work-(\d+)-/.exec(n)
    if (m && !processAlive(Number(m[1]))) await removeTree(join(dir, n))
  }
}

/** Take the lock directory; wait while a live process holds it. */
async function lock(lockDir: string, done: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs
  for (;;) {
    try {
      await mkdir(lockDir)
      await writeFile(join(lockDir, 'pid'), String(process.pid))
      return true
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    if (done()) return false
    const pid = Number(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => '0'))
    const age = Date.now() - ((await stat(lockDir).catch(() => null))?.mtimeMs ?? Date.now())
    if ((pid && !processAlive(pid)) || (!pid && age > 60_000)) {
      // Renamed first: only one waiter can take a stale lock away.
      const gone = `${lockDir}.stale-${randomBytes(4).toString('hex')}`
      if (
        await rename(lockDir, gone).then(
          () => true,
          () => false,
        )
      )
        await rm(gone, { recursive: true, force: true })
      continue
    }
    if (Date.now() > end) throw new Error(`timed out waiting for pid ${pid} to build the guest image (lock ${lockDir})`)
    await new Promise((r) => setTimeout(r, 2000))
  }
}

/**
 * file from the cache, or built by build(file) (which must write it by
 * rename) under an exclusive lock; what build logs goes to file.txt.
 */
async function cached(file: string, build: (file: string, log: (line: string) => void) => Promise<void>): Promise<string> {
  await mkdir(dirname(file), { recursive: true })
  if (existsSync(file)) return file
  const lockDir = `${file}.lock`
  if (!(await lock(lockDir, () => existsSync(file), 90 * 60_000))) return file
  try {
    if (!existsSync(file)) {
      await removeStaleWork(dirname(file))
      const t0 = Date.now()
      const notes: string[] = []
      await build(file, (l) => notes.push(l))
      // For people looking at the cache: what this file is and how long it took.
      notes.push(`total: ${secs(t0)}`)
      await writeFile(`${file}.txt`, `${GUEST_NOTE}\nbuilt ${new Date().toISOString()}\n${notes.join('\n')}\n`)
    }
  } finally {
    await rm(lockDir, { recursive: true, force: true })
  }
  return file
}

/** Memoize a promise for this process; forget it when it fails, so the next call tries again. */
function once(make: () => Promise<string>): () => Promise<string> {
  let pending: Promise<string> | undefined
  return () => {
    pending ??= make()
    pending.catch(() => (pending = undefined))
    return pending
  }
}

/**
 * The guest's root file system as a tarball (numeric owners, xattrs), cached
 * like the image: debootstrap plus every edit above, before any disk exists.
 */
export const guestRootTarball = once(() =>
  cached(join(testCacheDir(), `guest-trixie-${cacheKey()}.root.tar`), (file, log) => buildRootTarball(file, log)),
)

/**
 * Path of the cached guest qcow2, building it first if needed (5 minutes or
 * so). Read-only for callers: boot an overlay (qemu-img create -b), or pass
 * it as --base-image, which is only ever read.
 */
export const guestImage = once(async () => {
  const tarball = await guestRootTarball()
  return cached(join(testCacheDir(), `guest-trixie-${cacheKey()}.qcow2`), (file, log) => writeGuestDisk(tarball, file, IMAGE_BYTES, log))
})

export interface RootVariant {
  /** Names the variant in the cache file name: guest-trixie-NAME-KEY.qcow2 */
  name: string
  /** Every input of transform that the code does not show (e.g. a kickstart's sha256): part of the cache key */
  keyParts: string[]
  /** Edits the extracted guest root (run as root on this machine) */
  transform: (root: string, log: (line: string) => void) => Promise<void>
  /** Virtual size of the disk (default: the base guest's 3 GiB) */
  sizeBytes?: number
  /** Variant images of this name kept in the cache, newest first (default 2) */
  keep?: number
}

/**
 * A variant of the guest image: the cached root tarball extracted, edited by
 * transform, and written by the same disk builder as the guest image. Cached
 * under a key over the guest's own key and keyParts; returns the qcow2 and
 * the notes of its build (what transform logged; from the cache when it was
 * not built now). Older images of the same name beyond `keep` are removed.
 */
export async function guestImageFromRoot(v: RootVariant): Promise<{ file: string; notes: string }> {
  if (!/^[a-z0-9-]+$/.test(v.name)) throw new Error(`variant name ${v.name}: lower-case letters, digits and dashes only`)
  const key = createHash('sha256')
    .update(JSON.stringify([cacheKey(), v.name, v.sizeBytes ?? IMAGE_BYTES, v.keyParts]))
    .digest('hex')
    .slice(0, 16)
  const dir = testCacheDir()
  const tarball = await guestRootTarball()
  const file = await cached(join(dir, `guest-trixie-${v.name}-${key}.qcow2`), async (out, log) => {
    const work = await workDir(dir)
    try {
      const root = join(work, 'root')
      await mkdir(root)
      let t0 = Date.now()
      await run('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', root, '-xpf', tarball], {
        why: 'to unpack the guest tree',
      })
      log(`unpacked the guest root: ${secs(t0)}`)
      t0 = Date.now()
      await v.transform(root, log)
      log(`${v.name}: ${secs(t0)}`)
      if (mountsUnder(root).length) throw new Error(`the ${v.name} transform left mounts in ${root}: ${mountsUnder(root).join(', ')}`)
      await packTree(root, join(work, 'root.tar'))
      await removeTree(root)
      await writeGuestDisk(join(work, 'root.tar'), out, v.sizeBytes ?? IMAGE_BYTES, log)
    } finally {
      await removeTree(work)
    }
  })
  const mine = new RegExp(`^guest-trixie-${v.name}-[0-9a-f]{16}\\.qcow2$`)
  const others = (await readdir(dir)).filter((n) => mine.test(n) && join(dir, n) !== file && !existsSync(join(dir, `${n}.lock`)))
  const byAge = await Promise.all(others.map(async (n) => ({ n, t: (await stat(join(dir, n))).mtimeMs })))
  for (const { n } of byAge.sort((a, b) => b.t - a.t).slice(Math.max(0, (v.keep ?? 2) - 1)))
    for (const f of [n, `${n}.txt`]) await rm(join(dir, f), { force: true })
  return { file, notes: await readFile(`${file}.txt`, 'utf8').catch(() => '') }
}

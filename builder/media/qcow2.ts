// qcow2 path 1: a ready VM disk from a RHEL 8 KVM guest image. The user's
// base image is only ever read: we write into a qcow2 overlay on top of it, in
// ONE libguestfs session (the helper VM costs 15-25 s to start here), and at
// the end flatten the overlay into a standalone qcow2. Any failure throws the
// overlay away and leaves no output.
//
// What goes in: every HostSpec dir and file with exact mode, owner and
// SELinux type; the enable/disable symlinks systemctl would make; the
// firewalld ports as the zone file firewall-offline-cmd would write; the
// payload under /var/lib/mirror-appliance/payload; cloud-init disabled or a
// NoCloud seed; the root file system grown to the asked size; optionally a
// separate data disk (XFS a RHEL 8 kernel can mount) with its fstab line;
// /.autorelabel so SELinux labels everything we wrote at first boot.

import { randomUUID, createHash } from 'node:crypto'
import { mkdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, posix, resolve } from 'node:path'
import { withTemp } from '../atomic.js'
import { FailureError, UserError } from '../errors.js'
import { commandLine, requireTool, run } from '../exec.js'
import type { HostSpec } from '../plan/types.js'
import { needTool, type ToolNeed } from '../tool-needs.js'
import { PAYLOAD_DIR } from '../render/kickstart.js'
import { GuestfishSession, gfLine, parseStruct } from '../tools/guestfish.js'
import { convertImage, createOverlay, gib, imageInfo, resizeImage, type ImageFormat } from '../tools/qemu-img.js'
import { checkFreeSpace, checkOutFile, checkPayloadDir, throwIfAborted, treeSize, withScratchDir } from './common.js'
import { sha256File } from '../hash.js'
import {
  UNIT_DIRS,
  UNIT_NAME,
  defaultPublicZone,
  defaultZone,
  enableLinks,
  fstabWithMount,
  libvirtDomainXml,
  parseIds,
  parseInstallSection,
  renderNoCloud,
  resolveId,
  virtInstallArgs,
  zoneWithPorts,
  zoneWithoutServices,
  type NoCloudSeed,
  type Symlink,
} from './qcow2-host.js'

export { noCloudSeedFromPlan, type NoCloudSeed } from './qcow2-host.js'

/** The programs this writer runs: the build checks them before any work, `doctor` lists them (tool-needs.ts). */
export const QCOW2_IMAGE_TOOLS: readonly ToolNeed[] = [
  needTool('qemu-img', 'to make the VM disk from the guest image'),
  needTool('guestfish', 'to write into the VM disk (libguestfs)'),
  needTool('mkfifo', 'to feed guestfish its commands and the payload'),
  needTool('tar', 'to copy the payload into the VM disk'),
]
/** What a data disk (dataDisk) needs on top. */
export const QCOW2_DATA_DISK_TOOLS: readonly ToolNeed[] = [needTool('mkfs.xfs', "to make the data disk's file system")]

export interface DataDiskOptions {
  outFile: string
  sizeGiB: number
  /** Where the host mounts it: the registry data directory */
  mountPoint: string
}

export interface Qcow2Progress {
  step: string
  /** Rough percent of the whole build */
  percent: number
}

export interface Qcow2FromImageOptions {
  /** RHEL 8 KVM guest image (qcow2 or raw); never written */
  baseImage: string
  outFile: string
  host: HostSpec
  /** Directory copied to /var/lib/mirror-appliance/payload/ */
  payloadDir?: string
  /** Virtual size of the result; the root file system is grown to fill it. Default: the base's size */
  sizeGiB?: number
  dataDisk?: DataDiskOptions
  /** 'disable' writes /etc/cloud/cloud-init.disabled; a seed goes to /var/lib/cloud/seed/nocloud/ */
  cloudInit: 'disable' | { seed: NoCloudSeed }
  /** qemu-img convert -c: smaller file, slower first reads */
  compress?: boolean
  /** SOURCE_DATE_EPOCH: file times in the image and the data disk's UUID */
  epoch: number
  /** Name of the VM in the printed libvirt XML and virt-install line (default from outFile) */
  vmName?: string
  /** Replace existing output files */
  force?: boolean
  /** Let libguestfs use KVM (default: software emulation, which always works) */
  kvm?: boolean
  signal?: AbortSignal
  onProgress?: (p: Qcow2Progress) => void
}

export interface Qcow2Result {
  outFile: string
  sha256: string
  dataDisk?: { outFile: string; sha256: string; uuid: string }
  /** Things the user should know (no firewalld in the image, units not found …) */
  warnings: string[]
  /** libvirt domain XML for the result */
  domainXml: string
  /** virt-install --import command line, ready to paste */
  virtInstall: string
}

const GUEST_PAYLOAD_DIR = PAYLOAD_DIR
const DATA_LABEL = 'mirror-data'

function checkGuestPath(p: string, what: string): void {
  if (!p.startsWith('/') || p.split('/').some((s) => s === '..' || s === '.') || /[\0\n]/.test(p) || p !== posix.normalize(p) || p === '/')
    throw new UserError(`${what}: "${p}" is not a clean absolute path`)
}

/** Every problem with the inputs, before any work. */
async function checkInputs(o: Qcow2FromImageOptions): Promise<{ format: ImageFormat; virtualSize: number }> {
  if (!Number.isInteger(o.epoch) || o.epoch < 0) throw new UserError(`epoch must be a non-negative integer, got ${o.epoch}`)
  const s = await stat(o.baseImage).catch(() => null)
  if (!s) throw new UserError(`base image ${o.baseImage} does not exist`)
  if (!s.isFile()) throw new UserError(`base image ${o.baseImage} is not a file`)
  const info = await imageInfo(o.baseImage, o.signal)
  if (info.format !== 'qcow2' && info.format !== 'raw')
    throw new UserError(`base image ${o.baseImage} is ${info.format}; a qcow2 or raw image is needed`)
  const problems: string[] = []
  if (resolve(o.outFile) === resolve(o.baseImage)) problems.push('the output cannot be the base image')
  if (o.sizeGiB !== undefined && !(o.sizeGiB > 0 && gib(o.sizeGiB) >= info.virtualSize))
    problems.push(
      `size ${o.sizeGiB} GiB is smaller than the base image (${(info.virtualSize / 1024 ** 3).toFixed(2)} GiB); images can grow, not shrink`,
    )
  for (const d of o.host.dirs) {
    try {
      checkGuestPath(d.path, 'host dir')
    } catch (e) {
      problems.push((e as Error).message)
    }
  }
  for (const f of o.host.files) {
    try {
      checkGuestPath(f.path, 'host file')
    } catch (e) {
      problems.push((e as Error).message)
    }
  }
  for (const u of [...o.host.enableUnits, ...o.host.disableUnits])
    if (!UNIT_NAME.test(u)) problems.push(`"${u}" is not a systemd unit name`)
  if (o.dataDisk) {
    if (!(o.dataDisk.sizeGiB >= 1)) problems.push(`data disk size must be at least 1 GiB, got ${o.dataDisk.sizeGiB}`)
    try {
      checkGuestPath(o.dataDisk.mountPoint, 'data disk mount point')
    } catch (e) {
      problems.push((e as Error).message)
    }
    if (resolve(o.dataDisk.outFile) === resolve(o.outFile)) problems.push('the data disk and the system disk need different file names')
  }
  if (problems.length) throw new UserError(problems.join('\n  '))
  await checkOutFile(o.outFile, o.force)
  if (o.dataDisk) await checkOutFile(o.dataDisk.outFile, o.force)
  await checkPayloadDir(o.payloadDir)
  return { format: info.format, virtualSize: info.virtualSize }
}

/** UUID for the data disk file system: stable for the same epoch and mount point. */
function dataUuid(epoch: number, mountPoint: string): string {
  const h = createHash('sha256').update(`mirror-appliance data ${epoch} ${mountPoint}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

/** mkfs.xfs arguments for a file system a RHEL 8 kernel can mount (no bigtime, no inobtcount). */
export function dataDiskMkfsArgs(file: string, uuid: string): string[] {
  return ['-q', '-f', '-L', DATA_LABEL, '-m', `bigtime=0,inobtcount=0,uuid=${uuid}`, file]
}

interface Layout {
  rootDev: string
  /** mount point → device, mounted shortest first */
  mounts: [string, string][]
  fsType: string
  /** whole disk and partition number of the root file system, if on a partition */
  disk?: string
  partnum?: number
}

async function findLayout(gf: GuestfishSession): Promise<Layout> {
  const roots = (await gf.cmd('inspect-os')).split('\n').filter(Boolean)
  if (roots.length === 0)
    throw new UserError('no Linux installation found in the base image (libguestfs inspection found no root file system)')
  if (roots.length > 1) throw new UserError(`the base image holds ${roots.length} operating systems (${roots.join(', ')}); one is needed`)
  const rootDev = roots[0]!
  const mounts = (await gf.cmd('inspect-get-mountpoints', rootDev))
    .split('\n')
    .map((l) => /^(\/\S*): (\S+)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1]!, m[2]!] as [string, string])
    .sort((a, b) => a[0].length - b[0].length)
  const fsType = (await gf.cmd('vfs-type', rootDev)).trim()
  const layout: Layout = { rootDev, mounts, fsType }
  if (/^\/dev\/[a-z]+d[a-z]\d+$/.test(rootDev)) {
    layout.disk = (await gf.cmd('part-to-dev', rootDev)).trim()
    layout.partnum = Number((await gf.cmd('part-to-partnum', rootDev)).trim())
  }
  return layout
}

/** Grow the root partition to the end of the (already enlarged) disk, and the file system after it is mounted. */
async function growRootPartition(gf: GuestfishSession, l: Layout): Promise<void> {
  if (!l.disk || !l.partnum)
    throw new UserError(
      `cannot grow the root file system ${l.rootDev}: it is not on a plain partition (LVM or whole disk); build without a size`,
    )
  const parts = parseStructs(await gf.cmd('part-list', l.disk))
  const last = Math.max(...parts.map((p) => Number(p.part_num)))
  if (last !== l.partnum)
    throw new UserError(`cannot grow the root file system: ${l.rootDev} is not the last partition on ${l.disk}; build without a size`)
  const table = (await gf.cmd('part-get-parttype', l.disk)).trim()
  if (table === 'gpt') await gf.batch([gfLine('part-expand-gpt', [l.disk]), gfLine('part-resize', [l.disk, String(l.partnum), '-34'])])
  else await gf.batch([gfLine('part-resize', [l.disk, String(l.partnum), '-1'])])
  if (l.fsType.startsWith('ext')) await gf.batch([gfLine('e2fsck-f', [l.rootDev]), gfLine('resize2fs', [l.rootDev])])
  else if (l.fsType !== 'xfs') throw new UserError(`cannot grow a ${l.fsType} root file system`)
}

/** guestfish prints a list of structs as `[0] = { … }` blocks. */
function parseStructs(text: string): Record<string, string>[] {
  return text
    .split(/^\[\d+\] = \{$/m)
    .slice(1)
    .map((b) => parseStruct(b))
}

const isTrue = (s: string): boolean => s.trim() === 'true'

export async function buildQcow2FromImage(o: Qcow2FromImageOptions): Promise<Qcow2Result> {
  const progress = (step: string, percent: number) => o.onProgress?.({ step, percent })
  progress('checking inputs', 0)
  const base = await checkInputs(o)
  const payloadBytes = o.payloadDir ? await treeSize(o.payloadDir) : 0
  const hostBytes = o.host.files.reduce((n, f) => n + Buffer.byteLength(f.contents), 0)
  // Overlay + output both hold the payload; the output also holds the base's used blocks.
  await checkFreeSpace(dirname(resolve(o.outFile)), 2 * (payloadBytes + hostBytes) + base.virtualSize / 4, o.outFile)
  if (o.dataDisk) for (const n of QCOW2_DATA_DISK_TOOLS) await requireTool(n.tool, n.for)
  throwIfAborted(o.signal)
  const warnings: string[] = []
  const baseImage = resolve(o.baseImage)
  const seed = o.cloudInit === 'disable' ? null : renderNoCloud(o.cloudInit.seed)

  const result = await withScratchDir(
    async (scratch) => {
      const overlay = join(scratch, 'system.qcow2')
      await createOverlay(overlay, baseImage, base.format, o.signal)
      const grow = o.sizeGiB !== undefined && gib(o.sizeGiB) > base.virtualSize
      if (grow) await resizeImage(overlay, 'qcow2', gib(o.sizeGiB!), o.signal)

      let dataRaw: string | undefined
      let uuid: string | undefined
      if (o.dataDisk) {
        dataRaw = join(scratch, 'data.raw')
        uuid = dataUuid(o.epoch, o.dataDisk.mountPoint)
        await writeFile(dataRaw, '')
        await truncate(dataRaw, gib(o.dataDisk.sizeGiB))
        await run('mkfs.xfs', dataDiskMkfsArgs(dataRaw, uuid), { why: 'to make the data disk file system', signal: o.signal })
      }

      // Host file contents go through local files (upload), never through the script.
      const local = join(scratch, 'files')
      await mkdir(local, { mode: 0o700 })
      const uploads = await Promise.all(
        o.host.files.map(async (f, i) => {
          const p = join(local, String(i))
          await writeFile(p, f.contents, { mode: 0o600 })
          return p
        }),
      )

      progress('starting libguestfs (helper VM)', 5)
      const gf = await GuestfishSession.start({
        drives: [
          { file: overlay, format: 'qcow2', discard: true },
          ...(dataRaw ? [{ file: dataRaw, format: 'raw' as const, discard: true }] : []),
        ],
        workDir: scratch,
        kvm: o.kvm,
        signal: o.signal,
      })
      try {
        progress('inspecting the base image', 30)
        const layout = await findLayout(gf)
        if (grow) await growRootPartition(gf, layout)
        await gf.batch(layout.mounts.map(([mp, dev]) => gfLine('mount', [dev, mp])))
        if (grow && layout.fsType === 'xfs') await gf.cmd('xfs-growfs', '/')

        const exists = async (p: string) => isTrue(await gf.cmd('exists', p))
        // download, not cat: guestfish's cat adds a newline, and files we rewrite must keep their bytes.
        let reads = 0
        const cat = async (p: string): Promise<string | undefined> => {
          if (!(await exists(p))) return undefined
          const local = join(scratch, `read-${reads++}`)
          await gf.cmd('download', p, local)
          return readFile(local, 'utf8')
        }
        const users = parseIds((await cat('/etc/passwd')) ?? '')
        const groups = parseIds((await cat('/etc/group')) ?? '')
        const uid = (n: string, path: string) => String(resolveId(n, users, 'user', path))
        const gidOf = (n: string, path: string) => String(resolveId(n, groups, 'group', path))
        const ts = String(o.epoch)
        const lines: string[] = []
        const setMeta = (path: string, mode: number, owner: string, group: string, selinuxType?: string) => {
          lines.push(gfLine('chmod', ['0' + mode.toString(8), path]), gfLine('chown', [uid(owner, path), gidOf(group, path), path]))
          if (selinuxType) {
            if (!/^[a-z0-9_]+$/.test(selinuxType)) throw new UserError(`${path}: "${selinuxType}" is not an SELinux type`)
            const label = `system_u:object_r:${selinuxType}:s0`
            lines.push(gfLine('lsetxattr', ['security.selinux', label, String(Buffer.byteLength(label)), path]))
          }
        }
        const touchTime = (path: string) => lines.push(gfLine('utimens', [path, ts, '0', ts, '0']))

        // The data disk first, so that dirs and files under its mount point land on it.
        if (o.dataDisk && dataRaw) {
          const mp = o.dataDisk.mountPoint
          const spec = o.host.dirs.find((d) => d.path === mp)
          await gf.batch([gfLine('mkdir-p', [mp]), gfLine('mount', ['/dev/sdb', mp])])
          if (spec) setMeta(mp, spec.mode, spec.owner, spec.group, spec.selinuxType)
          else setMeta(mp, 0o755, 'root', 'root')
          const fstab = fstabWithMount((await cat('/etc/fstab')) ?? '', uuid!, mp)
          const p = join(scratch, 'fstab')
          await writeFile(p, fstab)
          lines.push(
            gfLine('upload', [p, '/etc/fstab']),
            gfLine('chmod', ['0644', '/etc/fstab']),
            gfLine('chown', ['0', '0', '/etc/fstab']),
          )
        }

        progress('writing the host files', 40)
        for (const d of [...o.host.dirs].sort((a, b) => a.path.split('/').length - b.path.split('/').length)) {
          lines.push(gfLine('mkdir-p', [d.path]))
          setMeta(d.path, d.mode, d.owner, d.group, d.selinuxType)
        }
        o.host.files.forEach((f, i) => {
          lines.push(gfLine('mkdir-p', [posix.dirname(f.path)]), gfLine('upload', [uploads[i]!, f.path]))
          setMeta(f.path, f.mode, f.owner, f.group, f.selinuxType)
          touchTime(f.path)
        })
        await gf.batch(lines)
        lines.length = 0

        // systemctl enable: links from the [Install] section of each unit file.
        const specFiles = new Map(o.host.files.map((f) => [f.path, f]))
        const links: Symlink[] = []
        for (const unit of o.host.enableUnits) {
          let unitPath: string | undefined
          let text: string | undefined
          for (const dir of UNIT_DIRS) {
            const p = `${dir}/${unit}`
            const spec = specFiles.get(p)
            if (spec) [unitPath, text] = [p, Buffer.from(spec.contents).toString('utf8')]
            else if (await exists(p)) [unitPath, text] = [p, (await cat(p))!]
            if (unitPath) break
          }
          if (!unitPath || text === undefined) {
            warnings.push(`unit ${unit} is not in the image or the host spec: not enabled`)
            continue
          }
          const install = parseInstallSection(text)
          const l = enableLinks(unit, unitPath.replace(/^\/lib\//, '/usr/lib/'), install)
          if (l.length === 0) warnings.push(`unit ${unit} has no [Install] section: nothing to enable`)
          links.push(...l)
        }
        for (const s of links) lines.push(gfLine('mkdir-p', [posix.dirname(s.link)]), gfLine('ln-sf', [s.target, s.link]))
        if (o.host.disableUnits.length) {
          const found = (await gf.cmd('find', '/etc/systemd/system')).split('\n').filter(Boolean)
          for (const rel of found.map((f) => f.replace(/^\//, ''))) {
            const parts = rel.split('/')
            if (parts.length === 2 && /\.(wants|requires)$/.test(parts[0]!) && o.host.disableUnits.includes(parts[1]!))
              lines.push(gfLine('rm-f', [`/etc/systemd/system/${rel}`]))
          }
        }

        // firewalld: what firewall-offline-cmd --add-port/--remove-service writes: the default zone copied to /etc, the ports added, RHEL's extra services removed.
        if (o.host.firewallPorts.length) {
          if ((await exists('/usr/lib/firewalld')) || (await exists('/etc/firewalld'))) {
            const zone = defaultZone(await cat('/etc/firewalld/firewalld.conf'))
            if (!/^[A-Za-z0-9_-]+$/.test(zone)) throw new UserError(`firewalld default zone "${zone}" in the base image is not a zone name`)
            const etc = `/etc/firewalld/zones/${zone}.xml`
            const xml =
              (await cat(etc)) ??
              (await cat(`/usr/lib/firewalld/zones/${zone}.xml`)) ??
              (zone === 'public' ? defaultPublicZone() : undefined)
            if (xml === undefined) throw new UserError(`the base image's firewalld default zone "${zone}" has no zone file`)
            const p = join(scratch, 'zone.xml')
            await writeFile(p, zoneWithoutServices(zoneWithPorts(xml, o.host.firewallPorts), o.host.firewallRemoveServices ?? []))
            lines.push(
              gfLine('mkdir-p', ['/etc/firewalld/zones']),
              gfLine('upload', [p, etc]),
              gfLine('chmod', ['0644', etc]),
              gfLine('chown', ['0', '0', etc]),
            )
          } else {
            warnings.push(
              `firewalld is not installed in the base image: ports ${o.host.firewallPorts.join(', ')} are not filtered and were not opened in a zone`,
            )
          }
        }

        // cloud-init
        if (seed === null) {
          const p = join(scratch, 'empty')
          await writeFile(p, '')
          lines.push(
            gfLine('mkdir-p', ['/etc/cloud']),
            gfLine('upload', [p, '/etc/cloud/cloud-init.disabled']),
            gfLine('chmod', ['0644', '/etc/cloud/cloud-init.disabled']),
            gfLine('chown', ['0', '0', '/etc/cloud/cloud-init.disabled']),
          )
        } else {
          if (!(await exists('/etc/cloud')))
            warnings.push(
              'cloud-init does not seem to be installed in the base image (/etc/cloud is missing): the NoCloud seed will not be read',
            )
          const dir = '/var/lib/cloud/seed/nocloud'
          lines.push(gfLine('mkdir-p', [dir]), gfLine('chmod', ['0700', dir]))
          for (const [name, text] of Object.entries(seed)) {
            if (text === undefined) continue
            const p = join(scratch, `seed-${name}`)
            await writeFile(p, text)
            lines.push(
              gfLine('upload', [p, `${dir}/${name}`]),
              gfLine('chmod', ['0600', `${dir}/${name}`]),
              gfLine('chown', ['0', '0', `${dir}/${name}`]),
            )
          }
        }
        if (!(await exists('/usr/bin/podman')))
          warnings.push(
            'podman is not installed in the base image (/usr/bin/podman): the registry cannot start; use an image with the container-tools packages',
          )
        await gf.batch(lines)
        lines.length = 0

        if (o.payloadDir) {
          progress('copying the payload', 50)
          await gf.batch([
            gfLine('mkdir-p', [GUEST_PAYLOAD_DIR]),
            gfLine('chmod', ['0755', GUEST_PAYLOAD_DIR]),
            gfLine('chown', ['0', '0', GUEST_PAYLOAD_DIR]),
          ])
          await copyPayload(gf, o.payloadDir, GUEST_PAYLOAD_DIR, scratch, o.epoch, o.signal)
        }

        // SELinux: the helper VM cannot label by policy; the host relabels itself at first boot.
        const empty = join(scratch, 'autorelabel')
        await writeFile(empty, '')
        progress('trimming free space', 80)
        await gf.batch([
          gfLine('upload', [empty, '/.autorelabel']),
          gfLine('chmod', ['0644', '/.autorelabel']),
          gfLine('chown', ['0', '0', '/.autorelabel']),
          ...layout.mounts.map(([mp]) => gfLine('fstrim', [mp])),
          ...(o.dataDisk ? [gfLine('fstrim', [o.dataDisk.mountPoint])] : []),
        ])
        await gf.close()
      } catch (e) {
        await gf.kill()
        throw e
      }

      progress('writing the qcow2', 85)
      let data: Qcow2Result['dataDisk']
      if (o.dataDisk && dataRaw) {
        const outData = o.dataDisk.outFile
        await withTemp(outData, (tmp) => convertImage(dataRaw!, 'raw', tmp, o.compress ?? false, o.signal))
        data = { outFile: outData, sha256: await sha256File(outData, o.signal), uuid: uuid! }
      }
      try {
        await withTemp(o.outFile, (tmp) => convertImage(overlay, 'qcow2', tmp, o.compress ?? false, o.signal))
        return { data, sha256: await sha256File(o.outFile, o.signal) }
      } catch (e) {
        if (data) await rm(data.outFile, { force: true })
        throw e
      }
    },
    dirname(resolve(o.outFile)),
  )

  const vm = {
    name:
      o.vmName ??
      (posix
        .basename(o.outFile)
        .replace(/\.qcow2$/, '')
        .replace(/[^A-Za-z0-9_.+-]/g, '-') ||
        'mirror-appliance'),
    disks: [resolve(o.outFile), ...(result.data ? [resolve(result.data.outFile)] : [])],
    osVariant: 'rhel8-unknown',
  }
  progress('done', 100)
  return {
    outFile: o.outFile,
    sha256: result.sha256,
    dataDisk: result.data,
    warnings,
    domainXml: libvirtDomainXml(vm),
    virtInstall: commandLine('virt-install', virtInstallArgs(vm)),
  }
}

/** tar the payload into a pipe that guestfish's tar-in reads: owner root, modes u+rw,go+rX, fixed times, no temp copy. */
async function copyPayload(
  gf: GuestfishSession,
  src: string,
  dest: string,
  scratch: string,
  epoch: number,
  signal?: AbortSignal,
): Promise<void> {
  if (!isAbsolute(src)) src = resolve(src)
  const pipe = join(scratch, `payload-${randomUUID()}.tar`)
  await run('mkfifo', ['-m', '0600', pipe])
  const tar = run(
    'tar',
    [
      '-C',
      src,
      '--sort=name',
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '--mode=u+rw,go+rX,go-w',
      `--mtime=@${epoch}`,
      '--format=posix',
      '--pax-option=delete=atime,delete=ctime',
      '-cf',
      pipe,
      '.',
    ],
    { why: 'to copy the payload into the image', signal, nothrow: true },
  )
  try {
    await gf.batch([gfLine('tar-in', [pipe, dest])])
  } finally {
    const r = await tar
    if (r.code !== 0) throw new FailureError(`tar of the payload ${src} failed: ${r.stderr.trim()}`)
  }
}

// vm DIR: boot what `build` wrote in QEMU, to try the appliance before
// burning it. The built disk stays pristine: the VM runs on a persistent
// qcow2 overlay in DIR/vm/ (backing file = the built disk, by relative path),
// so that first-boot state survives from one `vm` run to the next; --fresh
// starts over. With --install the installer medium installs onto a blank
// DIR/vm/install.qcow2 first (QEMU exits when Anaconda reboots), then the VM
// boots from that disk.
//
// QEMU runs with user networking (registry and SSH forwarded to 127.0.0.1),
// no display, the serial console in a log file, a QMP socket for an ACPI
// power-down, and a pid file; KVM only when a probe guest really runs under
// it. For --wait QEMU daemonizes (-daemonize) so it outlives this process.

import { createHash } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { FailureError, UserError } from '../errors.js'
import { commandLine, requireTool, run, type RunResult } from '../exec.js'
import { needTool, type ToolNeed } from '../tool-needs.js'
import type { BuildManifest } from '../manifest.js'
import { kvmProbeArgs, kvmProbeBios } from './qcow2-install.js'
import { OVMF_CODE, OVMF_VARS_TEMPLATE, qemuEscape, type Firmware } from '../tools/qemu.js'
import { createImage, createOverlay, gib, imageInfo } from '../tools/qemu-img.js'
import { followFile } from './follow.js'
import { processAlive } from '../payload/lockfile.js'
import { registryUrl, sleep, waitForRegistry, type ContentImage, type ProbeResult, type WaitOptions } from './vm-wait.js'

export const QEMU = 'qemu-system-x86_64'
export const SYSTEM_DISK = 'appliance.qcow2'
/** The separate data disk, when a build writes one beside the system disk */
export const DATA_DISK = 'appliance-data.qcow2'
export const INSTALL_ISO = 'appliance.iso'
export const OEMDRV_ISO = 'oemdrv.iso'
export const DEFAULT_MEMORY_MB = 4096
export const DEFAULT_CPUS = 2
export const DEFAULT_INSTALL_DISK_GIB = 64
export const DEFAULT_WAIT_S = 1800

/** The programs `vm` runs: checked before it starts anything, listed by `doctor` (tool-needs.ts). */
export const VM_TOOLS: readonly ToolNeed[] = [
  needTool(QEMU, 'to run the appliance in a VM'),
  needTool('qemu-img', 'to make the VM disk (an overlay on the built one)'),
]

export type Accel = 'kvm' | 'tcg'

// ---- the QEMU command line (pure) ------------------------------------------

export interface VmDrive {
  file: string
  kind: 'disk' | 'cdrom'
  format?: 'qcow2' | 'raw'
}

export interface VmArgsOptions {
  accel: Accel
  memoryMb: number
  cpus: number
  firmware: Firmware
  /** Writable copy of the OVMF variable store (uefi only) */
  ovmfVars?: string
  ovmfCode?: string
  /** In boot order: the first drive is the boot device */
  drives: VmDrive[]
  /** Direct kernel boot (a guest without a boot loader, debugging) */
  kernel?: { file: string; initrd?: string; append?: string }
  /** File that receives the first serial port */
  serialLog: string
  /** Registry port: 127.0.0.1:hostPort → guest guestPort */
  registry: { hostPort: number; guestPort: number }
  /** 127.0.0.1:sshPort → guest 22 */
  sshPort: number
  qmpSocket: string
  pidFile: string
  /** QEMU exits when the guest reboots (the install phase) */
  noReboot?: boolean
  /** Detach once started (the caller waits for the registry and returns) */
  daemonize?: boolean
  name?: string
}

/** The qemu-system-x86_64 argv for a VM. Pure: same options, same argv. */
export function qemuVmArgs(o: VmArgsOptions): string[] {
  const a: string[] = []
  a.push('-name', qemuEscape(o.name ?? 'mirror-appliance'))
  a.push('-machine', `pc,accel=${o.accel}`)
  if (o.accel === 'kvm') a.push('-cpu', 'host')
  a.push('-m', String(o.memoryMb), '-smp', String(o.cpus))
  if (o.firmware === 'uefi') {
    if (!o.ovmfVars) throw new Error('qemuVmArgs: uefi needs ovmfVars (a writable copy of OVMF_VARS)')
    a.push(
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${qemuEscape(o.ovmfCode ?? OVMF_CODE)}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${qemuEscape(o.ovmfVars)}`,
    )
  }
  // No display: the console is the first serial port, into a file (-nographic cannot be combined with -daemonize).
  a.push('-display', 'none', '-monitor', 'none')
  a.push('-chardev', `file,id=serial0,path=${qemuEscape(o.serialLog)}`, '-serial', 'chardev:serial0')
  a.push('-chardev', `socket,id=qmp,path=${qemuEscape(o.qmpSocket)},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control')
  a.push('-pidfile', o.pidFile)
  a.push(
    '-nic',
    `user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:${o.registry.hostPort}-:${o.registry.guestPort},hostfwd=tcp:127.0.0.1:${o.sshPort}-:22`,
  )
  // First boot makes keys and TLS material: give the guest entropy.
  a.push('-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0')
  let disk = 0
  let cd = 0
  // -kernel's option ROM takes boot index 0.
  const first = o.kernel ? 1 : 0
  o.drives.forEach((d, n) => {
    const i = n + first
    const file = `file=${qemuEscape(d.file)}`
    if (d.kind === 'cdrom') {
      const id = `cd${cd}`
      a.push(
        '-drive',
        `if=none,id=${id},media=cdrom,format=${d.format ?? 'raw'},readonly=on,${file}`,
        '-device',
        `ide-cd,drive=${id},bus=ide.${Math.floor(cd / 2)},unit=${cd % 2},bootindex=${i}`,
      )
      cd++
    } else {
      const id = `disk${disk++}`
      a.push(
        '-drive',
        `if=none,id=${id},format=${d.format ?? 'qcow2'},discard=unmap,${file}`,
        '-device',
        `virtio-blk-pci,drive=${id},bootindex=${i}`,
      )
    }
  })
  if (o.kernel) {
    a.push('-kernel', o.kernel.file)
    if (o.kernel.initrd) a.push('-initrd', o.kernel.initrd)
    if (o.kernel.append !== undefined) a.push('-append', o.kernel.append)
  }
  if (o.noReboot) a.push('-no-reboot')
  if (o.daemonize) a.push('-daemonize')
  return a
}

// ---- the build directory ---------------------------------------------------

export interface BuiltAppliance {
  dir: string
  hostname: string
  /** The registry's port inside the guest */
  port: number
  flavor: string
  systemDisk?: string
  dataDisk?: string
  installIso?: string
  oemdrvIso?: string
  /** sha256 of the system disk from manifest.json: the overlay is tied to it */
  systemDiskSha256?: string
  caFile?: string
  credentialsFile?: string
  /** Content images the registry must serve once first boot has pushed them (manifest.json) */
  content: ContentImage[]
  /** base64 user:password of the init user, from openshift/pull-secret.json */
  auth?: string
}

/** The init user's credentials for the registry from the pull secret the build wrote (auths["host:port"].auth). */
function readAuth(dir: string, hostname: string, port: number): string | undefined {
  try {
    const j = JSON.parse(readFileSync(join(dir, 'openshift/pull-secret.json'), 'utf8')) as { auths?: Record<string, { auth?: string }> }
    return j.auths?.[`${hostname}:${port}`]?.auth
  } catch {
    return undefined
  }
}

/** Text first boot prints on the console when a step fails (templates/host/firstboot on_exit). */
const FIRSTBOOT_FAILED = /mirror-appliance first boot: FAILED at step '([^']+)'/

/** Lines first boot prints when it runs a step and when it has finished (the console log is new for each boot). */
const FIRSTBOOT_STEP = /mirror-appliance first boot: step /
const FIRSTBOOT_FINISHED = /mirror-appliance first boot: done: /

function readConsole(consoleLog: string): string | undefined {
  try {
    return readFileSync(consoleLog, 'utf8')
  } catch {
    return undefined
  }
}

/** A first-boot failure on the console log, as a sentence; undefined when there is none. */
export function firstBootFailure(consoleLog: string): string | undefined {
  const m = FIRSTBOOT_FAILED.exec(readConsole(consoleLog) ?? '')
  return m ? `first boot failed at step '${m[1]}' (the console says so)` : undefined
}

/** While first boot runs in this boot (it printed a step) and has not said it is done: what it is doing. */
export function firstBootRunning(consoleLog: string): string | undefined {
  const text = readConsole(consoleLog) ?? ''
  if (!FIRSTBOOT_STEP.test(text) || FIRSTBOOT_FINISHED.test(text)) return undefined
  const steps = [...text.matchAll(/mirror-appliance first boot: step (\S+)/g)]
  return `first boot is still running (step ${steps[steps.length - 1]![1]})`
}

const BUILD_HINT = 'build one first: mirror-appliance build -o DIR --qcow2 --base-image rhel-8.10-x86_64-kvm.qcow2'

/** What `build` wrote in dir, from its manifest.json. */
export function readBuild(dirArg: string): BuiltAppliance {
  const dir = resolve(dirArg)
  const st = statSync(dir, { throwIfNoEntry: false })
  if (!st) throw new UserError(`${dirArg}: no such directory`, BUILD_HINT)
  if (!st.isDirectory()) throw new UserError(`${dirArg}: not a directory (vm wants the output directory of "mirror-appliance build")`)
  let m: BuildManifest
  try {
    m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as BuildManifest
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT'
    throw new UserError(
      `${dirArg} is not a build output: ${missing ? 'no manifest.json' : `manifest.json cannot be read (${(e as Error).message})`}`,
      BUILD_HINT,
    )
  }
  if (
    !m ||
    typeof m !== 'object' ||
    !m.host ||
    typeof m.host.hostname !== 'string' ||
    !Number.isInteger(m.host.port) ||
    !Array.isArray(m.outputs)
  ) {
    throw new UserError(`${dirArg}/manifest.json: not a mirror-appliance build manifest (host or outputs missing)`)
  }
  const out = (name: string) => (m.outputs.some((o) => o.path === name) && existsSync(join(dir, name)) ? join(dir, name) : undefined)
  const firstFile = (...names: string[]) => names.map((n) => join(dir, n)).find((p) => existsSync(p))
  return {
    dir,
    hostname: m.host.hostname,
    port: m.host.port,
    flavor: m.host.flavor,
    systemDisk: out(SYSTEM_DISK),
    dataDisk: out(DATA_DISK),
    installIso: out(INSTALL_ISO),
    oemdrvIso: out(OEMDRV_ISO),
    systemDiskSha256: m.outputs.find((o) => o.path === SYSTEM_DISK)?.sha256,
    caFile: firstFile('secrets/ca.crt', 'openshift/ca.crt'),
    credentialsFile: firstFile('secrets/credentials.txt'),
    content: (Array.isArray(m.images) ? m.images : [])
      .filter((i) => i.role === 'content' && !(i as { missing?: boolean }).missing && i.target && /^sha256:[a-f0-9]{64}$/.test(i.digest))
      .map((i) => ({ repo: i.target, digest: i.digest })),
    ...(() => {
      const auth = readAuth(dir, m.host.hostname, m.host.port)
      return auth ? { auth } : {}
    })(),
  }
}

/** Where a VM of dir keeps its state. */
export interface VmPaths {
  vmDir: string
  overlay: string
  dataOverlay: string
  installDisk: string
  /** Written once the installer has finished (--install) */
  installDone: string
  ovmfVars: string
  pidFile: string
  qmpSocket: string
  consoleLog: string
  installLog: string
  state: string
}

export function vmPaths(dir: string, log?: string): VmPaths {
  const vmDir = join(resolve(dir), 'vm')
  let qmpSocket = join(vmDir, 'qmp.sock')
  // A UNIX socket path has at most 107 bytes; a deep DIR gets a short, stable one in /tmp.
  if (Buffer.byteLength(qmpSocket) > 100)
    qmpSocket = join(tmpdir(), `mirror-appliance-vm-${createHash('sha256').update(vmDir).digest('hex').slice(0, 16)}.qmp`)
  return {
    vmDir,
    overlay: join(vmDir, SYSTEM_DISK),
    dataOverlay: join(vmDir, DATA_DISK),
    installDisk: join(vmDir, 'install.qcow2'),
    installDone: join(vmDir, 'install.done'),
    ovmfVars: join(vmDir, 'OVMF_VARS.fd'),
    pidFile: join(vmDir, 'qemu.pid'),
    qmpSocket,
    consoleLog: log ? resolve(log) : join(vmDir, 'console.log'),
    installLog: join(vmDir, 'install-console.log'),
    state: join(vmDir, 'state.json'),
  }
}

// ---- is one running? ---------------------------------------------------------

/** True if pid is a live (not zombie) QEMU of this VM. */
export function isVmProcess(pid: number, paths: VmPaths): boolean {
  if (!(pid > 0)) return false
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    return cmd.some((a) => a.includes('qemu-system')) && cmd.includes(paths.pidFile)
  } catch {
    return false
  }
}

/** The pid of this VM's running QEMU, or undefined (a stale pid file is removed). */
export function runningVm(paths: VmPaths): number | undefined {
  let pid: number
  try {
    pid = Number(readFileSync(paths.pidFile, 'utf8').trim())
  } catch {
    return undefined
  }
  if (isVmProcess(pid, paths)) return pid
  rmSync(paths.pidFile, { force: true })
  return undefined
}

/**
 * Held by the one `vm` command that is starting (or, in the foreground,
 * running) this VM, from before its disks are touched until QEMU is handed
 * over: two commands cannot both pass the "is one running?" check.
 * Returns the release function.
 */
export function acquireStartLock(paths: VmPaths, dir: string): () => void {
  const lock = join(paths.vmDir, 'starting.lock')
  mkdirSync(paths.vmDir, { recursive: true })
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx', 0o644)
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      const release = () => rmSync(lock, { force: true })
      try {
        refuseIfRunning(paths, dir)
      } catch (e) {
        release()
        throw e
      }
      return release
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      const pid = Number(readFileSync(lock, 'utf8').trim())
      if (pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new UserError(
          `another "mirror-appliance vm" (pid ${pid}) is starting or running the VM of ${dir}`,
          `wait for it, or stop it: mirror-appliance vm ${dir} --stop`,
        )
      }
      rmSync(lock, { force: true }) // left by a command that died
    }
  }
  throw new UserError(`cannot lock ${lock}`)
}

function refuseIfRunning(paths: VmPaths, dir: string): void {
  const pid = runningVm(paths)
  if (pid !== undefined) {
    throw new UserError(
      `a VM of ${dir} is already running (QEMU pid ${pid}, ${paths.pidFile})`,
      `stop it first: mirror-appliance vm ${dir} --stop`,
    )
  }
}

// ---- accelerator -----------------------------------------------------------

export interface AccelChoice {
  accel: Accel
  /** Why not KVM (when software emulation was chosen by the probe) */
  reason?: string
  forced?: boolean
}

let accelCache: Promise<AccelChoice> | undefined

/**
 * KVM only when a probe guest really runs under it: /dev/kvm can exist and
 * still fail every guest ("host doesn't support requested feature", MSR
 * errors, hangs). The probe is a 64 KiB BIOS that prints 'K' on COM1 and
 * exits; it must do so within a few seconds. Cached for the process.
 * MIRROR_APPLIANCE_ACCEL=kvm|tcg skips the probe.
 */
export function chooseAccel(): Promise<AccelChoice> {
  const forced = process.env.MIRROR_APPLIANCE_ACCEL
  if (forced === 'kvm' || forced === 'tcg') return Promise.resolve({ accel: forced, forced: true })
  if (forced) return Promise.reject(new UserError(`MIRROR_APPLIANCE_ACCEL must be kvm or tcg, not "${forced}"`))
  accelCache ??= probeKvm()
  return accelCache
}

async function probeKvm(): Promise<AccelChoice> {
  const fh = await open('/dev/kvm', 'r+').catch((e: NodeJS.ErrnoException) => e)
  if (fh instanceof Error)
    return {
      accel: 'tcg',
      reason: fh.code === 'ENOENT' ? '/dev/kvm does not exist' : `/dev/kvm cannot be opened: ${fh.code ?? fh.message}`,
    }
  await fh.close()
  const scratch = await mkdtemp(join(tmpdir(), 'mirror-appliance-kvm-probe-'))
  try {
    const bios = join(scratch, 'probe.bin')
    const serial = join(scratch, 'serial.log')
    await writeFile(bios, kvmProbeBios())
    const r = await run(QEMU, kvmProbeArgs(bios, 'kvm', serial), { nothrow: true, timeoutMs: 5000, why: 'to run the appliance in a VM' })
    const out = await readFile(serial, 'utf8').catch(() => '')
    if (r.code === 33 && out === 'K') return { accel: 'kvm' }
    const err = r.stderr.trim().split('\n').filter(Boolean)
    const why = err.length
      ? (err.find((l) => /error|support|fail/i.test(l)) ?? err[err.length - 1]!)
      : r.code === null
        ? 'the probe guest hung'
        : `the probe guest exited with ${r.code}`
    return { accel: 'tcg', reason: `a probe guest does not run under KVM: ${why.replace(/^qemu-system-x86_64: /, '')}` }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

// ---- ports -----------------------------------------------------------------

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer()
    srv.once('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address()
      srv.close(() => res(typeof a === 'object' && a ? a.port : 0))
    })
  })
}

/** Throws if 127.0.0.1:port cannot be listened on. */
export function checkPortFree(port: number, flag: string): Promise<void> {
  return new Promise((res, rej) => {
    const srv = createServer()
    srv.once('error', (e: NodeJS.ErrnoException) =>
      rej(
        new FailureError(
          `${flag} ${port}: 127.0.0.1:${port} cannot be used (${e.code ?? e.message})`,
          `pick another port, or leave ${flag} out for a free one`,
        ),
      ),
    )
    srv.listen(port, '127.0.0.1', () => srv.close(() => res()))
  })
}

// ---- preparing and starting ------------------------------------------------

export interface VmOptions {
  /** Install from the installer medium onto a blank disk, then boot it */
  install?: boolean
  /** With install: the stock RHEL ISO, used with DIR/oemdrv.iso */
  iso?: string
  /** Throw the VM's disks away and start from the build again */
  fresh?: boolean
  /** Host port for the registry (default: a free one) */
  port?: number
  /** Host port for SSH (default: a free one) */
  sshPort?: number
  memoryMb?: number
  cpus?: number
  firmware?: Firmware
  /** Console log (default DIR/vm/console.log) */
  log?: string
  /** Virtual size of the install disk (default 64 GiB, sparse) */
  diskSizeGiB?: number
  kernel?: { file: string; initrd?: string; append?: string }
}

export interface VmPlan {
  build: BuiltAppliance
  paths: VmPaths
  accel: AccelChoice
  port: number
  sshPort: number
  /** The install run (QEMU exits when the installer reboots), when one is needed */
  installArgs?: string[]
  /** The VM itself (without -daemonize) */
  bootArgs: string[]
  /** Disk files to create before starting (nothing is written until prepareDisks) */
  todo: { fresh: boolean; overlay: boolean; dataOverlay: boolean; installDisk: boolean; ovmfVars: boolean }
  diskSizeGiB: number
  /** Said once: software emulation, a rebuilt base */
  warnings: string[]
}

/** Check everything and settle the command lines; writes nothing. */
export async function planVm(dirArg: string, o: VmOptions): Promise<VmPlan> {
  const build = readBuild(dirArg)
  const paths = vmPaths(build.dir, o.log)
  const warnings: string[] = []
  const installing = !!o.install
  if (o.iso !== undefined && !installing) throw new UserError('--iso is only used with --install')
  if (o.kernel && installing) throw new UserError('--kernel cannot be combined with --install')
  let installMedia: VmDrive[] | undefined
  if (installing) {
    if (o.iso !== undefined) {
      if (!statSync(o.iso, { throwIfNoEntry: false })?.isFile()) throw new UserError(`--iso ${o.iso}: no such file`)
      if (!build.oemdrvIso)
        throw new UserError(
          `${dirArg} has no ${OEMDRV_ISO}, which the stock ISO needs beside it to install unattended`,
          'build it with --oemdrv (mirror-appliance build -o DIR --oemdrv)',
        )
      installMedia = [
        { file: resolve(o.iso), kind: 'cdrom' },
        { file: build.oemdrvIso, kind: 'cdrom' },
      ]
    } else {
      if (!build.installIso)
        throw new UserError(
          `${dirArg} has no ${INSTALL_ISO} to install from`,
          `build it with --iso BASE.iso (mirror-appliance build -o DIR --iso rhel-8.10-x86_64-dvd.iso), or build with --oemdrv and give the stock ISO: mirror-appliance vm ${dirArg} --install --iso rhel-8.10-x86_64-dvd.iso`,
        )
      installMedia = [{ file: build.installIso, kind: 'cdrom' }]
    }
  } else if (!build.systemDisk) {
    throw new UserError(
      `${dirArg} has no ${SYSTEM_DISK} to boot`,
      `build with --qcow2 --base-image IMG (a RHEL 8 KVM guest image), or use --install to install from ${INSTALL_ISO} or oemdrv.iso`,
    )
  }
  if (o.port !== undefined && o.sshPort !== undefined && o.port === o.sshPort)
    throw new UserError(`--port and --ssh-port must differ (both ${o.port})`)
  refuseIfRunning(paths, dirArg)

  for (const n of VM_TOOLS) await requireTool(n.tool, n.for)
  if (o.firmware === 'uefi') {
    for (const f of [OVMF_CODE, OVMF_VARS_TEMPLATE])
      if (!existsSync(f)) throw new FailureError(`--uefi needs ${f}, which is missing`, 'install it: apt-get install ovmf')
  }
  if (o.kernel) {
    for (const f of [o.kernel.file, o.kernel.initrd])
      if (f !== undefined && !statSync(f, { throwIfNoEntry: false })?.isFile()) throw new UserError(`${f}: no such file`)
  }

  const port = o.port ?? (await freePort())
  if (o.port !== undefined) await checkPortFree(o.port, '--port')
  let sshPort = o.sshPort ?? (await freePort())
  while (sshPort === port) sshPort = await freePort()
  if (o.sshPort !== undefined) await checkPortFree(o.sshPort, '--ssh-port')

  const accel = await chooseAccel()
  if (accel.accel === 'tcg' && !accel.forced) warnings.push(`KVM not usable (${accel.reason}): software emulation, boot takes minutes`)

  // What must be made: the overlay ties itself to the built disk's checksum.
  const fresh = !!o.fresh
  let overlay = false
  let dataOverlay = false
  let installDisk = false
  if (!installing) {
    overlay = fresh || !existsSync(paths.overlay)
    if (!overlay) {
      const recorded = readState(paths).systemDiskSha256
      if (build.systemDiskSha256 && recorded && recorded !== build.systemDiskSha256) {
        warnings.push(`${SYSTEM_DISK} was rebuilt since the VM disk ${paths.overlay} was made on it: starting over from the new build`)
        overlay = true
      }
    }
    dataOverlay = !!build.dataDisk && (overlay || !existsSync(paths.dataOverlay))
  } else {
    installDisk = fresh || !existsSync(paths.installDone) || !existsSync(paths.installDisk)
  }
  const firmware = o.firmware ?? 'bios'
  const ovmfVars = firmware === 'uefi' && (fresh || overlay || installDisk || !existsSync(paths.ovmfVars))

  const common = {
    accel: accel.accel,
    memoryMb: o.memoryMb ?? DEFAULT_MEMORY_MB,
    cpus: o.cpus ?? DEFAULT_CPUS,
    firmware,
    ...(firmware === 'uefi' ? { ovmfVars: paths.ovmfVars } : {}),
    registry: { hostPort: port, guestPort: build.port },
    sshPort,
    qmpSocket: paths.qmpSocket,
    pidFile: paths.pidFile,
    name: `mirror-appliance ${build.hostname}`,
  }
  const bootDrives: VmDrive[] = installing
    ? [{ file: paths.installDisk, kind: 'disk' }]
    : [{ file: paths.overlay, kind: 'disk' }, ...(build.dataDisk ? [{ file: paths.dataOverlay, kind: 'disk' as const }] : [])]
  const bootArgs = qemuVmArgs({ ...common, drives: bootDrives, serialLog: paths.consoleLog, ...(o.kernel ? { kernel: o.kernel } : {}) })
  const installArgs = installDisk
    ? qemuVmArgs({
        ...common,
        drives: [installMedia![0]!, { file: paths.installDisk, kind: 'disk' }, ...installMedia!.slice(1)],
        serialLog: paths.installLog,
        noReboot: true,
      })
    : undefined
  return {
    build,
    paths,
    accel,
    port,
    sshPort,
    bootArgs,
    ...(installArgs ? { installArgs } : {}),
    todo: { fresh, overlay, dataOverlay, installDisk, ovmfVars },
    diskSizeGiB: o.diskSizeGiB ?? DEFAULT_INSTALL_DISK_GIB,
    warnings,
  }
}

interface VmState {
  systemDiskSha256?: string
}

function readState(paths: VmPaths): VmState {
  try {
    return JSON.parse(readFileSync(paths.state, 'utf8')) as VmState
  } catch {
    return {}
  }
}

/** Make the VM's disks: the overlay on the built disk (relative backing path), the blank install disk, OVMF's variables. */
export async function prepareDisks(p: VmPlan, signal?: AbortSignal): Promise<void> {
  const { paths, todo, build } = p
  await mkdir(paths.vmDir, { recursive: true })
  if (todo.fresh) {
    for (const f of [paths.overlay, paths.dataOverlay, paths.installDisk, paths.installDone, paths.ovmfVars, paths.state])
      await rm(f, { force: true })
  }
  if (todo.overlay) {
    await rm(paths.overlay, { force: true })
    await createOverlay(paths.overlay, relative(paths.vmDir, build.systemDisk!), 'qcow2', signal)
    await writeFile(paths.state, JSON.stringify({ systemDiskSha256: build.systemDiskSha256 } satisfies VmState, null, 2) + '\n')
  }
  if (todo.dataOverlay && build.dataDisk) {
    await rm(paths.dataOverlay, { force: true })
    await createOverlay(paths.dataOverlay, relative(paths.vmDir, build.dataDisk), 'qcow2', signal)
  }
  if (todo.installDisk) {
    await rm(paths.installDone, { force: true })
    await rm(paths.installDisk, { force: true })
    await createImage(paths.installDisk, 'qcow2', gib(p.diskSizeGiB), signal)
  }
  if (todo.ovmfVars) await copyFile(OVMF_VARS_TEMPLATE, paths.ovmfVars)
}

/** The last n lines of a console log (empty if there is none). */
export function consoleTail(file: string, n = 20): string[] {
  try {
    const buf = readFileSync(file)
    const text = buf.subarray(Math.max(0, buf.length - 64 * 1024)).toString('utf8')
    // A serial console writes CR LF and escape sequences: keep plain lines.
    return text
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .split(/\r?\n|\r/)
      .map((l) => l.trimEnd())
      .filter((l) => l !== '')
      .slice(-n)
  } catch {
    return []
  }
}

export function formatTail(file: string, n = 20): string {
  const lines = consoleTail(file, n)
  return lines.length ? `last console lines (${file}):\n    ${lines.join('\n    ')}` : `the console log ${file} is empty`
}

/** Run the installer to its end (QEMU exits when Anaconda reboots or powers off). */
export async function runInstall(p: VmPlan, o: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
  if (!p.installArgs) return
  const stop = new AbortController()
  let timedOut = false
  const onAbort = () => stop.abort()
  o.signal?.addEventListener('abort', onAbort, { once: true })
  const timer = o.timeoutMs ? setTimeout(() => ((timedOut = true), stop.abort()), o.timeoutMs) : undefined
  let r: RunResult
  try {
    r = await run(QEMU, p.installArgs, { nothrow: true, signal: stop.signal, why: 'to run the appliance in a VM' })
  } finally {
    if (timer) clearTimeout(timer)
    o.signal?.removeEventListener('abort', onAbort)
    rmSync(p.paths.pidFile, { force: true })
  }
  if (o.signal?.aborted) throw o.signal.reason
  if (timedOut)
    throw new FailureError(
      `the installation did not end within ${Math.round(o.timeoutMs! / 1000)} s (${p.accel.accel}); ${formatTail(p.paths.installLog)}`,
    )
  if (r.code !== 0)
    throw new FailureError(
      `QEMU failed during the installation with exit code ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`,
    )
  const info = await imageInfo(p.paths.installDisk, o.signal)
  if ((info.actualSize ?? 0) < 16 * 1024 * 1024)
    throw new FailureError(`the installer stopped without installing onto ${p.paths.installDisk}; ${formatTail(p.paths.installLog)}`)
  await writeFile(p.paths.installDone, new Date().toISOString() + '\n')
}

export interface StartedVm {
  pid: number
  url: string
  hostname: string
  port: number
  sshPort: number
  caFile?: string
  credentialsFile?: string
  log: string
  accel: Accel
  pidFile: string
}

function started(p: VmPlan, pid: number): StartedVm {
  return {
    pid,
    url: registryUrl(p.build.hostname, p.port),
    hostname: p.build.hostname,
    port: p.port,
    sshPort: p.sshPort,
    ...(p.build.caFile ? { caFile: p.build.caFile } : {}),
    ...(p.build.credentialsFile ? { credentialsFile: p.build.credentialsFile } : {}),
    log: p.paths.consoleLog,
    accel: p.accel.accel,
    pidFile: p.paths.pidFile,
  }
}

/** Start the VM detached (QEMU -daemonize); returns once QEMU runs. */
export async function launchDetached(p: VmPlan): Promise<StartedVm> {
  await writeFile(p.paths.consoleLog, '')
  // Not abortable: the daemon may already run (and have written its pid file)
  // while its parent is still starting; killing the parent would orphan it.
  // The parent returns within a second; the caller checks its signal after.
  const r = await run(QEMU, [...p.bootArgs, '-daemonize'], { nothrow: true, timeoutMs: 60_000, why: 'to run the appliance in a VM' })
  const pid = runningVm(p.paths)
  if (r.code !== 0) {
    if (pid !== undefined) await stopPid(pid, p.paths, { powerdown: false })
    throw new FailureError(
      `QEMU did not start (exit code ${r.code})\n  command: ${commandLine(QEMU, p.bootArgs)}\n  ${r.stderr.trim().split('\n').slice(-8).join('\n  ')}`,
    )
  }
  if (pid === undefined)
    throw new FailureError(`QEMU stopped before the registry answered (it ended right after starting); ${formatTail(p.paths.consoleLog)}`)
  return started(p, pid)
}

/** Run the VM in the foreground until QEMU exits or the signal aborts (QEMU is then stopped). */
export async function runForeground(p: VmPlan, signal?: AbortSignal): Promise<RunResult> {
  await writeFile(p.paths.consoleLog, '')
  try {
    return await run(QEMU, p.bootArgs, { nothrow: true, signal, why: 'to run the appliance in a VM' })
  } finally {
    rmSync(p.paths.pidFile, { force: true })
  }
}

export { followFile }

// ---- stopping ----------------------------------------------------------------

/** Send one QMP command (after the capabilities handshake). Resolves false if the socket is not there or does not answer. */
export function qmpCommand(socket: string, command: string, timeoutMs = 3000): Promise<boolean> {
  return new Promise((res) => {
    const c = createConnection(socket)
    let buf = ''
    let stage = 0
    const finish = (ok: boolean) => {
      clearTimeout(timer)
      c.destroy()
      res(ok)
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    c.on('error', () => finish(false))
    c.on('data', (d) => {
      buf += d.toString()
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        let msg: Record<string, unknown>
        try {
          msg = JSON.parse(line) as Record<string, unknown>
        } catch {
          continue
        }
        if (stage === 0 && 'QMP' in msg) {
          stage = 1
          c.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n')
        } else if (stage === 1 && 'return' in msg) {
          stage = 2
          c.write(JSON.stringify({ execute: command }) + '\n')
        } else if (stage === 2 && ('return' in msg || 'error' in msg)) {
          finish('return' in msg)
        }
      }
    })
  })
}

async function waitGone(pid: number, paths: VmPaths, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (isVmProcess(pid, paths)) {
    if (Date.now() > end) return false
    await sleep(200)
  }
  return true
}

export interface StopResult {
  /** false: nothing was running */
  stopped: boolean
  pid?: number
  /** How it ended */
  how?: 'powerdown' | 'terminated' | 'killed'
}

/**
 * Stop the VM of dir: ACPI power-down through QMP (the guest shuts down
 * cleanly), then SIGTERM after timeoutMs, then SIGKILL. The pid file and the
 * QMP socket are removed.
 */
export async function stopVm(dir: string, o: { timeoutMs?: number; powerdown?: boolean } = {}): Promise<StopResult> {
  const paths = vmPaths(dir)
  const pid = runningVm(paths)
  if (pid === undefined) return { stopped: false }
  return { stopped: true, pid, how: await stopPid(pid, paths, o) }
}

async function stopPid(
  pid: number,
  paths: VmPaths,
  o: { timeoutMs?: number; powerdown?: boolean },
): Promise<'powerdown' | 'terminated' | 'killed'> {
  let how: 'powerdown' | 'terminated' | 'killed' = 'powerdown'
  try {
    if (!isVmProcess(pid, paths)) return 'terminated'
    if (
      o.powerdown !== false &&
      (await qmpCommand(paths.qmpSocket, 'system_powerdown')) &&
      (await waitGone(pid, paths, o.timeoutMs ?? 60_000))
    )
      return how
    how = 'terminated'
    signalPid(pid, 'SIGTERM')
    if (await waitGone(pid, paths, 10_000)) return how
    how = 'killed'
    signalPid(pid, 'SIGKILL')
    await waitGone(pid, paths, 5000)
    return how
  } finally {
    rmSync(paths.pidFile, { force: true })
    if (paths.qmpSocket.startsWith(tmpdir())) rmSync(paths.qmpSocket, { force: true })
  }
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // already gone
  }
}

// ---- the whole thing, for callers that want an API instead of the CLI -------

export interface StartVmOptions extends VmOptions {
  /** Wait until the registry answers through its certificate (default true) */
  wait?: boolean
  /** For the wait (default 1800 s) */
  timeoutMs?: number
  signal?: AbortSignal
  /** Progress: warnings, the ports, wait attempts */
  onMessage?: (level: 'info' | 'warn' | 'debug', message: string) => void
}

/**
 * Start the VM of a build directory detached and (by default) wait until the
 * registry answers through its own certificate. On any failure, timeout or
 * abort QEMU is stopped and nothing is left running. The VM keeps running
 * after this returns: stop it with stopVm(dir).
 */
export async function startVm(dir: string, o: StartVmOptions = {}): Promise<StartedVm> {
  const say = o.onMessage ?? (() => {})
  const p = await planVm(dir, o)
  for (const w of p.warnings) say('warn', w)
  const wait = o.wait ?? true
  if (wait && !p.build.caFile)
    throw new UserError(`${dir} has no CA certificate (secrets/ca.crt or openshift/ca.crt) to check the registry's certificate with`)
  const timeoutMs = o.timeoutMs ?? DEFAULT_WAIT_S * 1000
  const t0 = Date.now()
  const release = acquireStartLock(p.paths, dir)
  try {
    return await startLocked(p, o, { say, wait, timeoutMs, t0 })
  } finally {
    release()
  }
}

/**
 * What "ready" means for a build: the registry answers through its own
 * certificate AND serves every content image of the payload by digest to
 * the init user (first boot has pushed them), and first boot, if it ran in
 * this boot, has said it is done; a first-boot failure on the console ends
 * the wait at once.
 */
export function readiness(p: VmPlan): Pick<WaitOptions, 'content' | 'failed' | 'pending'> {
  const log = p.paths.consoleLog
  return {
    ...(p.build.auth && p.build.content.length ? { content: { auth: p.build.auth, images: p.build.content } } : {}),
    failed: () => firstBootFailure(log),
    pending: () => firstBootRunning(log),
  }
}

async function startLocked(
  p: VmPlan,
  o: StartVmOptions,
  { say, wait, timeoutMs, t0 }: { say: NonNullable<StartVmOptions['onMessage']>; wait: boolean; timeoutMs: number; t0: number },
): Promise<StartedVm> {
  await prepareDisks(p, o.signal)
  if (p.installArgs) {
    say(
      'info',
      `installing from ${p.installArgs.find((a) => a.includes('media=cdrom'))?.replace(/.*file=/, '') ?? 'the installer'} onto ${p.paths.installDisk} (${p.accel.accel}); console: ${p.paths.installLog}`,
    )
    await runInstall(p, { ...(o.signal ? { signal: o.signal } : {}), timeoutMs })
    say('info', `installed in ${Math.round((Date.now() - t0) / 1000)} s; booting the installed disk`)
  }
  const vm = await launchDetached(p)
  // A hard exit (second Ctrl-C) must not leave the VM behind before it was handed over.
  const killOnExit = () => signalPid(vm.pid, 'SIGKILL')
  process.on('exit', killOnExit)
  let handedOver = false
  try {
    say('info', `QEMU pid ${vm.pid} (${vm.accel}): registry → 127.0.0.1:${vm.port}, ssh → 127.0.0.1:${vm.sshPort}, console: ${vm.log}`)
    if (!wait) {
      handedOver = true
      return vm
    }
    const r = await waitForRegistry({
      target: {
        address: '127.0.0.1',
        port: vm.port,
        hostname: p.build.hostname,
        ca: readFileSync(p.build.caFile!, 'utf8'),
        flavor: p.build.flavor,
      },
      ...readiness(p),
      timeoutMs: Math.max(1000, timeoutMs - (Date.now() - t0)),
      ...(o.signal ? { signal: o.signal } : {}),
      alive: () => isVmProcess(vm.pid, p.paths),
      onAttempt: (a: ProbeResult) => say('debug', `registry not ready yet: ${a.error ?? a.status}`),
    })
    if (r.ok) {
      handedOver = true
      say('info', `the registry answered after ${Math.round(r.seconds)} s`)
      return vm
    }
    if (r.reason === 'failed')
      throw new FailureError(`${r.lastError}; ${formatTail(p.paths.consoleLog)}`, 'see the whole console in ' + p.paths.consoleLog)
    if (r.reason === 'exited') {
      throw new FailureError(
        `QEMU stopped before the registry answered (after ${Math.round(r.seconds)} s); ${formatTail(p.paths.consoleLog)}`,
      )
    }
    throw new FailureError(
      `the registry did not answer within ${Math.round(timeoutMs / 1000)} s (${vm.accel})${r.lastError ? `; last attempt: ${r.lastError}` : ''}; ${formatTail(p.paths.consoleLog)}`,
      vm.accel === 'tcg' ? 'under software emulation a first boot can take a long time: give it more with --timeout S' : undefined,
    )
  } finally {
    process.off('exit', killOnExit)
    if (!handedOver) await stopPid(vm.pid, p.paths, { powerdown: false })
  }
}

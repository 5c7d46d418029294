// qcow2 path 2: install RHEL into a blank qcow2 by booting the unattended
// installer under QEMU (the remastered ISO, or the stock ISO plus the OEMDRV
// medium), the kickstart set to power off at the end. Serial console lines
// are passed on as progress. KVM when it really works (a tiny probe guest
// proves it), else software emulation, said loudly: an install then takes
// hours instead of minutes.

import { followFile } from './follow.js'
import { open, readFile, stat, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { withTemp } from '../atomic.js'
import { FailureError, UserError } from '../errors.js'
import { run } from '../exec.js'
import { needTool, type ToolNeed } from '../tool-needs.js'
import { qemuArgs, type Firmware, prepareOvmfVars } from '../tools/qemu.js'
import { convertImage, createImage, gib } from '../tools/qemu-img.js'
import { checkOutFile, throwIfAborted, withScratchDir } from './common.js'
import { sha256File } from '../hash.js'

/**
 * The programs this writer runs: the build checks them before any work,
 * `doctor` lists them (tool-needs.ts). The installer medium it boots is
 * written by media/iso.ts, with that writer's own tools.
 */
export const QCOW2_INSTALL_TOOLS: readonly ToolNeed[] = [
  needTool('qemu-system-x86_64', 'to run the unattended install in a VM'),
  needTool('qemu-img', 'to make the VM disk'),
]

export interface Qcow2InstallOptions {
  /** Remastered ISO (kickstart inside), or the stock RHEL ISO when oemdrvIso is given */
  iso: string
  oemdrvIso?: string
  outFile: string
  /** Virtual size of the disk the installer sees */
  sizeGiB: number
  /** Give up (and write nothing) if the installer has not powered off by then */
  timeoutMs: number
  signal?: AbortSignal
  /** Each line the guest writes on its first serial port */
  onSerialLine?: (line: string) => void
  /** Things the user must know, e.g. falling back to software emulation */
  onWarning?: (message: string) => void
  compress?: boolean
  /** Guest RAM; Anaconda needs about 2 GiB (default 3072) */
  memoryMb?: number
  cpus?: number
  firmware?: Firmware
  /** 'auto' (default) probes /dev/kvm with a tiny guest */
  kvm?: 'auto' | boolean
  force?: boolean
}

export interface Qcow2InstallResult {
  outFile: string
  sha256: string
  accel: 'kvm' | 'tcg'
  /** Wall time of the QEMU run */
  seconds: number
}

/**
 * A 64 KiB BIOS whose reset vector writes 'K' to COM1 and exits QEMU through
 * isa-debug-exit with status 33. If a guest runs it under -accel kvm, KVM works.
 */
export function kvmProbeBios(): Buffer {
  const rom = Buffer.alloc(65536, 0xf4) // hlt everywhere
  const code = [0xb0, 0x4b, 0xba, 0xf8, 0x03, 0xee, 0xb0, 0x10, 0xba, 0xf4, 0x00, 0xee, 0xf4, 0xeb, 0xfd]
  Buffer.from(code).copy(rom, 0xfff0)
  return rom
}

export function kvmProbeArgs(bios: string, accel: 'kvm' | 'tcg', serial: string): string[] {
  // Same CPU model as the install will use: some hosts run real-mode code under KVM but cannot set up a `-cpu host` guest.
  return [
    '-accel',
    accel,
    ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-M',
    'pc',
    '-bios',
    bios,
    '-nodefaults',
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    `file:${serial}`,
    '-device',
    'isa-debug-exit,iobase=0xf4,iosize=0x04',
    '-no-reboot',
  ]
}

/** True if a guest actually runs under the given accelerator (a guest that starts but never runs counts as no). */
export async function acceleratorWorks(accel: 'kvm' | 'tcg', scratch: string): Promise<boolean> {
  if (accel === 'kvm') {
    const fh = await open('/dev/kvm', 'r+').catch(() => null)
    if (!fh) return false
    await fh.close()
  }
  const bios = join(scratch, 'probe.bin')
  const serial = join(scratch, `probe-${accel}.log`)
  await writeFile(bios, kvmProbeBios())
  const r = await run('qemu-system-x86_64', kvmProbeArgs(bios, accel, serial), {
    nothrow: true,
    timeoutMs: 10_000,
    why: 'to install into a VM disk image',
  })
  const out = await readFile(serial, 'utf8').catch(() => '')
  return r.code === 33 && out === 'K'
}

/** Install into a new qcow2. The guest's kickstart must power off at the end. */
export async function buildQcow2ByInstall(o: Qcow2InstallOptions): Promise<Qcow2InstallResult> {
  for (const [what, f] of [
    ['ISO', o.iso],
    ['OEMDRV ISO', o.oemdrvIso],
  ] as const) {
    if (f === undefined) continue
    const s = await stat(f).catch(() => null)
    if (!s?.isFile()) throw new UserError(`${what} ${f} does not exist`)
  }
  if (!(o.sizeGiB >= 1)) throw new UserError(`disk size must be at least 1 GiB, got ${o.sizeGiB}`)
  if (!(o.timeoutMs > 0)) throw new UserError('the install timeout must be positive')
  await checkOutFile(o.outFile, o.force)
  throwIfAborted(o.signal)

  return withScratchDir(
    async (scratch) => {
      let accel: 'kvm' | 'tcg' = 'tcg'
      if (o.kvm === true || ((o.kvm ?? 'auto') === 'auto' && (await acceleratorWorks('kvm', scratch)))) accel = 'kvm'
      if (accel === 'tcg')
        o.onWarning?.(
          'KVM is not available here (/dev/kvm missing or not working): installing under software emulation (TCG), which is 10-50x slower; a RHEL install can take hours',
        )
      const disk = join(scratch, 'install.qcow2')
      await createImage(disk, 'qcow2', gib(o.sizeGiB), o.signal)
      const serialLog = join(scratch, 'serial.log')
      await writeFile(serialLog, '')
      const firmware = o.firmware ?? 'bios'
      const ovmfVars = firmware === 'uefi' ? join(scratch, 'OVMF_VARS.fd') : undefined
      if (ovmfVars) await prepareOvmfVars(ovmfVars)
      const args = qemuArgs({
        firmware,
        ovmfVars,
        // The installer medium boots first; the blank disk is never bootable before the install ends (and it powers off).
        drives: [
          { file: resolve(o.iso), kind: 'cdrom', readonly: true },
          { file: disk, kind: 'disk', format: 'qcow2' },
          ...(o.oemdrvIso ? [{ file: resolve(o.oemdrvIso), kind: 'cdrom' as const, readonly: true }] : []),
        ],
        serialLog,
        memoryMb: o.memoryMb ?? 3072,
        cpus: o.cpus ?? 2,
      })
      if (accel === 'kvm') args.splice(args.indexOf('-accel'), 2, '-accel', 'kvm', '-cpu', 'host')

      const started = Date.now()
      const tail: string[] = []
      const follow = followFile(
        serialLog,
        (l) => {
          tail.push(l)
          if (tail.length > 20) tail.shift()
          o.onSerialLine?.(l)
        },
        500,
      )
      // Our own timer: QEMU exits 0 on SIGTERM, so the exit code cannot tell a timeout from a power-off.
      const stop = new AbortController()
      let timedOut = false
      const onAbort = () => stop.abort()
      o.signal?.addEventListener('abort', onAbort)
      const deadline = setTimeout(() => {
        timedOut = true
        stop.abort()
      }, o.timeoutMs)
      let r
      try {
        r = await run('qemu-system-x86_64', args, { nothrow: true, signal: stop.signal, why: 'to install into a VM disk image' })
      } finally {
        clearTimeout(deadline)
        o.signal?.removeEventListener('abort', onAbort)
        await follow.stop()
      }
      const seconds = (Date.now() - started) / 1000
      throwIfAborted(o.signal)
      if (timedOut || r.code === null)
        throw new FailureError(
          `the installation did not power off within ${Math.round(o.timeoutMs / 1000)} s (${accel}); last console lines:\n    ${tail.join('\n    ')}`,
        )
      if (r.code !== 0) throw new FailureError(`QEMU failed with exit code ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`)
      await withTemp(o.outFile, (tmp) => convertImage(disk, 'qcow2', tmp, o.compress ?? false, o.signal))
      return { outFile: o.outFile, sha256: await sha256File(o.outFile, o.signal), accel, seconds }
    },
    dirname(resolve(o.outFile)),
  )
}

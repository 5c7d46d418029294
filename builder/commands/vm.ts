// vm DIR: try the appliance in QEMU before burning it (builder/media/vm.ts
// does the work). Three ways: in the foreground until the guest powers off or
// Ctrl-C; --wait: detached, returning once the registry answers through its
// own certificate; --stop: power a detached one down. --print shows the QEMU
// command lines and runs nothing.

import { readFileSync } from 'node:fs'
import type { Ctx } from '../context.js'
import { FailureError, UserError } from '../errors.js'
import { commandLine } from '../exec.js'
import type { Firmware } from '../tools/qemu.js'

export interface VmCliOpts {
  dir: string
  install: boolean
  iso?: string
  fresh: boolean
  port?: string
  sshPort?: string
  wait: boolean
  timeout?: string
  memory?: string
  cpus?: string
  uefi: boolean
  log?: string
  print: boolean
  stop: boolean
  diskSize?: string
  kernel?: string
  initrd?: string
  append?: string
}

function intIn(v: string | undefined, flag: string, min: number, max: number, what: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max)
    throw new UserError(`${flag}: must be ${what} from ${min} to ${max}, not ${JSON.stringify(v)}`)
  return n
}

/** Flags settled: every usage error is found here, before anything runs. */
export function checkVmFlags(o: VmCliOpts, json: boolean) {
  if (o.stop) {
    const others = (
      [
        ['--install', o.install],
        ['--iso', o.iso],
        ['--fresh', o.fresh],
        ['--port', o.port],
        ['--ssh-port', o.sshPort],
        ['--wait', o.wait],
        ['--memory', o.memory],
        ['--cpus', o.cpus],
        ['--uefi', o.uefi],
        ['--log', o.log],
        ['--print', o.print],
        ['--disk-size', o.diskSize],
        ['--kernel', o.kernel],
      ] as const
    ).filter(([, v]) => v !== undefined && v !== false)
    if (others.length) throw new UserError(`--stop cannot be combined with ${others.map(([f]) => f).join(', ')} (it takes only --timeout)`)
  }
  if (o.timeout !== undefined && !o.wait && !o.stop) throw new UserError('--timeout is only used with --wait or --stop')
  if (json && !o.wait && !o.print && !o.stop)
    throw new UserError('--json needs --wait, --print or --stop (it describes a VM that keeps running)')
  if (o.print && o.wait) throw new UserError('--print runs nothing, so it cannot --wait')
  if ((o.initrd !== undefined || o.append !== undefined) && o.kernel === undefined)
    throw new UserError('--initrd and --append are only used with --kernel')
  if (o.diskSize !== undefined && !o.install) throw new UserError('--disk-size is only used with --install')
  const port = intIn(o.port, '--port', 1, 65535, 'a whole number')
  const sshPort = intIn(o.sshPort, '--ssh-port', 1, 65535, 'a whole number')
  let timeoutS: number | undefined
  if (o.timeout !== undefined) {
    timeoutS = Number(o.timeout)
    if (o.timeout.trim() === '' || !Number.isFinite(timeoutS) || timeoutS <= 0)
      throw new UserError(`--timeout: must be a positive number of seconds, not ${JSON.stringify(o.timeout)}`)
  }
  const memoryMb = intIn(o.memory, '--memory', 256, 1024 * 1024, 'a whole number of MiB')
  const cpus = intIn(o.cpus, '--cpus', 1, 64, 'a whole number')
  const diskSizeGiB = intIn(o.diskSize, '--disk-size', 10, 65536, 'a whole number of GiB')
  return { port, sshPort, timeoutS, memoryMb, cpus, diskSizeGiB }
}

/** The first user with a password in credentials.txt, else root. */
function sshUser(credentialsFile: string | undefined): string {
  if (!credentialsFile) return 'root'
  try {
    return /^user (\S+) password:/m.exec(readFileSync(credentialsFile, 'utf8'))?.[1] ?? 'root'
  } catch {
    return 'root'
  }
}

const sshCommand = (port: number, user: string) =>
  `ssh -p ${port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null ${user}@127.0.0.1`

export async function vm(o: VmCliOpts, ctx: Ctx): Promise<number> {
  const f = checkVmFlags(o, ctx.json)
  const m = await import('../media/vm.js')
  const { log } = ctx

  if (o.stop) {
    const timeoutMs = (f.timeoutS ?? 60) * 1000
    m.readBuild(o.dir)
    const r = await m.stopVm(o.dir, { timeoutMs })
    if (ctx.json) ctx.out(JSON.stringify(r, null, 2))
    else if (!r.stopped) log.info(`no VM of ${o.dir} is running`)
    else
      log.info(
        `stopped the VM of ${o.dir} (QEMU pid ${r.pid}: ${r.how === 'powerdown' ? 'the guest powered off' : r.how === 'terminated' ? `no power-off within ${timeoutMs / 1000} s, QEMU terminated` : 'QEMU killed'})`,
      )
    return 0
  }

  const vmOpts = {
    install: o.install,
    ...(o.iso !== undefined ? { iso: o.iso } : {}),
    fresh: o.fresh,
    ...(f.port !== undefined ? { port: f.port } : {}),
    ...(f.sshPort !== undefined ? { sshPort: f.sshPort } : {}),
    ...(f.memoryMb !== undefined ? { memoryMb: f.memoryMb } : {}),
    ...(f.cpus !== undefined ? { cpus: f.cpus } : {}),
    firmware: (o.uefi ? 'uefi' : 'bios') as Firmware,
    ...(o.log !== undefined ? { log: o.log } : {}),
    ...(f.diskSizeGiB !== undefined ? { diskSizeGiB: f.diskSizeGiB } : {}),
    ...(o.kernel !== undefined
      ? {
          kernel: {
            file: o.kernel,
            ...(o.initrd !== undefined ? { initrd: o.initrd } : {}),
            ...(o.append !== undefined ? { append: o.append } : {}),
          },
        }
      : {}),
  }

  if (o.print) {
    const p = await m.planVm(o.dir, vmOpts)
    if (ctx.json) {
      ctx.out(
        JSON.stringify(
          {
            ...(p.installArgs ? { install: [m.QEMU, ...p.installArgs] } : {}),
            boot: [m.QEMU, ...p.bootArgs],
            accel: p.accel.accel,
            port: p.port,
            sshPort: p.sshPort,
          },
          null,
          2,
        ),
      )
    } else {
      for (const w of p.warnings) log.warn(w)
      if (p.installArgs)
        ctx.out(
          `# install (QEMU exits when the installer reboots):\n${commandLine(m.QEMU, p.installArgs)}\n# then boot the installed disk:`,
        )
      ctx.out(commandLine(m.QEMU, p.bootArgs))
    }
    return 0
  }

  if (o.wait) {
    const vmInfo = await m.startVm(o.dir, {
      ...vmOpts,
      wait: true,
      timeoutMs: (f.timeoutS ?? m.DEFAULT_WAIT_S) * 1000,
      signal: ctx.signal,
      onMessage: (level, msg) => (level === 'warn' ? log.warn(msg) : level === 'debug' ? log.debug(msg) : log.info(msg)),
    })
    const ssh = sshCommand(vmInfo.sshPort, sshUser(vmInfo.credentialsFile))
    if (ctx.json) {
      const { url, port, sshPort, caFile, credentialsFile, pid, log: consoleLog, accel, hostname, pidFile } = vmInfo
      ctx.out(
        JSON.stringify(
          { url, port, sshPort, caFile, credentialsFile, pid, log: consoleLog, accel, hostname, address: '127.0.0.1', pidFile, ssh },
          null,
          2,
        ),
      )
    } else {
      ctx.out(
        [
          `registry:    ${vmInfo.url} (forwarded to 127.0.0.1:${vmInfo.port}; the certificate names ${vmInfo.hostname})`,
          `CA:          ${vmInfo.caFile}`,
          `credentials: ${vmInfo.credentialsFile ?? '(none in this build)'}`,
          `try:         curl --cacert ${vmInfo.caFile} --resolve ${vmInfo.hostname}:${vmInfo.port}:127.0.0.1 ${vmInfo.url}/v2/`,
          `             (for podman and browsers add "127.0.0.1 ${vmInfo.hostname}" to /etc/hosts)`,
          `ssh:         ${ssh}`,
          `console:     ${vmInfo.log}`,
          `QEMU:        pid ${vmInfo.pid} (${vmInfo.accel}) keeps running; stop it with: mirror-appliance vm ${o.dir} --stop`,
        ].join('\n'),
      )
    }
    return 0
  }

  return foreground(o, vmOpts, ctx)
}

/** QEMU in the foreground: the console on stderr, the registry announced when it answers. */
async function foreground(o: VmCliOpts, vmOpts: Parameters<typeof import('../media/vm.js').planVm>[1], ctx: Ctx): Promise<number> {
  const m = await import('../media/vm.js')
  const p = await m.planVm(o.dir, vmOpts)
  for (const w of p.warnings) ctx.log.warn(w)
  const release = m.acquireStartLock(p.paths, o.dir)
  try {
    return await foregroundLocked(o, p, ctx)
  } finally {
    release()
  }
}

async function foregroundLocked(o: VmCliOpts, p: import('../media/vm.js').VmPlan, ctx: Ctx): Promise<number> {
  const m = await import('../media/vm.js')
  const { waitForRegistry, registryUrl } = await import('../media/vm-wait.js')
  const { log, signal } = ctx
  await m.prepareDisks(p, signal)
  if (p.installArgs) {
    log.step(`installing onto ${p.paths.installDisk} (${p.accel.accel}); console: ${p.paths.installLog}`)
    const follow = m.followFile(p.paths.installLog, (l) => log.info(`  | ${l}`))
    try {
      await m.runInstall(p, { signal })
    } finally {
      await follow.stop()
    }
    log.step('installed; booting the installed disk')
  }
  log.step(`booting ${o.install ? p.paths.installDisk : `${p.build.systemDisk} (on the overlay ${p.paths.overlay})`} with ${p.accel.accel}`)
  log.info(`  registry → 127.0.0.1:${p.port}, ssh → 127.0.0.1:${p.sshPort} (${sshCommand(p.sshPort, sshUser(p.build.credentialsFile))})`)
  log.info(`  console: ${p.paths.consoleLog}; Ctrl-C stops the VM`)
  const follow = m.followFile(p.paths.consoleLog, (l) => log.info(`  | ${l}`))
  const watch = new AbortController()
  const announce = p.build.caFile
    ? waitForRegistry({
        target: {
          address: '127.0.0.1',
          port: p.port,
          hostname: p.build.hostname,
          ca: readFileSync(p.build.caFile, 'utf8'),
          flavor: p.build.flavor,
        },
        ...m.readiness(p),
        timeoutMs: 7 * 24 * 3600 * 1000,
        intervalMs: 5000,
        signal: watch.signal,
      })
        .then((r) => {
          if (!r.ok && r.reason === 'failed') log.warn(`${r.lastError}; see ${p.paths.consoleLog}`)
          if (r.ok)
            log.step(
              `the registry answers at ${registryUrl(p.build.hostname, p.port)} (CA ${p.build.caFile}, credentials ${p.build.credentialsFile ?? 'none'})`,
            )
        })
        .catch(() => {})
    : Promise.resolve()
  let r
  try {
    r = await m.runForeground(p, signal)
  } finally {
    watch.abort()
    await announce
    await follow.stop()
  }
  if (signal.aborted) throw signal.reason
  if (r.code !== 0) throw new FailureError(`QEMU failed with exit code ${r.code}: ${r.stderr.trim().split('\n').slice(-8).join('\n')}`)
  log.info('the VM has stopped')
  return 0
}

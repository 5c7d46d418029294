// guestfish (libguestfs) as one long session: a helper VM boots once (15-25 s
// under software emulation here) and then every operation costs ~50 ms, so a
// whole image is edited in ONE launch. guestfish reads its commands from a
// named pipe we keep writing to, and after each batch we send `echo <marker>`
// so we know where that batch's output ends. This keeps the session
// interactive (we read /etc/passwd, then decide owners) without `--listen`,
// whose daemon keeps our stderr pipe open, and without a shell.
//
// guestfish stops at the first failing command when it is not on a tty, so a
// failed batch ends the session: callers throw the image away.

import { randomBytes } from 'node:crypto'
import { createWriteStream, type WriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { FailureError, ToolError } from '../errors.js'
import { commandLine, requireTool, run, type RunResult } from '../exec.js'

export interface GuestfishDrive {
  file: string
  format: 'qcow2' | 'raw'
  readonly?: boolean
  /** Pass discards (fstrim) through to the image, so trimmed blocks leave it sparse */
  discard?: boolean
}

export interface GuestfishOptions {
  drives: GuestfishDrive[]
  /** Directory for the command pipe (a scratch dir) */
  workDir: string
  /** Use KVM if the caller knows it works; default software emulation (force_tcg) */
  kvm?: boolean
  signal?: AbortSignal
  /** Give up on the launch and every batch after this long (default 10 min) */
  timeoutMs?: number
}

/** Environment that makes libguestfs run its helper VM directly under QEMU. */
export function guestfishEnv(kvm = false): Record<string, string> {
  const env: Record<string, string> = { LIBGUESTFS_BACKEND: 'direct' }
  if (!kvm) env.LIBGUESTFS_BACKEND_SETTINGS = 'force_tcg'
  return env
}

/**
 * One guestfish argument. Double quotes with backslash escapes (guestfish(1)
 * "QUOTING"); control characters as \xhh. NUL cannot be passed at all.
 */
export function gfQuote(arg: string): string {
  if (arg.includes('\0')) throw new Error('guestfish arguments cannot contain NUL')
  let out = '"'
  for (const ch of arg) {
    const c = ch.codePointAt(0)!
    if (ch === '\\') out += '\\\\'
    else if (ch === '"') out += '\\"'
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0')
    else out += ch
  }
  return out + '"'
}

/** One command line for a guestfish script. Optional arguments (`name:value`) go unquoted in `opt`. */
export function gfLine(cmd: string, args: readonly string[] = [], opt: Record<string, string | number | boolean> = {}): string {
  if (!/^[a-z][a-z0-9-]*$/.test(cmd)) throw new Error(`not a guestfish command: ${cmd}`)
  const o = Object.entries(opt).map(([k, v]) => {
    if (!/^[a-z]+$/.test(k) || !/^[A-Za-z0-9._/+=-]*$/.test(String(v))) throw new Error(`bad guestfish optional argument ${k}:${v}`)
    return `${k}:${v}`
  })
  return [cmd, ...args.map(gfQuote), ...o].join(' ')
}

/**
 * Arguments that start guestfish reading a command pipe. Drives are added by
 * `add` lines on the pipe (guestfishAddLines), where discard can be set.
 */
export function guestfishArgs(scriptPipe: string): string[] {
  return ['-f', scriptPipe]
}

export function guestfishAddLines(drives: readonly GuestfishDrive[]): string[] {
  return drives.map((d) => {
    const opt: Record<string, string | boolean> = { format: d.format }
    if (d.readonly) opt.readonly = true
    if (d.discard) opt.discard = 'besteffort'
    return gfLine('add', [d.file], opt)
  })
}

/** A running guestfish with its helper VM launched. */
export class GuestfishSession {
  private out = ''
  private err = ''
  private done = false
  private result?: RunResult
  private readonly finished: Promise<RunResult>
  private waiter?: () => void
  private marks = 0

  private constructor(
    private readonly pipe: WriteStream,
    proc: Promise<RunResult>,
    private readonly pipePath: string,
    private readonly timeoutMs: number,
  ) {
    this.finished = proc.then(
      (r) => {
        this.done = true
        this.result = r
        this.waiter?.()
        return r
      },
      (e: unknown) => {
        this.done = true
        this.result = { stdout: this.out, stderr: this.err + String(e), code: null }
        this.waiter?.()
        return this.result
      },
    )
  }

  /** Start guestfish, add the drives and launch the helper VM. */
  static async start(o: GuestfishOptions): Promise<GuestfishSession> {
    // Checked before the pipe exists: opening a pipe nobody reads would block forever.
    await requireTool('guestfish', 'to write into the VM disk image (libguestfs)')
    const pipePath = join(o.workDir, `guestfish-${randomBytes(4).toString('hex')}.pipe`)
    await run('mkfifo', ['-m', '0600', pipePath], { why: 'for the guestfish command pipe' })
    const timeoutMs = o.timeoutMs ?? 10 * 60_000
    let session: GuestfishSession | undefined
    const proc = run('guestfish', guestfishArgs(pipePath), {
      env: guestfishEnv(o.kvm),
      nothrow: true,
      signal: o.signal,
      why: 'to write into the VM disk image (libguestfs)',
      onStdout: (c) => session?.onOut(c),
      onStderr: (c) => session?.onErr(c),
    })
    // Opening the write end blocks until guestfish opens the read end.
    const pipe = createWriteStream(pipePath)
    session = new GuestfishSession(pipe, proc, pipePath, timeoutMs)
    pipe.on('error', () => {}) // guestfish gone: reported by the batch that waits for it
    await session.batch([...guestfishAddLines(o.drives), 'run'])
    return session
  }

  private onOut(c: string): void {
    this.out += c
    this.waiter?.()
  }

  private onErr(c: string): void {
    this.err += c
  }

  /**
   * Send lines (built with gfLine) and wait until all of them ran. Returns
   * their standard output. Throws ToolError (and the session is over) if one
   * of them failed.
   */
  async batch(lines: readonly string[]): Promise<string> {
    if (this.done) throw this.failure('guestfish is no longer running')
    for (const l of lines) if (l.includes('\n')) throw new Error(`guestfish line contains a newline: ${l}`)
    const mark = `--mirror-appliance-mark-${++this.marks}-${randomBytes(6).toString('hex')}--`
    const start = this.out.length
    this.pipe.write([...lines, gfLine('echo', [mark])].join('\n') + '\n')
    const deadline = Date.now() + this.timeoutMs
    for (;;) {
      const at = this.out.indexOf(mark + '\n', start)
      if (at >= 0) {
        const text = this.out.slice(start, at)
        this.out = this.out.slice(at + mark.length + 1)
        return text
      }
      if (this.done) throw this.failure(`guestfish stopped while running: ${lines.join(' ; ').slice(0, 300)}`)
      if (Date.now() > deadline) {
        await this.kill()
        throw new FailureError(`guestfish did not answer within ${Math.round(this.timeoutMs / 1000)} s`)
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000)
        this.waiter = () => {
          clearTimeout(t)
          resolve()
        }
      })
      this.waiter = undefined
    }
  }

  /** One command; its standard output. */
  async cmd(cmd: string, ...args: string[]): Promise<string> {
    return this.batch([gfLine(cmd, args)])
  }

  /** Unmount everything, shut the helper VM down cleanly (flushes the image) and wait for guestfish to exit. */
  async close(): Promise<void> {
    if (!this.done) {
      this.pipe.end('umount-all\nshutdown\nexit\n')
      await this.finished
    }
    await rm(this.pipePath, { force: true })
    if (this.result && this.result.code !== 0) throw this.failure('guestfish failed while shutting down')
  }

  /** Stop without saving anything in particular (the caller throws the image away). */
  async kill(): Promise<void> {
    if (!this.done) {
      this.pipe.end('exit\n')
      const t = setTimeout(() => this.pipe.destroy(), 30_000)
      await this.finished
      clearTimeout(t)
    }
    await rm(this.pipePath, { force: true })
  }

  private failure(what: string): ToolError {
    const stderr = (this.result?.stderr ?? '') || this.err
    return new ToolError('guestfish', `${commandLine('guestfish', ['-f', this.pipePath])}  (${what})`, this.result?.code ?? null, stderr)
  }
}

/** Parse guestfish's `key: value` struct output (stat, statvfs, xfs-info) into a record. */
export function parseStruct(text: string): Record<string, string> {
  const r: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_0-9]+):\s?(.*)$/.exec(line)
    if (m) r[m[1]!] = m[2]!
  }
  return r
}

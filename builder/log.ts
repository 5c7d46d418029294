// Output for people and for scripts. Messages go to stderr; stdout is kept for
// results (`--json` prints exactly one JSON document there). Progress redraws
// one line on a TTY and falls back to a plain line every few seconds elsewhere.

export interface LogOptions {
  quiet: boolean
  verbose: boolean
  json: boolean
  /** false when NO_COLOR is set, --no-color is given, or stderr is not a TTY */
  color: boolean
  /** true when stderr is a TTY (progress redraws in place) */
  tty: boolean
}

export interface Progress {
  update(done: number, total?: number, detail?: string): void
  done(detail?: string): void
}

export interface Logger {
  readonly opts: LogOptions
  info(msg: string): void
  step(msg: string): void
  warn(msg: string): void
  error(msg: string): void
  debug(msg: string): void
  progress(label: string): Progress
}

export function logOptionsFromEnv(flags: Partial<LogOptions> & { noColor?: boolean }): LogOptions {
  const tty = Boolean(process.stderr.isTTY) && !process.env.CI
  const noColor = flags.noColor || 'NO_COLOR' in process.env || process.env.TERM === 'dumb'
  return {
    quiet: flags.quiet ?? false,
    verbose: flags.verbose ?? false,
    json: flags.json ?? false,
    color: !noColor && tty,
    tty,
  }
}

const paint = (on: boolean, code: number, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s)

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) [n, i] = [n / 1024, i + 1]
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

export function createLogger(opts: LogOptions, write: (s: string) => void = (s) => process.stderr.write(s)): Logger {
  let live = false // a progress line is on screen
  const clear = () => {
    if (live) write('\r\x1b[2K')
    live = false
  }
  const line = (s: string) => {
    clear()
    write(s + '\n')
  }
  return {
    opts,
    info: (m) => !opts.quiet && line(m),
    step: (m) => !opts.quiet && line(paint(opts.color, 1, '==> ') + m),
    warn: (m) => line(paint(opts.color, 33, 'warning: ') + m),
    error: (m) => line(paint(opts.color, 31, 'error: ') + m),
    debug: (m) => opts.verbose && line(paint(opts.color, 2, m)),
    progress(label) {
      const start = Date.now()
      let lastPlain = 0
      const fmt = (done: number, total?: number, detail?: string) => {
        const secs = Math.max((Date.now() - start) / 1000, 0.001)
        const pct = total ? ` ${((100 * done) / total).toFixed(0).padStart(3)}%` : ''
        const rate = done > 0 ? ` ${formatBytes(done / secs)}/s` : ''
        return `${label}:${pct} ${formatBytes(done)}${total ? ` of ${formatBytes(total)}` : ''}${rate}${detail ? ` ${detail}` : ''}`
      }
      return {
        update(done, total, detail) {
          if (opts.quiet) return
          if (opts.tty && !opts.json) {
            write('\r\x1b[2K' + fmt(done, total, detail))
            live = true
          } else if (Date.now() - lastPlain >= 5000) {
            lastPlain = Date.now()
            line(fmt(done, total, detail))
          }
        },
        done(detail) {
          if (opts.quiet) return clear()
          line(`${label}: done in ${((Date.now() - start) / 1000).toFixed(1)} s${detail ? ` (${detail})` : ''}`)
        },
      }
    },
  }
}

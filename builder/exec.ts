// The one wrapper around zx for every external tool call. argv arrays only:
// zx quotes each element, so no shell string is ever built by hand. Tools run
// with LANG=C so their messages can be parsed, and a failure carries the
// command ready to paste plus the tail of stderr.

import { readdirSync, readFileSync } from 'node:fs'
import { $, quote, which, type ProcessPromise } from 'zx'
import { MissingToolError, ToolError } from './errors.js'
import { TOOL_FACTS } from './tool-needs.js'

/** Debian package that provides each tool we call (from TOOL_FACTS); used in "missing" messages. */
export const TOOL_PACKAGES: Record<string, string> = Object.fromEntries(Object.entries(TOOL_FACTS).map(([tool, f]) => [tool, f.debian]))

export interface RunOptions {
  /** Working directory */
  cwd?: string
  /** Extra environment; merged over process.env with LANG=C */
  env?: Record<string, string | undefined>
  /** Data written to the tool's stdin */
  input?: string | Buffer
  /** Why we need this tool, for the "missing tool" message */
  why?: string
  /** Map an exit code to its meaning, for the error message */
  exitMeaning?: (code: number) => string | undefined
  /** Do not throw on non-zero exit; return the result */
  nothrow?: boolean
  /** Kill after this many milliseconds */
  timeoutMs?: number
  /** Called with each chunk of stderr (progress parsing) */
  onStderr?: (chunk: string) => void
  /** Called with each chunk of stdout */
  onStdout?: (chunk: string) => void
  /** AbortSignal to stop the tool (Ctrl-C) */
  signal?: AbortSignal
}

export interface RunResult {
  stdout: string
  stderr: string
  code: number | null
}

/** The command as a shell line, ready to paste into a terminal. */
export function commandLine(tool: string, args: readonly string[]): string {
  return [tool, ...args].map((a) => quote(a)).join(' ')
}

const found = new Map<string, string | null>()

/** Absolute path of a tool on PATH, or null. Cached per process. */
export async function findTool(tool: string): Promise<string | null> {
  if (!found.has(tool)) found.set(tool, await which(tool, { nothrow: true }))
  return found.get(tool) ?? null
}

/**
 * Oldest versions we can work with, for tools whose older releases lack an
 * option we pass (from TOOL_FACTS, where each says why).
 */
export const MIN_VERSIONS: Record<string, string> = Object.fromEntries(
  Object.entries(TOOL_FACTS).flatMap(([tool, f]) => (f.minVersion ? [[tool, f.minVersion]] : [])),
)

/** The first x.y[.z] in a --version line, as numbers. */
export function parseVersion(text: string): number[] | null {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text)
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : null
}

export function versionAtLeast(have: number[], min: string): boolean {
  const want = parseVersion(min)!
  for (let i = 0; i < 3; i++) if ((have[i] ?? 0) !== want[i]) return (have[i] ?? 0) > want[i]!
  return true
}

const versionChecked = new Map<string, Promise<void>>()

/** Throw MissingToolError naming the Debian package unless the tool is on PATH (and new enough). */
export async function requireTool(tool: string, why: string): Promise<string> {
  const path = await findTool(tool)
  if (!path) throw new MissingToolError(tool, TOOL_PACKAGES[tool] ?? tool, why)
  const min = MIN_VERSIONS[tool]
  if (min) {
    if (!versionChecked.has(tool)) {
      versionChecked.set(
        tool,
        (async () => {
          const r = await $({ quiet: true, nothrow: true, env: { ...process.env, LANG: 'C', LC_ALL: 'C' } })`${path} --version`
          const line = (r.stdout || r.stderr).trim().split('\n')[0] ?? ''
          const have = parseVersion(line)
          if (!have || !versionAtLeast(have, min)) {
            throw new MissingToolError(
              tool,
              TOOL_PACKAGES[tool] ?? tool,
              why,
              `${tool} ${min} or newer is needed; ${path} says "${line || 'no version'}"`,
            )
          }
        })(),
      )
    }
    await versionChecked.get(tool)
  }
  return path
}

/** Tools running now; killed when this process exits before they end. */
const running = new Set<ProcessPromise>()

/** pid and its descendants, children first (from /proc; just pid elsewhere). */
function treeOf(pid: number): number[] {
  const children = new Map<number, number[]>()
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
        children.set(ppid, [...(children.get(ppid) ?? []), Number(name)])
      } catch {
        // ended while we looked
      }
    }
  } catch {
    // no /proc
  }
  const out: number[] = []
  const visit = (p: number) => {
    for (const c of children.get(p) ?? []) visit(c)
    out.push(p)
  }
  visit(pid)
  return out
}

/**
 * Kill every tool still running, with its children, synchronously. For a
 * hard exit (a second Ctrl-C): without it, an xorriso would go on writing
 * into a directory that is being removed, long after we are gone.
 */
export function killRunningTools(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const p of running) {
    const pid = p.child?.pid
    if (!pid) continue
    for (const q of treeOf(pid)) {
      try {
        process.kill(q, signal)
      } catch {
        // already gone
      }
    }
  }
  running.clear()
}
process.on('exit', () => killRunningTools())

/** Run one external tool with an argv array. */
export async function run(tool: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  await requireTool(tool, opts.why ?? 'for this step')
  const env: Record<string, string | undefined> = { ...process.env, LANG: 'C', LC_ALL: 'C', ...opts.env }
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
  const p: ProcessPromise = $({
    cwd: opts.cwd,
    env: env as NodeJS.ProcessEnv,
    input: opts.input,
    quiet: true,
    nothrow: true,
    signal: opts.signal,
    timeout: opts.timeoutMs,
  })`${tool} ${args}`
  if (opts.onStderr) p.stderr.on('data', (d: Buffer) => opts.onStderr!(d.toString()))
  if (opts.onStdout) p.stdout.on('data', (d: Buffer) => opts.onStdout!(d.toString()))
  running.add(p)
  let out
  try {
    out = await p
  } finally {
    running.delete(p)
  }
  const result: RunResult = { stdout: out.stdout, stderr: out.stderr, code: out.exitCode }
  if (result.code !== 0 && !opts.nothrow) {
    throw new ToolError(
      tool,
      commandLine(tool, args),
      result.code,
      result.stderr,
      result.code === null ? undefined : opts.exitMeaning?.(result.code),
    )
  }
  return result
}

/** First line of `tool --version` (or the given flag), or null if the tool is missing. */
export async function toolVersion(tool: string, flag = '--version'): Promise<string | null> {
  if (!(await findTool(tool))) return null
  const r = await run(tool, [flag], { nothrow: true })
  const text = (r.stdout || r.stderr).trim()
  return text.split('\n')[0] ?? null
}

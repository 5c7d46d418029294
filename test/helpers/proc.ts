// Process helpers for fault tests and benchmarks: run the real CLI as a
// child we can signal, walk a process tree through /proc, sample its peak
// RSS, wait for a file to appear, and snapshot a directory to compare it
// before and after.

import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { CLI } from './cli.js'

export interface ProcResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface Proc {
  child: ChildProcess
  pid: number
  /** Settles when the process has exited and its pipes are closed */
  done: Promise<ProcResult>
  /** Every pid seen in the process tree while the tree sampler ran */
  seen: Set<number>
  /** Peak summed VmRSS of the tree, in KiB, so far */
  peakKiB(): number
}

export interface SpawnOptions {
  cwd?: string
  env?: Record<string, string | undefined>
  /** Own process group, so that a terminal-like Ctrl-C can go to the whole group */
  detached?: boolean
  /** Sample the tree's RSS every this many ms (default 20) */
  sampleMs?: number
}

/** Start `node builder/mirror-appliance.js ARGS` and watch its process tree. */
export function spawnCli(args: string[], opts: SpawnOptions = {}): Proc {
  return spawnWatched(process.execPath, [CLI, ...args], opts)
}

/** Start any program and watch its process tree (pids seen, peak RSS). */
export function spawnWatched(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', ...opts.env }
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  })
  const pid = child.pid
  if (pid === undefined) throw new Error(`could not start ${cmd}`)
  const sampler = sampleTree(pid, opts.sampleMs ?? 20)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const done = new Promise<ProcResult>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      sampler.stop()
      resolve({ code, signal, stdout, stderr })
    })
  })
  return { child, pid, done, seen: sampler.seen, peakKiB: () => sampler.peakKiB }
}

/** pid → ppid of every process now, from /proc/PID/stat. */
export function processTable(): Map<number, number> {
  const table = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      // "pid (comm) state ppid …": comm may hold spaces and parentheses
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      table.set(Number(name), Number(rest[1]))
    } catch {
      // the process ended while we looked
    }
  }
  return table
}

/** pid and all its descendants, now. */
export function processTree(pid: number, table = processTable()): number[] {
  const children = new Map<number, number[]>()
  for (const [p, pp] of table) children.set(pp, [...(children.get(pp) ?? []), p])
  const out: number[] = []
  const visit = (p: number) => {
    out.push(p)
    for (const c of children.get(p) ?? []) visit(c)
  }
  if (table.has(pid)) visit(pid)
  return out
}

/** VmRSS of one process in KiB (0 if it is gone or a zombie). */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

/** Samples the summed VmRSS of pid and all its descendants until stop(). */
export function sampleTree(pid: number, intervalMs = 20): { seen: Set<number>; readonly peakKiB: number; stop(): number } {
  const seen = new Set<number>()
  let peak = 0
  const tick = () => {
    let sum = 0
    for (const p of processTree(pid)) {
      seen.add(p)
      sum += rssKiB(p)
    }
    if (sum > peak) peak = sum
  }
  tick()
  const timer = setInterval(tick, intervalMs)
  timer.unref()
  return {
    seen,
    get peakKiB() {
      return peak
    },
    stop() {
      clearInterval(timer)
      return peak
    },
  }
}

/** The command line of a live process, or null if it is gone (or a zombie). */
export function cmdline(pid: number): string | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) === 'Z') return null
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()
  } catch {
    return null
  }
}

/** Poll fn until it returns a truthy value; throws after timeoutMs (a hang guard, not a timing assertion). */
export async function waitFor<T>(fn: () => T | null | undefined | false, what: string, timeoutMs = 60_000, intervalMs = 3): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** Names in dir (empty if it does not exist). */
export function ls(dir: string): string[] {
  try {
    return readdirSync(dir).sort()
  } catch {
    return []
  }
}

/** A file somewhere under dir whose name matches re, or undefined. */
export function findUnder(dir: string, re: RegExp): string | undefined {
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return undefined
  }
  for (const e of entries) {
    const p = join(dir, e.name)
    if (re.test(e.name)) return p
    if (e.isDirectory()) {
      const f = findUnder(p, re)
      if (f) return f
    }
  }
  return undefined
}

export interface Entry {
  kind: 'file' | 'dir' | 'symlink' | 'other'
  mode: number
  size: number
  /** sha256 of a file up to 8 MiB (bigger: its ctime, which any write or chmod changes), target of a symlink */
  content?: string
  ino: number
}

const HASH_LIMIT = 8 * 1024 * 1024

/** Every entry under dir (relative path → kind, mode, size, sha256, inode). */
export function snapshot(dir: string): Map<string, Entry> {
  const out = new Map<string, Entry>()
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name
      const p = join(dir, r)
      const st = lstatSync(p)
      const base = { mode: st.mode & 0o7777, size: st.size, ino: st.ino }
      if (st.isDirectory()) {
        out.set(r, { kind: 'dir', ...base, size: 0 })
        walk(r)
      } else if (st.isFile()) {
        const content =
          st.size > HASH_LIMIT ? `ctime ${st.ctimeMs} mtime ${st.mtimeMs}` : createHash('sha256').update(readFileSync(p)).digest('hex')
        out.set(r, { kind: 'file', ...base, content })
      } else if (st.isSymbolicLink()) out.set(r, { kind: 'symlink', ...base, content: readlinkSync(p) })
      else out.set(r, { kind: 'other', ...base })
    }
  }
  walk('')
  return out
}

/** Differences between two snapshots, as readable lines (empty when equal). */
export function diffSnapshots(a: Map<string, Entry>, b: Map<string, Entry>, opts: { ignoreIno?: boolean } = {}): string[] {
  const out: string[] = []
  for (const [p, e] of a) {
    const f = b.get(p)
    if (!f) out.push(`removed: ${p}`)
    else {
      const x = opts.ignoreIno ? { ...e, ino: 0 } : e
      const y = opts.ignoreIno ? { ...f, ino: 0 } : f
      if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`changed: ${p} ${JSON.stringify(e)} -> ${JSON.stringify(f)}`)
    }
  }
  for (const p of b.keys()) if (!a.has(p)) out.push(`added: ${p}`)
  return out
}

/** Problems with a finished build output: every SHA256SUMS line must match, every file be listed. */
export function verifyOutput(dir: string): string[] {
  const problems: string[] = []
  let sums: string
  try {
    sums = readFileSync(join(dir, 'SHA256SUMS'), 'utf8')
  } catch {
    return [`${dir}: no SHA256SUMS (not a complete build)`]
  }
  const listed = new Set<string>()
  for (const line of sums.split('\n').filter(Boolean)) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line)
    if (!m) {
      problems.push(`bad SHA256SUMS line: ${line}`)
      continue
    }
    listed.add(m[2]!)
    try {
      const h = createHash('sha256')
        .update(readFileSync(join(dir, m[2]!)))
        .digest('hex')
      if (h !== m[1]) problems.push(`${m[2]}: checksum differs`)
    } catch {
      problems.push(`${m[2]}: listed but missing`)
    }
  }
  for (const [p, e] of snapshot(dir)) {
    if (e.kind !== 'file' || p === 'SHA256SUMS' || p === '.mirror-appliance' || p.startsWith('secrets/')) continue
    if (!listed.has(p)) problems.push(`${p}: not in SHA256SUMS`)
  }
  return problems
}

/** Run at most n of the given async jobs at once (QEMU boots on a 2-core machine). */
export function limiter(n: number): <T>(f: () => Promise<T>) => Promise<T> {
  let active = 0
  const queue: Array<() => void> = []
  return async (f) => {
    if (active >= n) await new Promise<void>((r) => queue.push(r))
    active++
    try {
      return await f()
    } finally {
      active--
      queue.shift()?.()
    }
  }
}

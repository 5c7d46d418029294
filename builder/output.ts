// Outputs appear whole or not at all. Work happens in a hidden temp directory
// beside the destination (same filesystem, so the final rename is atomic);
// on error or Ctrl-C the temp directory is removed. A lock file refuses a
// second build into the same destination while one runs.

import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { removeOnExit } from './atomic.js'
import { FailureError, UserError } from './errors.js'

/** Marker file that says a directory was written by us and may be replaced. */
export const MARKER = '.mirror-appliance'

function acquireLock(lockPath: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o644)
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      return () => rmSync(lockPath, { force: true })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      const pid = Number(readFileSync(lockPath, 'utf8').trim())
      if (pidAlive(pid)) {
        throw new UserError(
          `${dirname(lockPath)}: another mirror-appliance (pid ${pid}) is writing this output`,
          `wait for it to finish, or remove ${lockPath} if it is gone`,
        )
      }
      rmSync(lockPath, { force: true }) // stale lock of a process that died
    }
  }
  throw new UserError(`cannot lock ${lockPath}`)
}

/** True if a process with this pid is alive (EPERM: alive, not ours). */
function pidAlive(pid: number): boolean {
  if (!(pid > 0)) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Leftovers of builds that died hard (SIGKILL, power loss) into this
 * destination: their temp dirs are removed; a previous output that was moved
 * aside but never replaced (death between the two renames) is moved back.
 * Only called while holding the lock, so no live build owns these.
 */
function recoverLeftovers(parent: string, name: string, dest: string): void {
  const re = new RegExp(`^\\.${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(tmp|old)-(\\d+)$`)
  for (const entry of readdirSync(parent)) {
    const m = re.exec(entry)
    if (!m || (Number(m[2]) !== process.pid && pidAlive(Number(m[2])))) continue
    const p = join(parent, entry)
    if (m[1] === 'old' && !existsSync(dest)) renameSync(p, dest)
    else rmSync(p, { recursive: true, force: true })
  }
}

/** Out of space, quota or a read-only disk: the world's failure, said plainly. */
function diskError(e: unknown, dest: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code
  const what: Record<string, string> = {
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'the file system is read-only',
  }
  if (code && what[code]) {
    return new FailureError(
      `cannot write ${dest}: ${what[code]} (${(e as Error).message}); nothing was written`,
      'free some space or choose another output directory',
    )
  }
  return e
}

export interface OutputTransaction {
  /** The temp directory to write into */
  dir: string
  /** The final destination */
  dest: string
}

/**
 * Run `work` with a fresh temp directory; on success replace `dest` with it.
 * `dest` may not exist, be empty, or be an earlier output of ours (it has the
 * marker); anything else is refused so that no user data is ever replaced.
 */
export async function writeOutputDir<T>(dest: string, work: (tx: OutputTransaction) => Promise<T>): Promise<T> {
  dest = resolve(dest)
  const parent = dirname(dest)
  mkdirSync(parent, { recursive: true })
  if (existsSync(dest) && readdirSync(dest).length > 0 && !existsSync(join(dest, MARKER))) {
    throw new UserError(
      `${dest} exists and was not written by mirror-appliance; refusing to replace it`,
      'choose another output directory or empty this one',
    )
  }
  const release = acquireLock(join(parent, `.${basename(dest)}.lock`))
  // Not atomic.ts's tempBeside name: one temp per destination and pid (the
  // lock allows one build at a time), so recoverLeftovers can tell a dead
  // build's temp from a live one by the pid alone.
  const tmp = join(parent, `.${basename(dest)}.tmp-${process.pid}`)
  const cleanup = () => rmSync(tmp, { recursive: true, force: true })
  // A hard exit (second Ctrl-C) skips the finally below: remove and unlock here too.
  const forgetTmp = removeOnExit(tmp)
  process.once('exit', release)
  try {
    recoverLeftovers(parent, basename(dest), dest)
    cleanup()
    mkdirSync(tmp, { recursive: true })
    const result = await work({ dir: tmp, dest })
    closeSync(openSync(join(tmp, MARKER), 'w', 0o644))
    const old = join(parent, `.${basename(dest)}.old-${process.pid}`)
    if (existsSync(dest)) renameSync(dest, old)
    renameSync(tmp, dest)
    rmSync(old, { recursive: true, force: true })
    return result
  } catch (e) {
    throw diskError(e, dest)
  } finally {
    cleanup()
    forgetTmp()
    process.removeListener('exit', release)
    release()
  }
}

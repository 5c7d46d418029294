// Files and directories appear whole or not at all: written under a hidden
// temp name beside the destination (same filesystem, so the final rename is
// atomic), renamed into place on success, removed on any failure. A hard exit
// (second Ctrl-C, process.exit) skips the `catch`, so the temp is also removed
// from an 'exit' listener while the write runs.
// Ground floor: imports nothing from builder/.

import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * A fresh temp name beside dest: `.<name>.tmp-<pid>-<random>`. Hidden, on the
 * destination's filesystem, unique per process and call; the pid lets a later
 * run tell a dead writer's leftover from a live one.
 */
export function tempBeside(dest: string): string {
  return join(dirname(dest), `.${basename(dest)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`)
}

/**
 * Remove path (file or tree) if the process exits before the returned
 * function is called: a hard exit runs no catch or finally. For writers that
 * cannot use withTemp (the final name known only at the end).
 */
export function removeOnExit(path: string): () => void {
  const onExit = () => rmSync(path, { recursive: true, force: true })
  process.once('exit', onExit)
  return () => process.removeListener('exit', onExit)
}

export interface WithTempOptions {
  /**
   * dest may exist (a directory being swapped): it is moved aside, the new
   * one renamed in, then the old one removed; if the rename fails the old one
   * is moved back. Without this, rename(2) replaces a file but refuses a
   * non-empty directory.
   */
  replace?: boolean
  /** The temp path to use instead of tempBeside(dest) (it must be on dest's filesystem). */
  tmp?: string
}

/**
 * Run work(tmp) and rename tmp to dest when it succeeds. work may write a
 * file or build a directory at tmp (it creates it; nothing exists there
 * before). On any failure, abort included, tmp is removed and dest is
 * untouched.
 */
export async function withTemp<T>(dest: string, work: (tmp: string) => Promise<T>, opts: WithTempOptions = {}): Promise<T> {
  const tmp = opts.tmp ?? tempBeside(dest)
  const forget = removeOnExit(tmp)
  try {
    const result = await work(tmp)
    if (opts.replace) await swapInto(tmp, dest)
    else await rename(tmp, dest)
    return result
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {})
    throw e
  } finally {
    forget()
  }
}

/** Rename fresh to dest, moving an existing dest aside first and back if the rename fails. */
async function swapInto(fresh: string, dest: string): Promise<void> {
  const old = join(dirname(dest), `.${basename(dest)}.old-${process.pid}-${randomBytes(4).toString('hex')}`)
  const had = await rename(dest, old).then(
    () => true,
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return false
      throw e
    },
  )
  try {
    await rename(fresh, dest)
  } catch (e) {
    if (had) await rename(old, dest).catch(() => {})
    throw e
  }
  if (had) await rm(old, { recursive: true, force: true })
}

export interface WriteAtomicOptions {
  /** File mode (default 0o644), set exactly whatever the umask. */
  mode?: number
  /** fsync the data before the rename, for files that must survive a power cut. */
  fsync?: boolean
  /** Create dest's directory first. */
  mkdir?: boolean
}

/** Write data to dest atomically: the old content or the new, never a half. */
export async function writeFileAtomic(dest: string, data: string | Buffer, opts: WriteAtomicOptions = {}): Promise<void> {
  if (opts.mkdir) await mkdir(dirname(dest), { recursive: true })
  const mode = opts.mode ?? 0o644
  await withTemp(dest, async (tmp) => {
    const fh = await open(tmp, 'wx', mode)
    try {
      await fh.writeFile(data)
      await fh.chmod(mode) // the umask narrowed the mode open() gave
      if (opts.fsync) await fh.sync()
    } finally {
      await fh.close()
    }
  })
}

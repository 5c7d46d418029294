// A lock on a cache directory, so that two `images fetch`/`import` runs (or a
// fetch and a `build`) never write index.json or delete blobs under each
// other. The lock is a file created with O_EXCL holding the owner's pid; a
// lock whose owner has died is taken over.

import { open, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { FailureError } from '../errors.js'

export interface LockOptions {
  /** Give up after this long (default 10 minutes) */
  timeoutMs?: number
  /** Called once when we start waiting for another process */
  onWait?: (ownerPid: number) => void
  signal?: AbortSignal
}

/** True while a process with this pid exists (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const held = new Set<string>()

/** Run fn while holding DIR/.lock. Re-entrant within one process. */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const path = join(dir, '.lock')
  if (held.has(path)) return fn()
  const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000)
  let waited = false
  for (;;) {
    opts.signal?.throwIfAborted()
    try {
      const fh = await open(path, 'wx', 0o644)
      await fh.writeFile(`${process.pid}\n`)
      await fh.close()
      break
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim())
    if (!Number.isInteger(owner) || owner <= 0 || !processAlive(owner)) {
      // Stale lock (owner died, or an empty file from a crash between open and write).
      await unlink(path).catch(() => {})
      continue
    }
    if (!waited) opts.onWait?.(owner)
    waited = true
    if (Date.now() > deadline) {
      throw new FailureError(
        `${dir} is locked by process ${owner}`,
        'wait for it to finish, or remove the lock file if that process is gone: ' + path,
      )
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  held.add(path)
  try {
    return await fn()
  } finally {
    held.delete(path)
    await unlink(path).catch(() => {})
  }
}

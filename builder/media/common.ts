// Pieces every media writer shares: input checks that fail as UserError,
// scratch directories, and progress in percent and MB/s. Atomic output (temp
// file beside the target, renamed at the end, removed on error or abort) is
// withTemp in builder/atomic.ts.

import { mkdtemp, rm, stat, statfs, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { FailureError, UserError } from '../errors.js'
import type { XorrisoProgress } from '../tools/xorriso.js'

export interface MediaProgress {
  /** Percent of the image written, 0..100 */
  percent: number
  bytesWritten: number
  /** Average write speed since the write started, in MB/s (10^6 bytes) */
  mbPerSec: number
}

export type OnProgress = (p: MediaProgress) => void

/** Turns xorriso's sector counts into MediaProgress, timing from construction. */
export function progressMeter(onProgress: OnProgress | undefined, now: () => number = Date.now): (p: XorrisoProgress) => void {
  const start = now()
  return (p) => {
    if (!onProgress) return
    const bytes = p.sectors * 2048
    const secs = (now() - start) / 1000
    onProgress({ percent: p.percent, bytesWritten: bytes, mbPerSec: secs > 0 ? Math.round(bytes / 1e4 / secs) / 100 : 0 })
  }
}

/** A scratch directory, removed afterwards whatever happens. */
export async function withScratchDir<T>(fn: (dir: string) => Promise<T>, parent = tmpdir()): Promise<T> {
  const dir = await mkdtemp(join(parent, 'mirror-appliance-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Write the kickstart to dir/ks.cfg with a fixed mtime. */
export async function writeKickstart(dir: string, ksText: string, epoch: number): Promise<string> {
  if (!ksText.trim()) throw new UserError('the kickstart text is empty')
  const p = join(dir, 'ks.cfg')
  await writeFile(p, ksText, { mode: 0o644 })
  await utimes(p, epoch, epoch)
  return p
}

/** Total size in bytes of all regular files under a directory (no symlinks followed). */
export async function treeSize(dir: string): Promise<number> {
  const { readdir, lstat } = await import('node:fs/promises')
  let total = 0
  const walk = async (p: string): Promise<void> => {
    for (const e of await readdir(p, { withFileTypes: true })) {
      const full = join(p, e.name)
      if (e.isDirectory()) await walk(full)
      else if (e.isFile()) total += (await lstat(full)).size
    }
  }
  await walk(dir)
  return total
}

/** UserError unless payloadDir is an existing directory. */
export async function checkPayloadDir(payloadDir: string | undefined): Promise<void> {
  if (payloadDir === undefined) return
  const s = await stat(payloadDir).catch(() => null)
  if (!s) throw new UserError(`payload directory ${payloadDir} does not exist`)
  if (!s.isDirectory()) throw new UserError(`payload ${payloadDir} is not a directory`)
}

/** UserError if the output exists (unless force) or its directory is missing. */
export async function checkOutFile(outFile: string, force = false): Promise<void> {
  const d = await stat(dirname(outFile)).catch(() => null)
  if (!d?.isDirectory()) throw new UserError(`output directory ${dirname(outFile)} does not exist`)
  if (!force && (await stat(outFile).catch(() => null))) {
    throw new UserError(`${outFile} already exists`, 'remove it or pass force')
  }
}

/** Free bytes on the file system that holds dir. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir)
  return s.bavail * s.bsize
}

/** UserError if the file system of dir has less than need bytes free (plus 1% and 16 MiB slack). */
export async function checkFreeSpace(dir: string, need: number, what: string): Promise<void> {
  const want = Math.ceil(need * 1.01) + 16 * 1024 * 1024
  const free = await freeBytes(dir)
  if (free < want) {
    const mb = (n: number): string => `${Math.ceil(n / 1024 / 1024)} MiB`
    // Not the user's mistake but the machine's state: exit 1, like a full disk while writing.
    throw new FailureError(
      `not enough free space in ${dir} for ${what}: need about ${mb(want)}, ${mb(free)} free`,
      'free some space or choose another output directory',
    )
  }
}

/** Abort early with a clear error if the signal is already aborted. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new FailureError('interrupted')
}

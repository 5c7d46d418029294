// sha256 of files: the one file hasher of the builder (payload blobs, base
// ISOs, output media, the manifest).
//
// Memory stays flat whatever the file size: two fixed buffers, the next one
// read by libuv's thread pool while the current one is hashed on the main
// thread, instead of a stream that allocates a new chunk per read and leaves
// the garbage collector to catch up (that cost ~40 MiB of RSS on a 4 GiB ISO).
//
// Base ISOs are hashed once per file version: sha256FileCached() keeps the
// result in the cache keyed by the file's identity (device, inode, size,
// mtime and ctime in nanoseconds, as git's index does). Any write to the file
// changes its ctime, which no user can set back, so a changed file is hashed
// again.
//
// ISOs can be hashed as they are written (hashWhileWritten: a reader follows
// xorriso through the file, on the other core, over data still in the page
// cache) instead of being read back afterwards, which added about a third
// of xorriso's own time to a build of a 1 GiB ISO here (issue 21, goal 1). One
// catch: xorriso writes the first 64 KiB last (see hashWhileWritten), and
// sha256 must start there, so the follower starts from a guess of those
// bytes and the result counts only if the guess was right. The result is
// remembered for this process by the file's inode, size and mtime (rename
// and chmod keep those; any write changes the mtime), and hashPinned()
// answers from it.

import { createHash } from 'node:crypto'
import { open, readFile, realpath, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { writeFileAtomic } from './atomic.js'

const CHUNK = 1 << 20

export interface FileHash {
  /** lowercase hex sha256 */
  sha256: string
  size: number
}

/** sha256 and size of a file, read in fixed buffers. */
export async function hashFile(path: string, signal?: AbortSignal): Promise<FileHash> {
  signal?.throwIfAborted()
  const h = createHash('sha256')
  const fh = await open(path, 'r')
  try {
    const bufs = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)]
    let size = 0
    let i = 0
    let pending = fh.read(bufs[0]!, 0, CHUNK, null)
    for (;;) {
      const { bytesRead } = await pending
      if (bytesRead === 0) break
      signal?.throwIfAborted()
      const cur = bufs[i]!
      i ^= 1
      pending = fh.read(bufs[i]!, 0, CHUNK, null) // the next read runs while this chunk is hashed
      h.update(cur.subarray(0, bytesRead))
      size += bytesRead
    }
    return { sha256: h.digest('hex'), size }
  } finally {
    await fh.close()
  }
}

/** sha256 of a file as lowercase hex. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  return (await hashFile(path, signal)).sha256
}

/** The identity of one version of a file, or null if it cannot be read. */
export async function fileIdentity(path: string): Promise<string | null> {
  try {
    const s = await stat(path, { bigint: true })
    if (!s.isFile()) return null
    return [await realpath(path), s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join('\0')
  } catch {
    return null
  }
}

/** A file's hash together with the identity of the version that was read. */
export interface PinnedHash extends FileHash {
  identity: string
}

/**
 * Hash a file and say which version of it was read; null if it changed while
 * it was read. Builds hash each medium right after writing it, while it is
 * still in the page cache and the next medium is being written; the manifest
 * uses the result only if the file is still that version.
 */
export async function hashPinned(path: string, signal?: AbortSignal): Promise<PinnedHash | null> {
  const before = await fileIdentity(path)
  if (!before) return null
  const h = (await hashedWhileWritten(path)) ?? (await hashFile(path, signal))
  return (await fileIdentity(path)) === before ? { ...h, identity: before } : null
}

const HEX64 = /^[0-9a-f]{64}$/

/**
 * sha256 of a big input file (a base ISO), remembered under cacheDir for this
 * version of the file. The result is stored only if the file did not change
 * while it was read. A cache that cannot be read or written only costs time.
 */
export async function sha256FileCached(
  path: string,
  cacheDir: string | undefined,
  signal?: AbortSignal,
): Promise<{ sha256: string; cached: boolean }> {
  const before = await fileIdentity(path)
  const entry = cacheDir && before ? join(cacheDir, 'checksums', createHash('sha256').update(`v1\0${before}`).digest('hex')) : undefined
  if (entry) {
    const hit = (await readFile(entry, 'utf8').catch(() => '')).trim()
    if (HEX64.test(hit)) return { sha256: hit, cached: true }
  }
  const { sha256 } = await hashFile(path, signal)
  if (entry && (await fileIdentity(path)) === before) {
    await writeFileAtomic(entry, sha256 + '\n', { mkdir: true }).catch(() => {})
  }
  return { sha256, cached: false }
}

// ---- hashing an ISO as xorriso writes it -------------------------------------

/** Hashes of files written by this process, by device and inode; each valid while the size and mtime stay. */
const writtenHashes = new Map<string, { sha256: string; size: number; mtimeNs: bigint }>()

/** What hashWhileWritten found for the file at `path` now, if it is still that version. */
export async function hashedWhileWritten(path: string): Promise<FileHash | null> {
  const s = await stat(path, { bigint: true }).catch(() => null)
  const known = s && writtenHashes.get(`${s.dev}:${s.ino}`)
  return known && BigInt(known.size) === s.size && known.mtimeNs === s.mtimeNs ? { sha256: known.sha256, size: known.size } : null
}

/** How long the reader waits when it has caught up with the writer. */
const FOLLOW_POLL_MS = 20

export interface WhileWritten {
  /** sha256 and size of the file as written; null when the guessed head was wrong (read it back for the hash) */
  hash: FileHash | null
  /** The file's first head.length bytes as they ended up: the guess for the next write */
  head: Buffer
}

/**
 * sha256 of the file a writer is producing at `path`, read as it grows, for
 * a writer that writes front to back except for a head it writes last.
 * xorriso is one: libburn's stdio pseudo-drive writes each track front to
 * back (burn_stdio_write_track() in libburn/write.c), but libisoburn treats a
 * regular file as overwriteable media and writes the image's first 64 KiB
 * (system area and volume descriptors) as zeros at first and for real when
 * the session is complete (isoburn_activate_session(), its "target_iso_head";
 * seen here: only those bytes differ between the first pass and the end).
 * sha256 cannot start without those bytes, so hashing starts from `guess`
 * (what the same writer put there last time) and the bytes after it are
 * hashed as they come. At the end the real head and the size are compared:
 * the hash counts only if the guess was the head the file got, and is then
 * remembered for hashPinned(). Rejects if the writer does (its error is the
 * caller's to report), or the file cannot be read.
 */
export async function hashWhileWritten(path: string, writer: Promise<unknown>, guess: Buffer, signal?: AbortSignal): Promise<WhileWritten> {
  let writerDone = false
  let writerFailed = false
  writer.then(
    () => (writerDone = true),
    () => (writerDone = writerFailed = true),
  )
  const stopIfFailed = () => {
    if (writerFailed) throw new Error(`${path}: its writer failed`)
    signal?.throwIfAborted()
  }
  let fh: FileHandle | undefined
  // The writer creates the file when it starts writing.
  while (!fh) {
    const done = writerDone
    fh = await open(path, 'r').catch(() => undefined)
    if (!fh) {
      stopIfFailed()
      if (done) throw new Error(`${path}: not written`)
      await sleep(FOLLOW_POLL_MS)
    }
  }
  try {
    const h = createHash('sha256').update(guess)
    const buf = Buffer.allocUnsafe(CHUNK)
    let size = guess.length
    for (;;) {
      stopIfFailed()
      const done = writerDone // read before the read: a writer done now has written everything
      const { bytesRead } = await fh.read(buf, 0, CHUNK, size)
      if (bytesRead > 0) {
        h.update(buf.subarray(0, bytesRead))
        size += bytesRead
      } else if (done) break
      else await sleep(FOLLOW_POLL_MS)
    }
    stopIfFailed()
    const s = await fh.stat({ bigint: true })
    const head = Buffer.alloc(Math.min(guess.length, Number(s.size)))
    await fh.read(head, 0, head.length, 0)
    if (s.size !== BigInt(size) || !head.equals(guess)) return { hash: null, head }
    const hash = { sha256: h.digest('hex'), size }
    // The version read: stat again after the read, so a write during it is not taken for this one.
    const after = await stat(path, { bigint: true })
    if (after.ino === s.ino && after.size === s.size && after.mtimeNs === s.mtimeNs)
      writtenHashes.set(`${s.dev}:${s.ino}`, { sha256: hash.sha256, size, mtimeNs: s.mtimeNs })
    return { hash, head }
  } finally {
    await fh.close()
  }
}

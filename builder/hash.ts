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

import { createHash } from 'node:crypto'
import { mkdir, open, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

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
  const h = await hashFile(path, signal)
  return (await fileIdentity(path)) === before ? { ...h, identity: before } : null
}

const HEX64 = /^[0-9a-f]{64}$/

/**
 * sha256 of a big input file (a base ISO), remembered under cacheDir for this
 * version of the file. The result is stored only if the file did not change
 * while it was read. A cache that cannot be read or written only costs time.
 */
export async function sha256FileCached(path: string, cacheDir: string | undefined, signal?: AbortSignal): Promise<{ sha256: string; cached: boolean }> {
  const before = await fileIdentity(path)
  const entry = cacheDir && before ? join(cacheDir, 'checksums', createHash('sha256').update(`v1\0${before}`).digest('hex')) : undefined
  if (entry) {
    const hit = (await readFile(entry, 'utf8').catch(() => '')).trim()
    if (HEX64.test(hit)) return { sha256: hit, cached: true }
  }
  const { sha256 } = await hashFile(path, signal)
  if (entry && (await fileIdentity(path)) === before) {
    const tmp = `${entry}.tmp-${process.pid}`
    try {
      await mkdir(join(cacheDir!, 'checksums'), { recursive: true })
      await writeFile(tmp, sha256 + '\n', { mode: 0o644 })
      await rename(tmp, entry)
    } catch {
      await rm(tmp, { force: true }).catch(() => {})
    }
  }
  return { sha256, cached: false }
}

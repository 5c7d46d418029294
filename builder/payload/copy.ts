// Copy a blob and hash the very bytes that are written, reading the source
// once. This is the payload's copy when hard links cannot be used (the output
// is on another filesystem, or the caller wants independent files).
//
// Why not the kernel's copy (fs.copyFile) with a hash of the source
// alongside, as before: across filesystems the kernel refuses
// copy_file_range (EXDEV, seen on Linux 6.18 from ext4 to tmpfs and to
// another ext4), so that copy went through memory like this one, and the
// source had two readers: on a blob bigger than the free page cache the hash,
// slower than the copy, can fall behind far enough to read it from disk a
// second time.
// Here each chunk is read once into one of a few fixed buffers; while this
// thread hashes it, libuv's thread pool writes it and reads the next one.
// What is checked is what was written. Memory is the fixed buffers, whatever
// the blob size.
//
// Speed: the sha256 alone costs ~0.5 CPU s/GiB (OpenSSL with SHA-NI, about
// 2 GB/s on one core) and the copy about what cp -r costs (0.4-0.7 s/GiB on
// the bench machine), ~1.0 s/GiB in all. So the copy keeps pace with cp -r
// only while a second core is free for it; with one core it runs at about
// half of cp's speed, and no order of the same work changes that.

import { createHash } from 'node:crypto'
import { open, type FileReadResult } from 'node:fs/promises'

/**
 * 1 MiB reads, 4 buffers: one being read, one being hashed and written, two
 * whose writes may still be finishing (a disk that stalls on write-back
 * does not stop the reads at once). On the bench machine 256 KiB to 4 MiB
 * chunks cost the same CPU per GiB (0.85-1.0 s); 4 MiB in all stays small.
 */
const CHUNK = 1 << 20
const BUFFERS = 4

/**
 * Buffers of finished copies, kept for the next one: allocating them anew
 * per blob leaves the garbage collector to return them, and RSS climbs with
 * the number of blobs. A free list keeps it at one set per concurrent copy.
 */
const spare: Buffer[][] = []
const takeBuffers = (): Buffer[] => spare.pop() ?? Array.from({ length: BUFFERS }, () => Buffer.allocUnsafe(CHUNK))

/** A promise whose rejection is never "unhandled" while other awaits run; awaiting it still throws. */
function tracked<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {})
  return p
}

/**
 * Copy src to dst (which must not exist: it is created exclusively, with
 * src's permission bits) and return the sha256 digest ("sha256:…") and size
 * of what was written. The caller compares the digest and renames or removes
 * dst; on an error dst may hold part of the data.
 */
export async function copyHashing(src: string, dst: string, signal?: AbortSignal): Promise<{ digest: string; size: number }> {
  signal?.throwIfAborted()
  const hash = createHash('sha256')
  const input = await open(src, 'r')
  try {
    const { mode } = await input.stat()
    const output = await open(dst, 'wx', mode & 0o777)
    const buffers = takeBuffers()
    let reading: Promise<FileReadResult<Buffer>> | undefined
    const writes: Promise<unknown>[] = []
    try {
      // open() applied the umask; the copy keeps the source's bits, as fs.copyFile does.
      await output.chmod(mode & 0o777)
      let size = 0
      let i = 0
      reading = tracked(input.read(buffers[0]!, 0, CHUNK, 0))
      for (;;) {
        const { bytesRead }: FileReadResult<Buffer> = await reading
        if (bytesRead === 0) break
        signal?.throwIfAborted()
        const chunk = buffers[i]!.subarray(0, bytesRead)
        const next = (i + 1) % BUFFERS
        await writes[next] // the next buffer is free once the write that used it has finished
        reading = tracked(input.read(buffers[next]!, 0, CHUNK, size + bytesRead))
        writes[i] = tracked(output.write(chunk, 0, bytesRead, size)) // positional: writes may finish in any order
        hash.update(chunk) // the write and the hash only read the buffer, so both may use it at once
        size += bytesRead
        i = next
      }
      await Promise.all(writes)
      return { digest: 'sha256:' + hash.digest('hex'), size }
    } finally {
      // On an error, reads and writes may still be running: wait for them before the buffers are reused.
      await Promise.allSettled([...writes, reading])
      spare.push(buffers)
      await output.close()
    }
  } finally {
    await input.close()
  }
}

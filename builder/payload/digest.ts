// Content addressing: sha256 digests computed while data streams through, so
// a blob of any size costs a fixed amount of memory.

import { createHash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { hashFile as hashFileHex } from '../hash.js'

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/

export function isDigest(s: unknown): s is string {
  return typeof s === 'string' && DIGEST_RE.test(s)
}

/** The hex part of a sha256:… digest. Throws on anything else (never a path fragment). */
export function digestHex(digest: string): string {
  if (!isDigest(digest)) throw new Error(`not a sha256 digest: ${JSON.stringify(digest)}`)
  return digest.slice(7)
}

export function sha256Bytes(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex')
}

/** A pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256')
  size = 0
  constructor() {
    super()
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk)
    this.size += chunk.length
    cb(null, chunk)
  }
  digest(): string {
    return 'sha256:' + this.hash.digest('hex')
  }
}

/** sha256 and size of a file, streamed. */
export async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const { sha256, size } = await hashFileHex(path)
  return { digest: 'sha256:' + sha256, size }
}

// A reproducible tar.gz writer: entries in the order given (the caller sorts),
// every header with the same mtime, uid/gid 0 and owner names "root", bodies
// streamed from disk (memory stays flat whatever the size), gzip from zlib
// (its header carries no timestamp and no file name). ustar headers, with a
// PAX record only for names longer than ustar holds or sizes of 8 GiB and up.

import { createReadStream } from 'node:fs'
import type { Readable } from 'node:stream'

export interface TarInput {
  /** '/'-separated path in the archive; directories without a trailing slash */
  name: string
  type: 'file' | 'dir'
  mode: number
  /** Regular files: either a file on disk or the bytes */
  source?: string
  data?: Buffer
  size?: number
}

const BLOCK = 512
const MAX_OCTAL_SIZE = 0o77777777777

function writeOctal(h: Buffer, value: number, offset: number, len: number): void {
  h.write(value.toString(8).padStart(len - 1, '0') + '\0', offset, len, 'ascii')
}

/** Split a name into ustar prefix (155) and name (100), or null when it does not fit. */
function ustarSplit(name: string): [string, string] | null {
  if (Buffer.byteLength(name) <= 100) return ['', name]
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i)
    const rest = name.slice(i + 1)
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest) return [prefix, rest]
  }
  return null
}

function rawHeader(name: string, prefix: string, typeflag: string, mode: number, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK)
  h.write(name, 0, 100, 'utf8')
  writeOctal(h, mode, 100, 8)
  writeOctal(h, 0, 108, 8)
  writeOctal(h, 0, 116, 8)
  writeOctal(h, size > MAX_OCTAL_SIZE ? 0 : size, 124, 12)
  writeOctal(h, mtime, 136, 12)
  h.fill(' ', 148, 156)
  h.write(typeflag, 156, 1, 'ascii')
  h.write('ustar\0', 257, 6, 'ascii')
  h.write('00', 263, 2, 'ascii')
  h.write('root', 265, 32, 'ascii')
  h.write('root', 297, 32, 'ascii')
  h.write(prefix, 345, 155, 'utf8')
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii')
  return h
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  let len = Buffer.byteLength(body) + 1
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body)
  return `${len}${body}`
}

const pad = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK)

/** The header block(s) for one entry. */
export function tarHeader(e: { name: string; type: 'file' | 'dir'; mode: number; size: number }, mtime: number): Buffer {
  const name = e.type === 'dir' ? e.name + '/' : e.name
  const split = ustarSplit(name)
  const pax: string[] = []
  if (!split) pax.push(paxRecord('path', name))
  if (e.size > MAX_OCTAL_SIZE) pax.push(paxRecord('size', String(e.size)))
  const typeflag = e.type === 'dir' ? '5' : '0'
  const [prefix, short] = split ?? ['', name.slice(-100).replace(/^[^/]*\//, '')]
  const main = rawHeader(short, prefix, typeflag, e.mode, e.type === 'dir' ? 0 : e.size, mtime)
  if (!pax.length) return main
  const body = Buffer.from(pax.join(''))
  return Buffer.concat([rawHeader('PaxHeader', '', 'x', 0o644, body.length, mtime), body, pad(body.length), main])
}

/** The archive as a stream of chunks: headers, file bodies read from disk, padding, end blocks. */
export async function* tarChunks(
  entries: Iterable<TarInput> | AsyncIterable<TarInput>,
  mtime: number,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    signal?.throwIfAborted()
    if (e.type === 'dir') {
      yield tarHeader({ ...e, size: 0 }, mtime)
      continue
    }
    const size = e.data ? e.data.length : (e.size ?? -1)
    if (size < 0) throw new Error(`tar entry ${e.name}: size unknown`)
    yield tarHeader({ ...e, size }, mtime)
    let written = 0
    if (e.data) {
      yield e.data
      written = e.data.length
    } else {
      const rs: Readable = createReadStream(e.source!, { highWaterMark: 1 << 20 })
      for await (const chunk of rs) {
        signal?.throwIfAborted()
        written += (chunk as Buffer).length
        yield chunk as Buffer
      }
    }
    if (written !== size) throw new Error(`tar entry ${e.name}: ${e.source} changed size while being archived (${size} -> ${written})`)
    const p = pad(size)
    if (p.length) yield p
  }
  yield Buffer.alloc(BLOCK * 2)
}

// A tar reader for image archives, written for hostile input. It never
// extracts by name: it yields entries (validated names, types and sizes) and
// a stream for each body read by position from the archive file, so nothing
// is ever written where the archive says, and memory stays flat whatever the
// size. Written here rather than taken from npm because what it must refuse
// (traversal, links out, devices, sparse files) is most of the code, and the
// positional reads let a body be streamed twice (hash, then gunzip-hash).

import { createReadStream } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { posix } from 'node:path'
import { Readable } from 'node:stream'
import { UserError } from '../errors.js'

export interface TarEntry {
  /** Normalized relative path, no leading ./, no trailing / */
  name: string
  type: 'file' | 'dir' | 'symlink'
  size: number
  /** Symlink target, resolved to a normalized path inside the archive */
  target?: string
  /** Byte offset of the body in the archive file */
  offset: number
}

export class ArchiveError extends UserError {
  constructor(archive: string, message: string) {
    super(`${archive}: ${message}`, 'this archive cannot be imported; nothing was written to the image cache')
    this.name = 'ArchiveError'
  }
}

function cstr(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start)
  return buf.toString('utf8', start, end >= 0 && end < start + len ? end : start + len)
}

function octal(buf: Buffer, start: number, len: number): number {
  // GNU base-256 for sizes >= 8 GiB
  if (buf[start]! & 0x80) {
    let n = 0
    for (let i = start + 1; i < start + len; i++) n = n * 256 + buf[i]!
    return n
  }
  const s = cstr(buf, start, len).trim()
  return s ? parseInt(s, 8) : 0
}

function parsePax(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  let i = 0
  while (i < text.length) {
    const sp = text.indexOf(' ', i)
    if (sp < 0) break
    const len = parseInt(text.slice(i, sp), 10)
    if (!(len > 0)) break
    const rec = text.slice(sp + 1, i + len - 1)
    const eq = rec.indexOf('=')
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1)
    i += len
  }
  return out
}

/** Validate and normalize an entry name; throws on absolute paths and `..`. */
export function safeName(archive: string, raw: string): string {
  if (raw.includes('\0')) throw new ArchiveError(archive, `entry name contains NUL: ${JSON.stringify(raw)}`)
  if (raw.startsWith('/')) throw new ArchiveError(archive, `entry ${JSON.stringify(raw)} has an absolute path`)
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.')
  if (parts.includes('..')) throw new ArchiveError(archive, `entry ${JSON.stringify(raw)} escapes the archive (..)`)
  return parts.join('/')
}

const MAX_META = 1024 * 1024

/**
 * Read every entry of a tar file. Refuses hard links, devices, FIFOs, sparse
 * files, names with `..` or a leading `/`, and symlinks whose target leaves
 * the archive. Compressed archives are refused with a hint.
 */
export async function* readTar(path: string): AsyncGenerator<TarEntry> {
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch (e) {
    throw new UserError(`cannot open archive ${path}: ${(e as Error).message}`)
  }
  try {
    const fileSize = (await fh.stat()).size
    const hdr = Buffer.alloc(512)
    let pos = 0
    let longName: string | undefined
    let longLink: string | undefined
    let pax: Record<string, string> = {}
    const readMeta = async (size: number, at: number): Promise<string> => {
      if (size > MAX_META) throw new ArchiveError(path, `metadata entry of ${size} bytes is too large`)
      const b = Buffer.alloc(size)
      await fh.read(b, 0, size, at)
      return b.toString('utf8')
    }
    for (;;) {
      const { bytesRead } = await fh.read(hdr, 0, 512, pos)
      if (bytesRead === 0) return // archive without end blocks
      if (bytesRead < 512) throw new ArchiveError(path, 'truncated tar header')
      if (hdr.every((b) => b === 0)) return
      if (pos === 0 && hdr[0] === 0x1f && hdr[1] === 0x8b) {
        throw new ArchiveError(path, 'is gzip-compressed; decompress it first (gunzip -k)')
      }
      let sum = 0
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : hdr[i]!
      if (sum !== octal(hdr, 148, 8)) throw new ArchiveError(path, `not a tar archive (bad header checksum at byte ${pos})`)
      const typeflag = String.fromCharCode(hdr[156]!)
      const size = pax.size !== undefined ? Number(pax.size) : octal(hdr, 124, 12)
      const body = pos + 512
      const next = body + Math.ceil(size / 512) * 512
      if (body + size > fileSize) throw new ArchiveError(path, `truncated: an entry claims ${size} bytes past the end of the file`)
      const prefix = cstr(hdr, 345, 155)
      const headerName = (prefix ? prefix + '/' : '') + cstr(hdr, 0, 100)
      pos = next
      switch (typeflag) {
        case 'x':
          pax = { ...pax, ...parsePax(await readMeta(size, body)) }
          continue
        case 'g':
          continue
        case 'L':
          longName = (await readMeta(size, body)).replace(/\0+$/, '')
          continue
        case 'K':
          longLink = (await readMeta(size, body)).replace(/\0+$/, '')
          continue
      }
      const rawName = pax.path ?? longName ?? headerName
      const linkname = pax.linkpath ?? longLink ?? cstr(hdr, 157, 100)
      pax = {}
      longName = longLink = undefined
      const name = safeName(path, rawName)
      switch (typeflag) {
        case '0':
        case '\0':
        case '7':
          yield { name, type: 'file', size, offset: body }
          break
        case '5':
          yield { name, type: 'dir', size: 0, offset: body }
          break
        case '2': {
          if (linkname.startsWith('/')) throw new ArchiveError(path, `symlink ${rawName} points outside the archive (${linkname})`)
          const target = posix.normalize(posix.join(posix.dirname(name), linkname))
          if (target === '..' || target.startsWith('../'))
            throw new ArchiveError(path, `symlink ${rawName} points outside the archive (${linkname})`)
          yield { name, type: 'symlink', size: 0, target, offset: body }
          break
        }
        case '1':
          throw new ArchiveError(path, `hard link ${rawName} -> ${linkname} refused`)
        case '3':
        case '4':
        case '6':
          throw new ArchiveError(path, `device or FIFO entry ${rawName} refused`)
        case 'S':
          throw new ArchiveError(path, `sparse file ${rawName} refused`)
        default:
          throw new ArchiveError(path, `entry ${rawName} has unsupported type ${JSON.stringify(typeflag)}`)
      }
    }
  } finally {
    await fh.close()
  }
}

/** The body of an entry as a stream (read by position from the archive). */
export function entryStream(archive: string, e: TarEntry): Readable {
  if (e.size === 0) return Readable.from([])
  return createReadStream(archive, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20 })
}

/** Read a small entry body into memory. */
export async function entryBytes(archive: string, e: TarEntry, limit: number): Promise<Buffer> {
  if (e.size > limit) throw new ArchiveError(archive, `${e.name} is ${e.size} bytes, more than the ${limit} allowed for metadata`)
  const fh = await open(archive, 'r')
  try {
    const b = Buffer.alloc(e.size)
    await fh.read(b, 0, e.size, e.offset)
    return b
  } finally {
    await fh.close()
  }
}

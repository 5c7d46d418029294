// Where an importer reads files from: a tar archive (entries read by
// position, nothing extracted) or a directory (every file vetted before it is
// read: no symlink out, regular files only), addressed by relative path.

import { lstat, readFile, realpath, stat } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import { isAbsolute, join, relative } from 'node:path'
import type { Readable } from 'node:stream'
import { ArchiveError, entryBytes, entryStream, readTar, type TarEntry } from './tar.js'

/** A source of files: a tar archive or a directory, addressed by relative path. */
export interface FileSource {
  label: string
  has(name: string): boolean
  size(name: string): number
  stream(name: string): Readable
  bytes(name: string, limit: number): Promise<Buffer>
  names(): Iterable<string>
}

export async function tarSource(path: string): Promise<FileSource> {
  const files = new Map<string, TarEntry>()
  const links = new Map<string, string>()
  for await (const e of readTar(path)) {
    if (e.type === 'file') files.set(e.name, e)
    else if (e.type === 'symlink') links.set(e.name, e.target!)
  }
  // Symlinks inside the archive (docker save links identical layers) resolve
  // to the entry they name; a link to nothing is refused when it is needed.
  const resolve = (name: string): TarEntry | undefined => {
    let n = name
    for (let i = 0; i < 16; i++) {
      const f = files.get(n)
      if (f) return f
      const t = links.get(n)
      if (t === undefined) return undefined
      n = t
    }
    throw new ArchiveError(path, `symlink loop at ${name}`)
  }
  const get = (name: string) => {
    const e = resolve(name)
    if (!e) throw new ArchiveError(path, `${name} is not in the archive`)
    return e
  }
  return {
    label: path,
    has: (n) => resolve(n) !== undefined,
    size: (n) => get(n).size,
    stream: (n) => entryStream(path, get(n)),
    bytes: (n, limit) => entryBytes(path, get(n), limit),
    names: () => [...files.keys(), ...links.keys()],
  }
}

export type DirSource = FileSource & { prepare(name: string): Promise<boolean> }

export async function dirSource(dir: string): Promise<DirSource> {
  const root = await realpath(dir)
  const sizes = new Map<string, number>()
  const check = async (name: string): Promise<string | undefined> => {
    const p = join(root, name)
    const st = await lstat(p).catch(() => null)
    if (!st) return undefined
    const real = await realpath(p)
    const rel = relative(root, real)
    if (rel.startsWith('..') || isAbsolute(rel)) throw new ArchiveError(dir, `${name} is a symlink pointing outside the directory`)
    const rst = await stat(real)
    if (!rst.isFile()) throw new ArchiveError(dir, `${name} is not a regular file`)
    sizes.set(name, rst.size)
    return real
  }
  // Pre-check the files the importer will ask for lazily.
  const known = new Map<string, string>()
  const resolveSync = (name: string) => {
    const r = known.get(name)
    if (!r) throw new ArchiveError(dir, `${name} is missing`)
    return r
  }
  const src: DirSource = {
    label: dir,
    has: (n) => known.has(n),
    size: (n) => sizes.get(n) ?? 0,
    stream: (n) => createReadStream(resolveSync(n), { highWaterMark: 1 << 20 }),
    bytes: async (n, limit) => {
      if ((sizes.get(n) ?? 0) > limit) throw new ArchiveError(dir, `${n} is larger than the ${limit} bytes allowed for metadata`)
      return readFile(resolveSync(n))
    },
    names: () => known.keys(),
    async prepare(name: string) {
      const real = await check(name)
      if (real) known.set(name, real)
      return !!real
    },
  }
  return src
}

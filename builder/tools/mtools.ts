// mtools: read and replace files inside a FAT image (images/efiboot.img)
// without mounting it. mcopy -m keeps the source file's mtime, so a source
// file stamped with the epoch gives the same FAT directory entry every time.

import { run } from '../exec.js'

/** mtools refuses some valid images over geometry checks; efiboot.img files are fine to edit anyway. */
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1' }

export interface McopyOptions {
  image: string
  /** Source: a local path, or ::/path inside the image */
  from: string
  /** Destination: a local path, or ::/path inside the image */
  to: string
  /** Replace the destination if it exists (-o) */
  overwrite?: boolean
  /** Keep the source's modification time (-m) */
  preserveTime?: boolean
}

export function mcopyArgs(o: McopyOptions): string[] {
  const a = ['-i', o.image]
  if (o.overwrite) a.push('-o')
  if (o.preserveTime) a.push('-m')
  a.push('-n', '-Q', o.from, o.to)
  return a
}

export function mtypeArgs(image: string, path: string): string[] {
  return ['-i', image, `::${path}`]
}

export function mdirArgs(image: string, path = '/'): string[] {
  return ['-i', image, '-/', '-b', `::${path}`]
}

export async function mcopy(o: McopyOptions, signal?: AbortSignal): Promise<void> {
  await run('mcopy', mcopyArgs(o), { env: MTOOLS_ENV, signal, why: 'to edit images/efiboot.img' })
}

/** Text of a file inside a FAT image. */
export async function mtype(image: string, path: string, signal?: AbortSignal): Promise<string> {
  const r = await run('mtype', mtypeArgs(image, path), { env: MTOOLS_ENV, signal, why: 'to read images/efiboot.img' })
  return r.stdout
}

/** Paths of every file and directory (dirs end in /) in a FAT image, or null if it cannot be read as FAT. */
export async function mlist(image: string, signal?: AbortSignal): Promise<string[] | null> {
  const r = await run('mdir', mdirArgs(image), { env: MTOOLS_ENV, signal, nothrow: true, why: 'to read images/efiboot.img' })
  if (r.code !== 0) return null
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.replace(/^::/, ''))
}

// qemu-img: overlays over the user's base image (the base is only ever read),
// resizing, flattening into a standalone qcow2 (optionally compressed), and
// reading an image's format and size. Pure argv builders, then runners.

import { UserError } from '../errors.js'
import { run } from '../exec.js'

export type ImageFormat = 'qcow2' | 'raw'

export interface ImageInfo {
  format: string
  virtualSize: number
  actualSize?: number
  backingFile?: string
}

const GiB = 1024 ** 3

export function createArgs(file: string, format: ImageFormat, sizeBytes: number): string[] {
  return ['create', '-q', '-f', format, file, String(sizeBytes)]
}

/** A qcow2 that reads through to `backing` and takes every write itself. */
export function overlayArgs(file: string, backing: string, backingFormat: ImageFormat): string[] {
  return ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', backingFormat, file]
}

export function resizeArgs(file: string, format: ImageFormat, sizeBytes: number): string[] {
  return ['resize', '-q', '-f', format, file, String(sizeBytes)]
}

/** Copy `src` into a standalone qcow2 (backing chain flattened); zero and unallocated clusters are skipped. */
export function convertArgs(src: string, srcFormat: ImageFormat, dst: string, compress: boolean): string[] {
  return ['convert', '-f', srcFormat, '-O', 'qcow2', ...(compress ? ['-c'] : []), '-o', 'compat=1.1', src, dst]
}

export function infoArgs(file: string): string[] {
  return ['info', '--output=json', file]
}

/** Parse `qemu-img info --output=json`. */
export function parseInfo(json: string): ImageInfo {
  const j = JSON.parse(json) as Record<string, unknown>
  return {
    format: String(j.format),
    virtualSize: Number(j['virtual-size']),
    actualSize: j['actual-size'] === undefined ? undefined : Number(j['actual-size']),
    backingFile: typeof j['backing-filename'] === 'string' ? j['backing-filename'] : undefined,
  }
}

const why = 'to work on qcow2 images (qemu-utils)'

export async function imageInfo(file: string, signal?: AbortSignal): Promise<ImageInfo> {
  const r = await run('qemu-img', infoArgs(file), { why, signal, nothrow: true })
  if (r.code !== 0) throw new UserError(`${file} is not a disk image qemu-img can read: ${r.stderr.trim().split('\n').pop()}`)
  return parseInfo(r.stdout)
}

export async function createImage(file: string, format: ImageFormat, sizeBytes: number, signal?: AbortSignal): Promise<void> {
  await run('qemu-img', createArgs(file, format, sizeBytes), { why, signal })
}

export async function createOverlay(file: string, backing: string, backingFormat: ImageFormat, signal?: AbortSignal): Promise<void> {
  await run('qemu-img', overlayArgs(file, backing, backingFormat), { why, signal })
}

export async function resizeImage(file: string, format: ImageFormat, sizeBytes: number, signal?: AbortSignal): Promise<void> {
  await run('qemu-img', resizeArgs(file, format, sizeBytes), { why, signal })
}

export async function convertImage(
  src: string,
  srcFormat: ImageFormat,
  dst: string,
  compress: boolean,
  signal?: AbortSignal,
): Promise<void> {
  await run('qemu-img', convertArgs(src, srcFormat, dst, compress), { why, signal })
}

export const gib = (n: number): number => Math.round(n * GiB)

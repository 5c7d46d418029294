// Small real images for the payload tests, written as OCI layouts directly:
// tar layers made here byte by byte (so hostile archives can be made too),
// gzip-compressed, with a config whose diff_ids are right. skopeo and the
// registry accept them as they would any image.

import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

export interface TarEntry {
  name: string
  /** '0' file (default), '1' hard link, '2' symlink, '3' char dev, '5' dir, 'L' GNU long name, 'x' pax */
  type?: string
  body?: Buffer | string
  linkname?: string
  mode?: number
  /** Write this size in the header instead of the body's (to make broken archives) */
  size?: number
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0'
}

/** Header fields the fixtures leave at their defaults (mtime 1700000000, no owner names). */
export interface TarHeaderOptions {
  mtime?: number
  /** uname and gname */
  owner?: string
}

export function tarHeader(e: TarEntry, size: number, opts: TarHeaderOptions = {}): Buffer {
  const h = Buffer.alloc(512)
  let name = e.name
  if (Buffer.byteLength(name) > 100) {
    // ustar: the directory part goes in the 155-byte prefix field (a directory's own trailing slash stays with its name)
    const cut = name.lastIndexOf('/', name.length - 2)
    const at = cut >= 0 && name.slice(0, cut).length <= 155 && name.length - cut - 1 <= 100 ? cut : -1
    if (at < 0) throw new Error(`name too long for ustar: ${name}`)
    h.write(name.slice(0, at), 345, 'utf8')
    name = name.slice(at + 1)
  }
  h.write(name, 0, 'utf8')
  h.write(octal(e.mode ?? 0o644, 8), 100)
  h.write(octal(0, 8), 108)
  h.write(octal(0, 8), 116)
  h.write(octal(size, 12), 124)
  h.write(octal(opts.mtime ?? 1700000000, 12), 136)
  h.write('        ', 148)
  h.write(e.type ?? '0', 156)
  if (e.linkname) h.write(e.linkname.slice(0, 100), 157)
  h.write('ustar\0', 257)
  h.write('00', 263)
  if (opts.owner) {
    h.write(opts.owner, 265)
    h.write(opts.owner, 297)
  }
  let sum = 0
  for (const b of h) sum += b
  h.write(octal(sum, 7) + ' ', 148)
  return h
}

export function tarBytes(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '')
    parts.push(tarHeader(e, e.size ?? body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

export function sha(b: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex')
}

export interface Blob {
  mediaType: string
  digest: string
  size: number
  data: Buffer
}

function blob(mediaType: string, data: Buffer): Blob {
  return { mediaType, digest: sha(data), size: data.length, data }
}

export interface ImageSpec {
  /** files per layer */
  layers: Record<string, string>[]
  architecture?: string
}

export interface BuiltImage {
  manifest: Blob
  config: Blob
  layers: Blob[]
  /** uncompressed layer tars, for docker-archive fixtures */
  rawLayers: Buffer[]
}

export function buildImage(spec: ImageSpec): BuiltImage {
  const rawLayers = spec.layers.map((files) => tarBytes(Object.entries(files).map(([name, body]) => ({ name, body }))))
  const layers = rawLayers.map((raw) => blob('application/vnd.oci.image.layer.v1.tar+gzip', gzipSync(raw, { level: 1 })))
  const config = blob(
    'application/vnd.oci.image.config.v1+json',
    Buffer.from(
      JSON.stringify({
        architecture: spec.architecture ?? 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/true'] },
        rootfs: { type: 'layers', diff_ids: rawLayers.map((r) => sha(r)) },
      }),
    ),
  )
  const manifest = blob(
    'application/vnd.oci.image.manifest.v1+json',
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
        layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      }),
    ),
  )
  return { manifest, config, layers, rawLayers }
}

export function buildIndex(images: BuiltImage[]): Blob {
  return blob(
    'application/vnd.oci.image.index.v1+json',
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: images.map((im) => {
          const cfg = JSON.parse(im.config.data.toString()) as { architecture: string }
          return {
            mediaType: im.manifest.mediaType,
            digest: im.manifest.digest,
            size: im.manifest.size,
            platform: { architecture: cfg.architecture, os: 'linux' },
          }
        }),
      }),
    ),
  )
}

/** Write an OCI layout holding the given named roots (a manifest or an index) and their blobs. */
export async function writeLayout(dir: string, roots: { name: string; root: Blob; images: BuiltImage[] }[]): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true })
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  const put = (b: Blob) => writeFile(join(dir, 'blobs', 'sha256', b.digest.slice(7)), b.data)
  for (const r of roots) {
    await put(r.root)
    for (const im of r.images) {
      await put(im.manifest)
      await put(im.config)
      for (const l of im.layers) await put(l)
    }
  }
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: roots.map((r) => ({
        mediaType: r.root.mediaType,
        digest: r.root.digest,
        size: r.root.size,
        annotations: { 'org.opencontainers.image.ref.name': r.name },
      })),
    }),
  )
}

/** Two single-arch images sharing a base layer, and a two-arch index. */
export function sampleImages() {
  const base = { 'etc/os-release': 'ID=test\n', 'bin/hello': '#!/bin/sh\necho hello\n'.repeat(200) }
  const app = buildImage({ layers: [base, { 'app/one': 'one\n' }] })
  const tool = buildImage({ layers: [base, { 'app/two': 'two\n'.repeat(1000) }] })
  const amd = buildImage({ layers: [base, { arch: 'amd64\n' }], architecture: 'amd64' })
  const arm = buildImage({ layers: [base, { arch: 'arm64\n' }], architecture: 'arm64' })
  const multi = buildIndex([amd, arm])
  return { app, tool, amd, arm, multi }
}

// One OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
// is the image cache: blobs/sha256/<hex> stored once whatever number of images
// share them, index.json listing one entry per image named by
// org.opencontainers.image.ref.name. skopeo writes into it (`oci:DIR:NAME`),
// the importers write into it, the payload is assembled from it.

import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile, open } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Readable } from 'node:stream'
import { removeOnExit, tempBeside, writeFileAtomic } from '../atomic.js'
import { FailureError } from '../errors.js'
import { digestHex, HashingStream, hashFile, isDigest, sha256Bytes } from './digest.js'

export const REF_NAME = 'org.opencontainers.image.ref.name'
/** Where an image came from (docker://… ref, archive path) */
export const SOURCE_REF = 'io.mirror-appliance.source.ref'
/** The digest that was asked for (the lock's index digest when one architecture was fetched) */
export const SOURCE_DIGEST = 'io.mirror-appliance.source.digest'
/**
 * On an index.json entry: the children of its image index that are absent on
 * purpose (comma-separated digests), as oc-mirror's `platforms:` filter
 * leaves them. The index keeps its digest; walks and checks skip them.
 */
export const SPARSE_ABSENT = 'io.mirror-appliance.sparse.absent'

/** The children an entry marks absent (SPARSE_ABSENT). */
export function sparseAbsent(entry: Pick<Descriptor, 'annotations'>): Set<string> {
  const v = entry.annotations?.[SPARSE_ABSENT]
  return new Set(v ? v.split(',').filter(isDigest) : [])
}

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const

/** Manifests and indexes larger than this are refused: real ones are a few KiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

export interface Platform {
  architecture: string
  os: string
  variant?: string
}

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
  platform?: Platform
  urls?: string[]
}

export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string
  manifests: Descriptor[]
  annotations?: Record<string, string>
}

export function isIndexType(mt: string | undefined): boolean {
  return mt === MEDIA.ociIndex || mt === MEDIA.dockerList
}

export function isManifestType(mt: string | undefined): boolean {
  return mt === MEDIA.ociManifest || mt === MEDIA.dockerManifest
}

/** Layers a registry may refuse to distribute; allowed to be absent. */
function isForeign(d: Descriptor): boolean {
  return /nondistributable|foreign/.test(d.mediaType)
}

export interface VerifyProblem {
  /** ref name of the image (or "(unnamed)") */
  image: string
  digest: string
  problem: string
}

export class VerifyError extends FailureError {
  constructor(readonly problems: VerifyProblem[]) {
    super(
      `image cache verification failed:\n` + problems.map((p) => `  ${p.image}: blob ${p.digest}: ${p.problem}`).join('\n'),
      'run `mirror-appliance images fetch` (or import) again to replace the bad blobs',
    )
    this.name = 'VerifyError'
  }
}

export class OciLayout {
  readonly blobsDir: string
  constructor(readonly dir: string) {
    this.blobsDir = join(dir, 'blobs', 'sha256')
  }

  /** Open a layout, creating an empty one if the directory has none. */
  static async open(dir: string, opts: { create?: boolean } = {}): Promise<OciLayout> {
    const layout = new OciLayout(dir)
    const marker = join(dir, 'oci-layout')
    const exists = await stat(marker).then(
      () => true,
      () => false,
    )
    if (!exists) {
      if (opts.create === false) throw new FailureError(`${dir} is not an OCI image layout (no oci-layout file)`)
      await mkdir(layout.blobsDir, { recursive: true })
      await writeFile(marker, JSON.stringify({ imageLayoutVersion: '1.0.0' }))
      if (!(await stat(join(dir, 'index.json')).catch(() => null))) {
        await layout.writeIndex({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [] })
      }
    }
    await mkdir(layout.blobsDir, { recursive: true })
    return layout
  }

  blobPath(digest: string): string {
    return join(this.blobsDir, digestHex(digest))
  }

  async readIndex(): Promise<ImageIndex> {
    const text = await readFile(join(this.dir, 'index.json'), 'utf8')
    const index = JSON.parse(text) as ImageIndex
    if (!Array.isArray(index.manifests)) throw new FailureError(`${this.dir}/index.json has no manifests array`)
    return index
  }

  /** Replace index.json atomically (temp file + rename). */
  async writeIndex(index: ImageIndex): Promise<void> {
    await writeFileAtomic(join(this.dir, 'index.json'), JSON.stringify(index, null, 2) + '\n')
  }

  async entries(): Promise<Descriptor[]> {
    return (await this.readIndex()).manifests
  }

  async findByName(name: string): Promise<Descriptor | undefined> {
    return (await this.entries()).find((d) => d.annotations?.[REF_NAME] === name)
  }

  /** Add (or replace, by ref name) one index.json entry. The blobs must already be present. */
  async setEntry(name: string, desc: Descriptor, annotations: Record<string, string> = {}): Promise<Descriptor> {
    return (await this.setEntries([{ name, desc, annotations }]))[0]!
  }

  /** setEntry for many images with one rewrite of index.json (an oc-mirror run holds thousands). */
  async setEntries(items: { name: string; desc: Descriptor; annotations?: Record<string, string> }[]): Promise<Descriptor[]> {
    const index = await this.readIndex()
    const entries = items.map(({ name, desc, annotations }): Descriptor => ({
      mediaType: desc.mediaType,
      digest: desc.digest,
      size: desc.size,
      ...(desc.platform ? { platform: desc.platform } : {}),
      annotations: { ...desc.annotations, ...annotations, [REF_NAME]: name },
    }))
    const names = new Set(items.map((i) => i.name))
    index.manifests = index.manifests.filter((d) => !names.has(d.annotations?.[REF_NAME] ?? ''))
    // the last item of a name wins, as with one setEntry after another
    const last = new Map(entries.map((e) => [e.annotations![REF_NAME]!, e]))
    index.manifests.push(...last.values())
    await this.writeIndex(index)
    return entries
  }

  /** Merge annotations into an existing entry (e.g. after skopeo wrote it). */
  async annotate(name: string, annotations: Record<string, string>): Promise<void> {
    const index = await this.readIndex()
    for (const d of index.manifests) {
      if (d.annotations?.[REF_NAME] === name) d.annotations = { ...d.annotations, ...annotations }
    }
    await this.writeIndex(index)
  }

  async hasBlob(digest: string, size?: number): Promise<boolean> {
    const st = await stat(this.blobPath(digest)).catch(() => null)
    return !!st && st.isFile() && (size === undefined || st.size === size)
  }

  /**
   * Store a blob from a stream: written to a temp file while hashed, checked
   * against `expect` (when given), renamed into place. A blob already present
   * is not rewritten.
   */
  async putBlob(
    source: Readable,
    expect?: { digest?: string; size?: number },
    what = 'blob',
  ): Promise<{ digest: string; size: number; created: boolean }> {
    // the blob's name is its digest, known only once written: a temp name in
    // the blobs directory (same filesystem), removed on failure or exit
    const tmp = tempBeside(join(this.blobsDir, 'upload'))
    const forget = removeOnExit(tmp)
    const hasher = new HashingStream()
    try {
      await pipeline(source, hasher, createWriteStream(tmp, { flags: 'wx' }))
      const digest = hasher.digest()
      if (expect?.digest && expect.digest !== digest) {
        throw new DigestMismatchError(what, expect.digest, digest)
      }
      if (expect?.size !== undefined && expect.size !== hasher.size) {
        throw new DigestMismatchError(what, `${expect.size} bytes`, `${hasher.size} bytes`)
      }
      const created = !(await this.hasBlob(digest, hasher.size))
      if (created) await rename(tmp, this.blobPath(digest))
      else await unlink(tmp)
      return { digest, size: hasher.size, created }
    } catch (e) {
      await unlink(tmp).catch(() => {})
      throw e
    } finally {
      forget()
    }
  }

  async putBlobBytes(data: Buffer | string): Promise<{ digest: string; size: number }> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data
    const digest = sha256Bytes(buf)
    if (!(await this.hasBlob(digest, buf.length))) {
      await writeFileAtomic(this.blobPath(digest), buf)
    }
    return { digest, size: buf.length }
  }

  /** Read and parse a JSON blob (manifest, index, config), refusing oversized ones. */
  async readJson<T = unknown>(desc: Pick<Descriptor, 'digest' | 'size'>, limit = MAX_MANIFEST_BYTES): Promise<T> {
    if (desc.size > limit)
      throw new FailureError(`blob ${desc.digest} is ${desc.size} bytes, more than the ${limit} allowed for a manifest`)
    const buf = await readFile(this.blobPath(desc.digest))
    if (buf.length > limit) throw new FailureError(`blob ${desc.digest} is larger than the ${limit} bytes allowed for a manifest`)
    return JSON.parse(buf.toString('utf8')) as T
  }

  /**
   * Every descriptor reachable from `root` (root included), depth first,
   * each digest once. Reads manifests and indexes, never layers.
   */
  async walk(root: Descriptor, opts: { allowMissing?: boolean } = {}): Promise<Descriptor[]> {
    const seen = new Map<string, Descriptor>()
    const absent = sparseAbsent(root)
    const visit = async (d: Descriptor): Promise<void> => {
      if (seen.has(d.digest) || absent.has(d.digest)) return
      seen.set(d.digest, d)
      if (!isIndexType(d.mediaType) && !isManifestType(d.mediaType)) return
      if (opts.allowMissing && !(await this.hasBlob(d.digest))) return
      const doc = await this.readJson<{ manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[]; mediaType?: string }>(d)
      if (isIndexType(d.mediaType)) {
        for (const m of doc.manifests ?? []) await visit(m)
      } else {
        if (doc.config) await visit(doc.config)
        for (const l of doc.layers ?? []) await visit(l)
      }
    }
    await visit(root)
    return [...seen.values()]
  }

  /**
   * Check one image: every blob it references exists, has the descriptor's
   * size and (when `full`) the descriptor's sha256. Returns problems, empty
   * when the image is whole.
   */
  async verifyImage(entry: Descriptor, opts: { full?: boolean; hashed?: Map<string, string | null> } = {}): Promise<VerifyProblem[]> {
    const image = entry.annotations?.[REF_NAME] ?? '(unnamed)'
    const problems: VerifyProblem[] = []
    const hashed = opts.hashed ?? new Map<string, string | null>()
    const check = async (d: Descriptor): Promise<boolean> => {
      if (!isDigest(d.digest)) {
        problems.push({ image, digest: String(d.digest), problem: 'not a sha256 digest' })
        return false
      }
      const st = await stat(this.blobPath(d.digest)).catch(() => null)
      if (!st) {
        if (isForeign(d)) return false
        problems.push({ image, digest: d.digest, problem: 'missing' })
        return false
      }
      if (st.size !== d.size) {
        problems.push({ image, digest: d.digest, problem: `size is ${st.size}, descriptor says ${d.size}` })
        return false
      }
      if (opts.full || isIndexType(d.mediaType) || isManifestType(d.mediaType)) {
        let actual = hashed.get(d.digest)
        if (actual === undefined) {
          actual = (await hashFile(this.blobPath(d.digest))).digest
          hashed.set(d.digest, actual)
        }
        if (actual !== d.digest) {
          problems.push({ image, digest: d.digest, problem: `content does not match its digest (sha256 is ${actual})` })
          return false
        }
      }
      return true
    }
    const seen = new Set<string>()
    const absent = sparseAbsent(entry)
    const visit = async (d: Descriptor): Promise<void> => {
      if (seen.has(d.digest) || absent.has(d.digest)) return
      seen.add(d.digest)
      if (!(await check(d))) return
      if (!isIndexType(d.mediaType) && !isManifestType(d.mediaType)) return
      let doc: { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] }
      try {
        doc = await this.readJson(d)
      } catch (e) {
        problems.push({ image, digest: d.digest, problem: `unreadable manifest: ${(e as Error).message}` })
        return
      }
      if (isIndexType(d.mediaType)) for (const m of doc.manifests ?? []) await visit(m)
      else {
        if (doc.config) await visit(doc.config)
        else problems.push({ image, digest: d.digest, problem: 'manifest has no config' })
        for (const l of doc.layers ?? []) await visit(l)
      }
    }
    await visit(entry)
    return problems
  }

  /** Verify every image (or those named); throws VerifyError listing every problem. */
  async verify(opts: { names?: string[]; full?: boolean } = {}): Promise<{ images: number; problems: VerifyProblem[] }> {
    const entries = (await this.entries()).filter((e) => !opts.names || opts.names.includes(e.annotations?.[REF_NAME] ?? ''))
    const hashed = new Map<string, string | null>()
    const problems: VerifyProblem[] = []
    for (const e of entries) problems.push(...(await this.verifyImage(e, { full: opts.full ?? true, hashed })))
    return { images: entries.length, problems }
  }

  /** Delete blobs no index.json entry reaches (and stale temp files). */
  async gc(): Promise<{ removed: number; bytes: number }> {
    const keep = new Set<string>()
    for (const e of await this.entries()) {
      for (const d of await this.walk(e, { allowMissing: true })) if (isDigest(d.digest)) keep.add(digestHex(d.digest))
    }
    let removed = 0
    let bytes = 0
    for (const name of await readdir(this.blobsDir)) {
      if (keep.has(name)) continue
      const p = join(this.blobsDir, name)
      const st = await stat(p).catch(() => null)
      if (!st?.isFile()) continue
      await unlink(p)
      removed++
      bytes += st.size
    }
    return { removed, bytes }
  }

  /** Stream a blob's content. */
  openBlob(digest: string): Readable {
    return createReadStream(this.blobPath(digest), { highWaterMark: 1 << 20 })
  }

  /** fsync index.json so a power cut after a long fetch does not lose it. */
  async syncIndex(): Promise<void> {
    const fh = await open(join(this.dir, 'index.json'), 'r')
    await fh.sync()
    await fh.close()
  }
}

export class DigestMismatchError extends FailureError {
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${what}: expected ${expected}, got ${actual}`)
    this.name = 'DigestMismatchError'
  }
}

/** Platforms of an image: from its index entries, or its config for a single manifest. */
export async function imagePlatforms(layout: OciLayout, entry: Descriptor): Promise<string[]> {
  const fmt = (p: Platform) => [p.os, p.architecture, p.variant].filter(Boolean).join('/')
  if (isIndexType(entry.mediaType)) {
    const idx = await layout.readJson<ImageIndex>(entry)
    const absent = sparseAbsent(entry)
    return idx.manifests
      .filter((m) => m.platform && m.platform.architecture !== 'unknown' && !absent.has(m.digest))
      .map((m) => fmt(m.platform!))
  }
  if (entry.platform) return [fmt(entry.platform)]
  const m = await layout.readJson<{ config?: Descriptor }>(entry)
  if (!m.config || !(await layout.hasBlob(m.config.digest))) return []
  const cfg = await layout.readJson<{ os?: string; architecture?: string; variant?: string }>(m.config)
  return cfg.os && cfg.architecture ? [fmt({ os: cfg.os, architecture: cfg.architecture, variant: cfg.variant })] : []
}

/** Total bytes of all distinct blobs of an image (what it costs on media). */
export async function imageSize(layout: OciLayout, entry: Descriptor): Promise<number> {
  return (await layout.walk(entry, { allowMissing: true })).reduce((n, d) => n + d.size, 0)
}

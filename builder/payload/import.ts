// `images import`: bring images the user already has into the cache layout.
// Understood: OCI layout directories, oci-archive, docker-archive (`docker
// save`, `podman save`, both the old <id>/layer.tar style and the newer one
// with blobs/sha256), and oc-mirror v2 mirror_*.tar archives (read by
// ocmirror.ts: the chunks of one run as a set, runs on top of each other).
//
// Nothing is extracted by the names the archive gives: blobs are streamed
// into the cache's own content-addressed store and checked against their
// digest, metadata is read into memory under a size limit. On any refusal,
// the blobs this import added are removed again and index.json is untouched.

import { readdir, stat, unlink } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { createGunzip } from 'node:zlib'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { UserError } from '../errors.js'
import { digestHex, HashingStream, isDigest, sha256Bytes } from './digest.js'
import { withDirLock } from './lockfile.js'
import {
  DigestMismatchError,
  isIndexType,
  isManifestType,
  MAX_MANIFEST_BYTES,
  MEDIA,
  OciLayout,
  SOURCE_REF,
  type Descriptor,
  type ImageIndex,
} from './oci.js'
import { CHUNK_RE, importOcMirrorSets, looksLikeOcMirror, recordImport, type ChunkSet, type OcMirrorResult } from './ocmirror.js'
import { dirSource, tarSource, type DirSource, type FileSource } from './source.js'
import { ArchiveError } from './tar.js'

export type ArchiveFormat = 'auto' | 'docker-archive' | 'oci-archive' | 'oci-dir' | 'oc-mirror'

export interface ImportOptions {
  cacheDir: string
  path: string
  format?: ArchiveFormat
  /** Name for the image when the archive names none */
  name?: string
}

export interface ImportedImage {
  ociName: string
  digest: string
  mediaType: string
  source: string
  /** oc-mirror images: a cosign signature is not a content image */
  kind?: 'image' | 'signature'
}

export interface ImportResult {
  images: ImportedImage[]
  /** What the oc-mirror archives among the inputs held */
  ocMirror?: OcMirrorResult
}

/**
 * The format of one archive from its entry names. A file oc-mirror named
 * mirror_NNNNNN.tar is one chunk of a run whatever it holds: the format of
 * a run is decided over all its chunks (ocmirror.ts), not per chunk.
 */
export function detectFormat(names: Iterable<string>, fileName = ''): Exclude<ArchiveFormat, 'auto'> | undefined {
  const list = [...names]
  if (looksLikeOcMirror(list)) return 'oc-mirror'
  if (list.includes('index.json')) return 'oci-archive'
  if (list.includes('manifest.json')) return 'docker-archive'
  if (CHUNK_RE.test(fileName)) return 'oc-mirror'
  return undefined
}

/** Import one archive or layout directory. */
export async function importArchive(opts: ImportOptions): Promise<ImportedImage[]> {
  return importArchives({ ...opts, paths: [opts.path] })
}

/**
 * Import several archives in one go (the chunks of one oc-mirror run must be
 * imported together: a blob may sit in another chunk than its manifest).
 */
export async function importArchives(opts: Omit<ImportOptions, 'path'> & { paths: string[] }): Promise<ImportedImage[]> {
  return (await importArchivesDetailed(opts)).images
}

type Format = Exclude<ArchiveFormat, 'auto'>

/** The chunks oc-mirror wrote into a directory (what `oc-mirror --from file://DIR` reads). */
async function chunksIn(dir: string): Promise<string[]> {
  return (await readdir(dir))
    .filter((n) => CHUNK_RE.test(n))
    .sort()
    .map((n) => join(dir, n))
}

/**
 * Like importArchives, and also says what oc-mirror archives held besides
 * images (runs, skipped repositories, release signatures). oc-mirror chunks
 * are grouped into one set per directory (oc-mirror writes each run's chunks
 * into a directory of their own and deletes the last run's); a directory
 * holding mirror_NNNNNN.tar files is such a set.
 */
export async function importArchivesDetailed(opts: Omit<ImportOptions, 'path'> & { paths: string[] }): Promise<ImportResult> {
  const layout = await OciLayout.open(opts.cacheDir)
  return withDirLock(opts.cacheDir, async () => {
    const added = new Set<string>()
    const indexBefore = await layout.readIndex()
    try {
      const out: ImportedImage[] = []
      const sources: { src: FileSource | DirSource; format: Format }[] = []
      const sets = new Map<string, ChunkSet>()
      const addChunk = (path: string, src: FileSource) => {
        const dir = dirname(path)
        const set = sets.get(dir) ?? { label: dir, chunks: [] }
        if (!set.chunks.some((c) => c.path === path)) set.chunks.push({ path, src })
        sets.set(dir, set)
      }
      for (const path of opts.paths) {
        const st = await stat(path).catch(() => null)
        if (!st) throw new UserError(`${path} does not exist`)
        const format = opts.format ?? 'auto'
        if (st.isDirectory()) {
          const d = await dirSource(path)
          if ((format === 'auto' || format === 'oci-dir') && (await d.prepare('index.json'))) {
            sources.push({ src: d, format: 'oci-dir' })
            continue
          }
          const chunks = format === 'auto' || format === 'oc-mirror' ? await chunksIn(path) : []
          if (!chunks.length) {
            throw new UserError(
              format === 'oc-mirror'
                ? `${path} holds no oc-mirror chunks (mirror_NNNNNN.tar)`
                : format === 'auto'
                  ? `${path} is neither an OCI layout (no index.json) nor a directory of oc-mirror chunks (mirror_NNNNNN.tar)`
                  : `${path} is a directory; --format ${format} expects a file`,
            )
          }
          for (const c of chunks) addChunk(c, await tarSource(c))
          continue
        }
        if (format === 'oci-dir') throw new UserError(`${path} is a file; --format oci-dir expects a directory`)
        const src = await tarSource(path)
        const f = format === 'auto' ? detectFormat(src.names(), basename(path)) : format
        if (!f)
          throw new ArchiveError(
            path,
            'is neither an OCI archive (index.json), a docker archive (manifest.json) nor an oc-mirror archive (docker/registry/v2/, working-dir/)',
          )
        if (f === 'oc-mirror') addChunk(path, src)
        else sources.push({ src, format: f })
      }
      let ocMirror: OcMirrorResult | undefined
      if (sets.size) {
        ocMirror = await importOcMirrorSets(layout, [...sets.values()], added)
        for (const i of ocMirror.images)
          out.push({ ociName: i.ociName, digest: i.digest, mediaType: i.mediaType, source: i.source, kind: i.kind })
      }
      for (const { src, format } of sources) {
        if (format === 'oci-archive' || format === 'oci-dir') out.push(...(await importOci(layout, src, added, opts.name)))
        else if (format === 'docker-archive') out.push(...(await importDocker(layout, src, added, opts.name)))
      }
      // Blobs this import added that no image uses (e.g. stray files) go again.
      const keep = new Set<string>()
      for (const e of await layout.entries()) for (const d of await layout.walk(e, { allowMissing: true })) keep.add(d.digest)
      for (const d of added) if (!keep.has(d)) await unlink(layout.blobPath(d)).catch(() => {})
      await layout.syncIndex()
      if (ocMirror) await recordImport(opts.cacheDir, ocMirror)
      return { images: out, ...(ocMirror ? { ocMirror } : {}) }
    } catch (e) {
      await layout.writeIndex(indexBefore)
      for (const d of added) await unlink(layout.blobPath(d)).catch(() => {})
      if (e instanceof DigestMismatchError)
        throw new ArchiveError(opts.paths.join(', '), e.message + ' (the archive is corrupt or was tampered with)')
      throw e
    }
  })
}

/** Store one blob from the source, verified against its descriptor. */
async function ingestBlob(
  layout: OciLayout,
  src: FileSource,
  file: string,
  want: { digest: string; size?: number },
  added: Set<string>,
  what: string,
): Promise<void> {
  if (await layout.hasBlob(want.digest, want.size)) return
  if (!src.has(file)) throw new ArchiveError(src.label, `${what}: blob ${want.digest} is missing (${file})`)
  const r = await layout.putBlob(src.stream(file), want, `${what}: blob ${want.digest} (${file}) does not match its digest`)
  if (r.created) added.add(want.digest)
}

type Locate = (digest: string) => string

/** Copy a manifest/index tree, each blob checked against its descriptor. */
async function ingestTree(
  layout: OciLayout,
  src: FileSource,
  root: Descriptor,
  locate: Locate,
  added: Set<string>,
  image: string,
): Promise<void> {
  const seen = new Set<string>()
  const visit = async (d: Descriptor): Promise<void> => {
    if (!isDigest(d.digest)) throw new ArchiveError(src.label, `${image}: bad digest ${JSON.stringify(d.digest)}`)
    if (seen.has(d.digest)) return
    seen.add(d.digest)
    if (/nondistributable|foreign/.test(d.mediaType) && !src.has(locate(d.digest))) return
    if ((isIndexType(d.mediaType) || isManifestType(d.mediaType)) && d.size > MAX_MANIFEST_BYTES) {
      throw new ArchiveError(src.label, `${image}: manifest ${d.digest} is ${d.size} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`)
    }
    await ingestBlob(layout, src, locate(d.digest), d, added, image)
    if (isIndexType(d.mediaType)) {
      const idx = await layout.readJson<ImageIndex>(d)
      for (const m of idx.manifests ?? []) await visit(m)
    } else if (isManifestType(d.mediaType)) {
      const m = await layout.readJson<{ config?: Descriptor; layers?: Descriptor[] }>(d)
      if (!m.config) throw new ArchiveError(src.label, `${image}: manifest ${d.digest} has no config`)
      await visit(m.config)
      for (const l of m.layers ?? []) await visit(l)
    }
  }
  await visit(root)
}

async function readJsonFile<T>(src: FileSource, name: string): Promise<T> {
  const buf = await src.bytes(name, MAX_MANIFEST_BYTES)
  try {
    return JSON.parse(buf.toString('utf8')) as T
  } catch {
    throw new ArchiveError(src.label, `${name} is not valid JSON`)
  }
}

async function importOci(
  layout: OciLayout,
  src: FileSource | DirSource,
  added: Set<string>,
  fallbackName?: string,
): Promise<ImportedImage[]> {
  const index = await readJsonFile<ImageIndex>(src, 'index.json')
  if (!Array.isArray(index.manifests)) throw new ArchiveError(src.label, 'index.json has no manifests')
  const prep = 'prepare' in src ? src.prepare.bind(src) : undefined
  const locate: Locate = (d) => `blobs/sha256/${digestHex(d)}`
  if (prep) {
    // Directory: vet every file the tree could need before reading it.
    const vetTree = async (d: Descriptor): Promise<void> => {
      if (!isDigest(d.digest)) return
      await prep(locate(d.digest))
    }
    for (const m of index.manifests) await vetTree(m)
  }
  const out: ImportedImage[] = []
  for (const [i, entry] of index.manifests.entries()) {
    const a = entry.annotations ?? {}
    const tagOnly = a['org.opencontainers.image.ref.name']
    const name =
      a['io.containerd.image.name'] ??
      (tagOnly && (tagOnly.includes('/') || tagOnly.includes(':')) ? tagOnly : undefined) ??
      (fallbackName && index.manifests.length === 1 ? fallbackName : undefined) ??
      `imported/${basename(src.label).replace(/\.(tar|oci)$/, '')}${tagOnly ? ':' + tagOnly : index.manifests.length > 1 ? '-' + i : ''}`
    if (prep) {
      const vet = async (d: Descriptor): Promise<void> => {
        await prep(locate(d.digest))
        if (isIndexType(d.mediaType) || isManifestType(d.mediaType)) {
          const doc = await readJsonFile<{ manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] }>(src, locate(d.digest))
          for (const c of [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])])
            if (isDigest(c.digest)) await vet(c)
        }
      }
      await vet(entry)
    }
    await ingestTree(layout, src, entry, locate, added, name)
    await layout.setEntry(name, entry, { [SOURCE_REF]: src.label })
    out.push({ ociName: name, digest: entry.digest, mediaType: entry.mediaType, source: src.label })
  }
  return out
}

interface DockerManifestItem {
  Config: string
  RepoTags?: string[] | null
  Layers: string[]
}

async function gunzipDigest(stream: Readable): Promise<string> {
  const h = new HashingStream()
  await pipeline(stream, createGunzip(), h, async function* (src) {
    for await (const _ of src) {
      // drain
    }
  })
  return h.digest()
}

async function importDocker(layout: OciLayout, src: FileSource, added: Set<string>, fallbackName?: string): Promise<ImportedImage[]> {
  const items = await readJsonFile<DockerManifestItem[]>(src, 'manifest.json')
  if (!Array.isArray(items)) throw new ArchiveError(src.label, 'manifest.json is not a list')
  const out: ImportedImage[] = []
  const nameDigest = (file: string): string | undefined => {
    const m = /(?:^|\/)(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(file)
    return m ? `sha256:${m[1]}` : undefined
  }
  for (const [i, item] of items.entries()) {
    if (typeof item.Config !== 'string' || !Array.isArray(item.Layers))
      throw new ArchiveError(src.label, `manifest.json item ${i} has no Config/Layers`)
    const what = item.RepoTags?.[0] ?? `image ${i}`
    // Config: small JSON; its digest is checked when its file name carries one.
    const cfgBytes = await src.bytes(item.Config, MAX_MANIFEST_BYTES)
    const cfgDigest = sha256Bytes(cfgBytes)
    const named = nameDigest(item.Config)
    if (named && named !== cfgDigest) {
      throw new ArchiveError(
        src.label,
        `${what}: config ${item.Config} does not match its digest (sha256 is ${cfgDigest}; the archive is corrupt or was tampered with)`,
      )
    }
    const cfg = JSON.parse(cfgBytes.toString('utf8')) as { rootfs?: { diff_ids?: string[] } }
    const diffIds = cfg.rootfs?.diff_ids ?? []
    if (diffIds.length !== item.Layers.length)
      throw new ArchiveError(src.label, `${what}: config lists ${diffIds.length} layers, manifest.json ${item.Layers.length}`)
    const hadCfg = await layout.hasBlob(cfgDigest)
    await layout.putBlobBytes(cfgBytes)
    if (!hadCfg) added.add(cfgDigest)
    const layers: Descriptor[] = []
    for (const [j, file] of item.Layers.entries()) {
      const stored = await layout.putBlob(src.stream(file), undefined, `${what}: layer ${file}`)
      if (stored.created) added.add(stored.digest)
      const head = await firstBytes(layout, stored.digest)
      const gz = head[0] === 0x1f && head[1] === 0x8b
      const diff = gz ? await gunzipDigest(layout.openBlob(stored.digest)) : stored.digest
      if (diff !== diffIds[j]) {
        throw new ArchiveError(
          src.label,
          `${what}: layer ${file} does not match its digest (diff_id ${diffIds[j]}, content ${diff}; the archive is corrupt or was tampered with)`,
        )
      }
      layers.push({ mediaType: gz ? MEDIA.ociLayerGzip : MEDIA.ociLayer, digest: stored.digest, size: stored.size })
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: MEDIA.ociConfig, digest: cfgDigest, size: cfgBytes.length },
        layers,
      }),
    )
    const m = await layout.putBlobBytes(manifest)
    added.add(m.digest)
    const desc: Descriptor = { mediaType: MEDIA.ociManifest, digest: m.digest, size: m.size }
    const names = item.RepoTags?.length
      ? item.RepoTags
      : [fallbackName && items.length === 1 ? fallbackName : `imported/${basename(src.label).replace(/\.tar$/, '')}-${i}`]
    for (const n of names) {
      await layout.setEntry(n, desc, { [SOURCE_REF]: src.label })
      out.push({ ociName: n, digest: m.digest, mediaType: desc.mediaType, source: src.label })
    }
  }
  return out
}

async function firstBytes(layout: OciLayout, digest: string): Promise<Buffer> {
  for await (const chunk of createReadStream(layout.blobPath(digest), { start: 0, end: 1 })) return chunk as Buffer
  return Buffer.alloc(0)
}

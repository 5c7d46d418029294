// oc-mirror v2 archives: the mirror_%06d.tar chunks that `oc-mirror --v2 -c
// isc.yaml file://DIR` (mirror-to-disk) writes, read into the image cache so
// that every image reaches the appliance under the repository and tag
// oc-mirror gave it, as oc-mirror's own disk-to-mirror step would push it.
//
// Followed from the source: openshift/oc-mirror at commit
// 855b64a3c9c03634bcab6210b641274772050cda (main, 2026-08-21; the v2 code
// sits at the top level there, formerly under v2/; released as 4.18+):
//  - internal/pkg/archive/archive.go BuildArchive: one run writes, in this
//    order, the WHOLE docker/registry/v2/repositories tree of its local cache
//    (every repository the cache holds, also those other
//    ImageSetConfigurations left there), then blobs/sha256/<2>/<hex>/data of
//    this run's images that no earlier run shipped (working-dir/.history),
//    then working-dir/, then isc_<RFC3339>. permissive_adder.go and
//    strict_adder.go cut the chunks at archiveSize: regular files only, a file
//    never split (one larger than archiveSize gets a chunk of its own), so a
//    manifest and its layers may sit in different chunks and the last chunks
//    may hold only working-dir/ and isc_*.
//  - internal/pkg/history/history.go: working-dir/.history/.history-<RFC3339>,
//    one blob digest a line, written when a run ends: every blob shipped so
//    far (each file is the union of the one before and that run's blobs).
//  - archive/image-blob-gatherer.go: an image's blobs are its manifest (for an
//    index: the index and the children of the platforms kept), configs,
//    layers, and its cosign signature, tag sha256-<hex>.sig
//    (signature/cosign_tag_based_signatures.go SigstoreAttachmentTag).
//  - release/local_stored_collector.go: a release goes to
//    openshift/release-images:<tag>, its components to
//    openshift/release:<tag>-<name>, an image pinned by digest only gets the
//    tag sha256-<hex> (not a signature: no .sig). release/signature.go keeps
//    release signatures as working-dir/signatures/<tag>-sha256-<hex>.
//  - cli/executor.go: the cache registry runs with
//    validation.manifests.indexes.platforms: none, so it keeps sparse indexes.
// The cache is a distribution filesystem storage tree
// (distribution/distribution registry/storage/paths.go, commit 0d6b721dc3ce):
// repositories/<name>/_manifests/revisions/sha256/<hex>/link,
// _manifests/tags/<tag>/current/link (and tags/<tag>/index/sha256/<hex>/link,
// the tag's past), _layers/sha256/<hex>/link, _uploads/<id>/… (unfinished
// uploads, ignored here), blobs/sha256/<2>/<hex>/data; a link holds the
// digest string "sha256:<hex>".

import { readFile, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { createInterface } from 'node:readline'
import { parse as parseYaml } from 'yaml'
import { writeFileAtomic } from '../atomic.js'
import { UserError } from '../errors.js'
import { digestHex, isDigest } from './digest.js'
import type { ContentKind } from './names.js'
import { isIndexType, MAX_MANIFEST_BYTES, MEDIA, OciLayout, SOURCE_REF, SPARSE_ABSENT, type Descriptor } from './oci.js'
import type { FileSource } from './source.js'
import { ArchiveError } from './tar.js'

/** Annotations on the cache entries of oc-mirror images. */
export const OCM_REPO = 'io.mirror-appliance.oc-mirror.repository'
export const OCM_TAG = 'io.mirror-appliance.oc-mirror.tag'
export const OCM_KIND = 'io.mirror-appliance.oc-mirror.kind'

/** oc-mirror's chunk names (archive/unarchive.go mirrorTarRegex, const.go archiveFileNameFormat). */
export const CHUNK_RE = /^mirror_(\d{6})\.tar$/
const REG = 'docker/registry/v2/'
/** A cosign signature is tagged after the digest it signs. */
const SIGNATURE_TAG_RE = /^sha256-[a-f0-9]{64}\.sig$/
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
/** distribution's repository name grammar (reference.NameRegexp, path part) */
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/
const RELEASE_SIGNATURE_RE = /^working-dir\/signatures\/([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})-sha256-([a-f0-9]{64})$/
/** Release signatures are small detached GPG messages. */
const MAX_RELEASE_SIGNATURE_BYTES = 1024 * 1024

export interface ChunkSet {
  /** What the user gave: the directory of the chunks */
  label: string
  chunks: { path: string; src: FileSource }[]
}

export interface OcMirrorImage {
  /** Name of the cache entry: REPO:TAG */
  ociName: string
  repo: string
  tag: string
  digest: string
  mediaType: string
  size: number
  /** signature: a cosign signature (tag sha256-<hex>.sig), pushed with its tag, never a content image */
  kind: 'image' | 'signature'
  /** Children of a sparse index left out by oc-mirror's platforms filter */
  absent?: string[]
  /** The directory of the chunks it came from */
  source: string
  /** What it is to a cluster, from the run's ImageSetConfiguration (absent without one) */
  contentKind?: ContentKind
  /**
   * Where clusters pull it from, when the run's ImageSetConfiguration names
   * it (catalogs, additional images): REGISTRY/PATH:TAG or @DIGEST. Releases
   * are known by their repositories (builder/handoff); operator images are
   * not named in the ISC.
   */
  origin?: string
}

export interface OcMirrorSkip {
  repo: string
  tag: string
  digest: string
  reason: string
}

export interface ReleaseSignature {
  /** oc-mirror's file name, <tag>-sha256-<hex> */
  file: string
  /** The release tag, e.g. 4.15.0-x86_64 */
  tag: string
  /** The release image digest it signs */
  digest: string
  data: Buffer
}

export interface OcMirrorRun {
  label: string
  /** From the run's isc_<RFC3339> file */
  iscTime?: string
  chunks: string[]
}

export interface OcMirrorResult {
  runs: OcMirrorRun[]
  images: OcMirrorImage[]
  skipped: OcMirrorSkip[]
  releaseSignatures: ReleaseSignature[]
}

/** Refusals about a run as a whole (an earlier run or a chunk missing). */
export class OcMirrorError extends UserError {
  constructor(message: string, hint: string) {
    super(message, `${hint}; nothing was written to the image cache`)
    this.name = 'OcMirrorError'
  }
}

interface Repository {
  tags: Map<string, string>
  /** Manifests the cache registry held in this repository (_manifests/revisions) */
  revisions: Set<string>
}

interface Run {
  set: ChunkSet
  /** Every file of the run, by name, and the chunk holding it */
  files: Map<string, FileSource>
  iscTime?: string
  /** "mirror_000002.tar", "the chunk holding working-dir/ and isc_*" */
  missingChunks: string[]
  /** Blob digest -> time of the earliest history file listing it: the run that shipped it */
  shippedBy: Map<string, string>
  /** Times of the history files in the archive, oldest first */
  historyTimes: string[]
  repos: Map<string, Repository>
  /** Repository paths the run's ImageSetConfiguration names as catalogs / additional images, and their registries */
  isc?: { catalogs: Set<string>; additional: Set<string>; operators: boolean; registries: Map<string, string> }
}

export function registryBlobPath(digest: string): string {
  const hex = digestHex(digest)
  return `${REG}blobs/sha256/${hex.slice(0, 2)}/${hex}/data`
}

/** True when the names look like (part of) an oc-mirror archive. */
export function looksLikeOcMirror(names: Iterable<string>): boolean {
  for (const n of names) if (n.startsWith(REG) || n.startsWith('working-dir/') || /^isc_[^/]+$/.test(n)) return true
  return false
}

/** Index every file of a set of chunks and what the run says about itself. */
async function readRun(set: ChunkSet): Promise<Run> {
  const files = new Map<string, FileSource>()
  for (const c of set.chunks) for (const n of c.src.names()) if (!files.has(n)) files.set(n, c.src)
  const names = [...files.keys()].sort()
  if (!names.some((n) => n.startsWith(REG))) {
    throw new ArchiveError(
      set.label,
      `none of its ${set.chunks.length} chunk(s) (${set.chunks.map((c) => basename(c.path)).join(', ')}) holds ${REG}: ` +
        'these are not the image chunks of an oc-mirror v2 run (a chunk with only working-dir/ and isc_* comes with the chunks before it)',
    )
  }
  const iscs = names.filter((n) => /^isc_[^/]+$/.test(n))
  if (iscs.length > 1) {
    throw new ArchiveError(
      set.label,
      `holds ${iscs.length} isc_* files (${iscs.join(', ')}): chunks of different oc-mirror runs were given together; give each run's chunks from a directory of their own`,
    )
  }
  const run: Run = { set, files, missingChunks: chunkGaps(set), shippedBy: new Map(), historyTimes: [], repos: new Map() }
  if (iscs[0]) {
    run.iscTime = iscs[0].slice(4)
    run.isc = readIsc(await files.get(iscs[0])!.bytes(iscs[0], 4 * 1024 * 1024))
  } else run.missingChunks.push('the chunk holding working-dir/ and isc_* (oc-mirror writes them last)')
  await readHistory(run, names)
  await readRepositories(run, names)
  return run
}

/** An image reference split as oc-mirror's image.ParseRef: registry (when the first component names one) and the path its cache uses. */
function splitRef(ref: string): { registry?: string; path: string } {
  const noDigest = ref.split('@')[0]!
  const slash = noDigest.indexOf('/')
  const colon = noDigest.lastIndexOf(':')
  const noTag = colon > noDigest.lastIndexOf('/') ? noDigest.slice(0, colon) : noDigest
  const first = noTag.slice(0, slash)
  return slash > 0 && (/[.:]/.test(first) || first === 'localhost') ? { registry: first, path: noTag.slice(slash + 1) } : { path: noTag }
}

const pathComponent = (ref: string) => splitRef(ref).path

/** What the run's ImageSetConfiguration (api/v2alpha1 type_config.go) says about repositories: catalogs, additional images. */
function readIsc(text: Buffer): Run['isc'] {
  let doc: { mirror?: { operators?: { catalog?: string; targetCatalog?: string }[]; additionalImages?: { name?: string }[] } }
  try {
    doc = (parseYaml(text.toString('utf8')) ?? {}) as typeof doc
  } catch {
    return undefined
  }
  const ops = doc.mirror?.operators ?? []
  const catalogs = new Set(
    ops.map((o) => (o.targetCatalog ? pathComponent(o.targetCatalog) : o.catalog ? pathComponent(o.catalog) : '')).filter(Boolean),
  )
  const additional = new Set((doc.mirror?.additionalImages ?? []).map((a) => (a.name ? pathComponent(a.name) : '')).filter(Boolean))
  // The registry each of those repositories comes from (a catalog under targetCatalog: the catalog's)
  const registries = new Map<string, string>()
  for (const o of ops)
    if (o.catalog && splitRef(o.catalog).registry)
      registries.set(pathComponent(o.targetCatalog ?? o.catalog), splitRef(o.catalog).registry!)
  for (const a of doc.mirror?.additionalImages ?? [])
    if (a.name && splitRef(a.name).registry) registries.set(pathComponent(a.name), splitRef(a.name).registry!)
  return { catalogs, additional, operators: ops.length > 0, registries }
}

/** What an image is to a cluster: releases and their components by oc-mirror's repositories, the rest by the ISC. */
function contentKind(repo: string, isc: Run['isc']): ContentKind | undefined {
  if (repo === 'openshift/release-images') return 'release'
  if (repo === 'openshift/release') return 'release-component'
  if (!isc) return undefined
  if (isc.catalogs.has(repo)) return 'operator-catalog'
  if (isc.additional.has(repo) || !isc.operators) return 'generic'
  return 'operator'
}

/** Where clusters pull an image from, when the ISC names its repository (not for signatures: they follow their image). */
function originOf(repo: string, tag: string, digest: string, isc: Run['isc']): string | undefined {
  const registry = isc?.registries.get(repo)
  if (!registry || SIGNATURE_TAG_RE.test(tag)) return undefined
  return /^sha256-[a-f0-9]{64}$/.test(tag) ? `${registry}/${repo}@${digest}` : `${registry}/${repo}:${tag}`
}

/** Chunk numbers that should be there and are not: oc-mirror numbers every chunk it writes, from 1. */
function chunkGaps(set: ChunkSet): string[] {
  const nums = set.chunks
    .map((c) => CHUNK_RE.exec(basename(c.path)))
    .filter((m) => m)
    .map((m) => Number(m![1]))
  if (nums.length !== set.chunks.length || !nums.length) return []
  const have = new Set(nums)
  const gaps: string[] = []
  for (let i = 1; i < Math.max(...nums); i++) if (!have.has(i)) gaps.push(`mirror_${String(i).padStart(6, '0')}.tar`)
  return gaps
}

async function readHistory(run: Run, names: string[]): Promise<void> {
  const files = names
    .map((n) => ({ n, m: /^working-dir\/\.history\/\.history-([^/]+)$/.exec(n) }))
    .filter((x) => x.m)
    .map((x) => ({ name: x.n, time: x.m![1]! }))
    // RFC3339 UTC times sort as strings
    .sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0))
  for (const f of files) {
    run.historyTimes.push(f.time)
    const lines = createInterface({ input: run.files.get(f.name)!.stream(f.name), crlfDelay: Infinity })
    for await (const line of lines) {
      const d = line.trim()
      if (isDigest(d) && !run.shippedBy.has(d)) run.shippedBy.set(d, f.time)
    }
  }
}

async function readRepositories(run: Run, names: string[]): Promise<void> {
  const repoRe = /^docker\/registry\/v2\/repositories\/(.+?)\/(_manifests|_layers|_uploads)\/(.+)$/
  for (const name of names) {
    const m = repoRe.exec(name)
    if (!m) continue
    const [, repo, part, rest] = m as unknown as [string, string, string, string]
    if (part === '_uploads' || part === '_layers') continue
    if (!REPO_RE.test(repo)) throw new ArchiveError(run.set.label, `${name}: ${JSON.stringify(repo)} is not a repository name`)
    const r = run.repos.get(repo) ?? { tags: new Map(), revisions: new Set() }
    run.repos.set(repo, r)
    const rev = /^revisions\/sha256\/([a-f0-9]{64})\/link$/.exec(rest)
    if (rev) {
      r.revisions.add(`sha256:${rev[1]}`)
      continue
    }
    const tag = /^tags\/([^/]+)\/current\/link$/.exec(rest)
    if (!tag) continue
    if (!TAG_RE.test(tag[1]!)) throw new ArchiveError(run.set.label, `${name}: ${JSON.stringify(tag[1])} is not a tag`)
    const digest = (await run.files.get(name)!.bytes(name, 1024)).toString('utf8').trim()
    if (!isDigest(digest)) throw new ArchiveError(run.set.label, `${name} does not hold a sha256 digest`)
    r.tags.set(tag[1]!, digest)
  }
}

type Place = 'cache' | 'archive' | 'earlier-run' | 'nowhere'

interface Problem {
  image: string
  digest: string
  what: string
  place: 'earlier-run' | 'nowhere'
}

/** Reads one run's repositories into the cache; problems are collected, refused together. */
class RunImporter {
  readonly images: OcMirrorImage[] = []
  readonly skipped: OcMirrorSkip[] = []
  readonly problems: Problem[] = []

  constructor(
    private readonly layout: OciLayout,
    private readonly run: Run,
    private readonly added: Set<string>,
  ) {}

  private async place(digest: string, size?: number): Promise<Place> {
    if (await this.layout.hasBlob(digest, size)) return 'cache'
    if (this.run.files.has(registryBlobPath(digest))) return 'archive'
    return this.run.shippedBy.has(digest) ? 'earlier-run' : 'nowhere'
  }

  /** Store a blob of the archive in the cache, checked against its digest (and size, when known). */
  private async ingest(d: { digest: string; size?: number }, image: string): Promise<number> {
    const name = registryBlobPath(d.digest)
    const src = this.run.files.get(name)
    if (!src) return (await stat(this.layout.blobPath(d.digest))).size
    const r = await this.layout.putBlob(
      src.stream(name),
      { digest: d.digest, ...(d.size !== undefined ? { size: d.size } : {}) },
      `${image}: ${name} in ${src.label}`,
    )
    if (r.created) this.added.add(d.digest)
    return r.size
  }

  /** Is the blob usable? Stores it when the archive has it; records a problem when it is missing. */
  private async need(d: { digest: string; size?: number; mediaType?: string }, image: string, what: string): Promise<boolean> {
    if (!isDigest(d.digest)) throw new ArchiveError(this.run.set.label, `${image}: ${what} has a bad digest ${JSON.stringify(d.digest)}`)
    const p = await this.place(d.digest, d.size)
    if (p === 'cache' || p === 'archive') {
      if (p === 'archive') await this.ingest(d, image)
      return true
    }
    if (p === 'nowhere' && d.mediaType && /nondistributable|foreign/.test(d.mediaType)) return false
    this.problems.push({ image, digest: d.digest, what, place: p })
    return false
  }

  private async readDoc(digest: string, image: string): Promise<{ doc: ManifestDoc; size: number }> {
    const size = (await stat(this.layout.blobPath(digest))).size
    if (size > MAX_MANIFEST_BYTES)
      throw new ArchiveError(
        this.run.set.label,
        `${image}: manifest ${digest} is ${size} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`,
      )
    try {
      return { doc: JSON.parse((await readFile(this.layout.blobPath(digest))).toString('utf8')) as ManifestDoc, size }
    } catch {
      throw new ArchiveError(this.run.set.label, `${image}: manifest ${digest} is not valid JSON`)
    }
  }

  /** A manifest's config and layers, or a (nested) index's children, each one there. */
  private async content(d: Descriptor, image: string): Promise<void> {
    const { doc } = await this.readDoc(d.digest, image)
    if (isIndexType(d.mediaType) || (!d.mediaType && doc.manifests)) {
      for (const child of doc.manifests ?? [])
        if (await this.need(child, image, `manifest of ${platformOf(child)}`)) await this.content(child, image)
      return
    }
    if (!doc.config) throw new ArchiveError(this.run.set.label, `${image}: manifest ${d.digest} has no config`)
    await this.need(doc.config, image, `config of ${d.digest.slice(0, 19)}`)
    for (const l of doc.layers ?? []) await this.need(l, image, `layer of ${d.digest.slice(0, 19)}`)
  }

  async tag(repo: string, tag: string, digest: string): Promise<void> {
    const image = `${repo}:${tag}`
    const before = this.problems.length
    const p = await this.place(digest)
    if (p === 'nowhere' && !this.run.missingChunks.length) {
      this.skipped.push({
        repo,
        tag,
        digest,
        reason:
          "left in oc-mirror's cache by another ImageSetConfiguration: its links are in the archive, its blobs in no chunk and in no earlier run",
      })
      return
    }
    if (!(await this.need({ digest }, image, 'manifest'))) return
    const { doc, size } = await this.readDoc(digest, image)
    if (doc.schemaVersion === 1) {
      this.skipped.push({ repo, tag, digest, reason: 'Docker schema 1 manifest, which registries no longer accept' })
      return
    }
    const mediaType = doc.mediaType ?? (doc.manifests ? MEDIA.ociIndex : MEDIA.ociManifest)
    const absent: string[] = []
    if (isIndexType(mediaType)) {
      const kept: Descriptor[] = []
      for (const child of doc.manifests ?? []) {
        if (!isDigest(child.digest))
          throw new ArchiveError(this.run.set.label, `${image}: index ${digest} lists a bad digest ${JSON.stringify(child.digest)}`)
        // Never pushed into the cache registry: left out by the platforms filter.
        if ((await this.place(child.digest, child.size)) === 'nowhere' && !this.run.repos.get(repo)?.revisions.has(child.digest))
          absent.push(child.digest)
        else if (await this.need(child, image, `manifest of ${platformOf(child)}`)) kept.push(child)
      }
      if (this.problems.length !== before) return
      if (!kept.length) {
        this.skipped.push({ repo, tag, digest, reason: `none of the ${absent.length} platform(s) of the index is in the archives` })
        return
      }
      for (const child of kept) await this.content(child, image)
    } else {
      await this.content({ mediaType, digest, size }, image)
    }
    if (this.problems.length !== before) return
    this.images.push({
      ociName: image,
      repo,
      tag,
      digest,
      mediaType,
      size,
      kind: SIGNATURE_TAG_RE.test(tag) ? 'signature' : 'image',
      ...(absent.length ? { absent } : {}),
      source: this.run.set.label,
      ...(contentKind(repo, this.run.isc) ? { contentKind: contentKind(repo, this.run.isc)! } : {}),
      ...(originOf(repo, tag, digest, this.run.isc) ? { origin: originOf(repo, tag, digest, this.run.isc)! } : {}),
    })
  }

  /** Every tag of every repository, in name order. */
  async all(): Promise<void> {
    for (const repo of [...this.run.repos.keys()].sort()) {
      const r = this.run.repos.get(repo)!
      for (const tag of [...r.tags.keys()].sort()) await this.tag(repo, tag, r.tags.get(tag)!)
    }
  }
}

interface ManifestDoc {
  schemaVersion?: number
  mediaType?: string
  manifests?: Descriptor[]
  config?: Descriptor
  layers?: Descriptor[]
}

function platformOf(d: Descriptor): string {
  return d.platform ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/') : d.digest.slice(0, 19)
}

/** The refusal for a run whose blobs are missing: which earlier run, or which chunk, to bring. */
function missingError(run: Run, problems: Problem[], cacheDir: string): OcMirrorError {
  const label = `${run.set.label}${run.iscTime ? ` (oc-mirror run of ${run.iscTime})` : ''}`
  const images = (ps: Problem[]) => new Set(ps.map((p) => p.image)).size
  const lines: string[] = []
  const hints: string[] = []
  const earlier = problems.filter((p) => p.place === 'earlier-run')
  const byRun = new Map<string, Problem[]>()
  for (const p of earlier) {
    const t = run.shippedBy.get(p.digest)!
    byRun.set(t, [...(byRun.get(t) ?? []), p])
  }
  for (const [t, ps] of [...byRun].sort()) {
    const prev = run.historyTimes.filter((h) => h < t).pop()
    lines.push(
      `  ${images(ps)} image(s) need blobs shipped by the oc-mirror run that ended at ${t} ` +
        `(working-dir/.history/.history-${t}; that run's isc_* file is dated ${prev ? `after ${prev} and ` : ''}before ${t}), ` +
        `e.g. ${ps[0]!.image}: ${ps[0]!.what} ${ps[0]!.digest}`,
    )
    hints.push(`import the archive of the oc-mirror run that ended at ${t} first`)
  }
  const lost = problems.filter((p) => p.place === 'nowhere')
  for (const p of lost.slice(0, 10))
    lines.push(`  ${p.image}: ${p.what} ${p.digest} is in none of the chunks given, and no earlier run shipped it`)
  if (lost.length > 10) lines.push(`  … and ${lost.length - 10} more`)
  if (lost.length) {
    hints.push(
      run.missingChunks.length
        ? `give every chunk of this run; missing: ${run.missingChunks.join(', ')}`
        : 'the archive lacks blobs its own repositories name: write it again with oc-mirror',
    )
  }
  const msg =
    `${label}: ${images(problems)} image(s) need blobs that are neither in its chunks nor in the image cache ${cacheDir}` +
    (earlier.length ? ' (an incremental archive ships only what earlier runs did not)' : '') +
    `:\n${lines.join('\n')}`
  const hint =
    hints.join('; ') +
    (earlier.length ? ' (into the same cache, or in the same command, oldest first: mirror-appliance images import RUN1-DIR RUN2-DIR)' : '')
  return new OcMirrorError(msg, hint)
}

function releaseSignatures(run: Run): { name: string; sig: Omit<ReleaseSignature, 'data'> }[] {
  const out = []
  for (const name of [...run.files.keys()].sort()) {
    const m = RELEASE_SIGNATURE_RE.exec(name)
    if (m) out.push({ name, sig: { file: basename(name), tag: m[1]!, digest: `sha256:${m[2]}` } })
  }
  return out
}

/** Oldest run first (by its isc_* time), so that a later run's tags win; as given when a run has no isc_* file. */
function chronological(runs: Run[]): Run[] {
  if (runs.some((r) => !r.iscTime)) return runs
  return [...runs].sort((a, b) => (a.iscTime! < b.iscTime! ? -1 : a.iscTime! > b.iscTime! ? 1 : 0))
}

/**
 * Import the chunk sets of one or more oc-mirror runs into the cache (the
 * caller holds its lock and undoes `added` on failure). Images whose blobs
 * are all there are added; repositories another config left in oc-mirror's
 * cache (links, no blobs) are skipped and listed; a blob an earlier run
 * shipped that the cache lacks refuses the import and names that run.
 */
export async function importOcMirrorSets(layout: OciLayout, sets: ChunkSet[], added: Set<string>): Promise<OcMirrorResult> {
  const runs = chronological(await Promise.all(sets.map(readRun)))
  const images = new Map<string, OcMirrorImage>()
  const skipped: OcMirrorSkip[] = []
  const sigs = new Map<string, ReleaseSignature>()
  for (const run of runs) {
    const r = new RunImporter(layout, run, added)
    await r.all()
    if (r.problems.length) throw missingError(run, r.problems, layout.dir)
    await layout.setEntries(
      r.images.map((img) => ({
        name: img.ociName,
        desc: { mediaType: img.mediaType, digest: img.digest, size: img.size },
        annotations: {
          [SOURCE_REF]: run.set.label,
          [OCM_REPO]: img.repo,
          [OCM_TAG]: img.tag,
          [OCM_KIND]: img.kind,
          ...(img.absent ? { [SPARSE_ABSENT]: img.absent.join(',') } : {}),
        },
      })),
    )
    for (const img of r.images) images.set(img.ociName, img)
    skipped.push(...r.skipped)
    for (const { name, sig } of releaseSignatures(run)) {
      const data = await run.files.get(name)!.bytes(name, MAX_RELEASE_SIGNATURE_BYTES)
      sigs.set(sig.file, { ...sig, data })
    }
  }
  // Listed once; and a repository skipped in one run and imported from another is not skipped.
  const seen = new Set<string>()
  const stillSkipped = skipped.filter((s) => {
    const key = `${s.repo}:${s.tag}@${s.digest}`
    if (seen.has(key) || images.get(`${s.repo}:${s.tag}`)?.digest === s.digest) return false
    seen.add(key)
    return true
  })
  return {
    runs: runs.map((r) => ({ label: r.set.label, ...(r.iscTime ? { iscTime: r.iscTime } : {}), chunks: r.set.chunks.map((c) => c.path) })),
    images: [...images.values()],
    skipped: stillSkipped,
    releaseSignatures: [...sigs.values()],
  }
}

// ---- what the cache remembers of oc-mirror imports -------------------------

/** Where release signatures are kept in the cache, under oc-mirror's file names. */
export function releaseSignatureDir(cacheDir: string): string {
  return join(cacheDir, 'oc-mirror', 'release-signatures')
}

function recordPath(cacheDir: string): string {
  return join(cacheDir, 'oc-mirror', 'imports.json')
}

export interface ImportRecord {
  /** Absolute paths of the chunks */
  chunks: string[]
  runs: OcMirrorRun[]
  images: OcMirrorImage[]
  skipped: OcMirrorSkip[]
  releaseSignatures: Omit<ReleaseSignature, 'data'>[]
}

interface RecordFile {
  schema: 'mirror-appliance/oc-mirror-imports/v1'
  imports: ImportRecord[]
}

export async function readImportRecords(cacheDir: string): Promise<ImportRecord[]> {
  const text = await readFile(recordPath(cacheDir), 'utf8').catch(() => null)
  if (!text) return []
  try {
    const f = JSON.parse(text) as RecordFile
    return Array.isArray(f.imports) ? f.imports : []
  } catch {
    return []
  }
}

/**
 * Keep what an import brought besides images: release signatures (under
 * oc-mirror's names) and a record of the import, so that a build whose
 * archives were deleted after `images import` still knows their images.
 */
export async function recordImport(cacheDir: string, r: OcMirrorResult): Promise<void> {
  for (const s of r.releaseSignatures) await writeFileAtomic(join(releaseSignatureDir(cacheDir), s.file), s.data, { mkdir: true })
  const chunks = r.runs.flatMap((x) => x.chunks)
  const rec: ImportRecord = {
    chunks,
    runs: r.runs,
    images: r.images,
    skipped: r.skipped,
    releaseSignatures: r.releaseSignatures.map(({ data: _, ...s }) => s),
  }
  const imports = (await readImportRecords(cacheDir)).filter((x) => !x.chunks.some((c) => chunks.includes(c)))
  imports.push(rec)
  const file: RecordFile = { schema: 'mirror-appliance/oc-mirror-imports/v1', imports }
  await writeFileAtomic(recordPath(cacheDir), JSON.stringify(file, null, 2) + '\n', { mkdir: true })
}

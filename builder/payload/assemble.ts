// The payload that goes on the media: an OCI layout holding only the images
// this appliance needs (blobs hard-linked from the cache when on the same
// filesystem, else copied while their digest is checked), images.tsv (the
// contract with first boot), payload.json (what went in) and SHA256SUMS.
// Streams everything: memory stays flat whatever the payload size.
//
// For a registry that serves a storage tree laid at build time (distribution
// on the host's disk, registry-tree.ts), the payload also carries the tree's
// link files under registry-tree/ (layout.PAYLOAD_TREE_DIR), never its blob
// data: the blobs are the payload's own oci/blobs, which first boot
// hard-links into the tree on the data volume. Shipping the tree's blobs too
// would double the bytes: an ISO shows hard links as separate files, and the
// kickstart copies the payload with cp -a.

import { constants } from 'node:fs'
import { copyFile, link, mkdir, stat, unlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { withTemp, writeFileAtomic } from '../atomic.js'
import { UserError } from '../errors.js'
import type { ManifestImage } from '../manifest.js'
import type { ToolNeed } from '../tool-needs.js'
import { copyHashing } from './copy.js'
import { digestHex, sha256Bytes } from './digest.js'
import type { StackImage } from './lock.js'
import { withDirLock } from './lockfile.js'
import { contentOciName, tsvField, type ContentImageRef, type ContentKind } from './names.js'
import {
  imagePlatforms,
  MEDIA,
  OciLayout,
  REF_NAME,
  SOURCE_DIGEST,
  SOURCE_REF,
  SPARSE_ABSENT,
  VerifyError,
  type Descriptor,
} from './oci.js'
import { ocMirrorRows, placeReleaseSignatures, type OcMirrorContent, type OcMirrorRow } from './ocmirror-payload.js'
import { parseRef } from './ref.js'
import { planPayloadTree, TREE_V2, type PayloadTree } from './registry-tree.js'
import { treeVolumeFigures, type VolumeFigures } from './data-volume.js'
import { PAYLOAD_TREE_DIR } from '../registry/layout.js'

/** The programs this stage runs (tool-needs.ts): none, the OCI layout is read, copied and written in-process. */
export const PAYLOAD_TOOLS: readonly ToolNeed[] = []

export interface AssembleProgress {
  /** bytes placed so far / total */
  bytes: number
  total: number
  blobs: number
  totalBlobs: number
}

export interface AssembleOptions {
  cacheDir: string
  stack: StackImage[]
  content: ContentImageRef[]
  outDir: string
  /** Dry runs: write what is there, record what is not */
  allowMissing?: boolean
  /** false: always copy (the media tree will be modified or moved elsewhere) */
  link?: boolean
  /** 'full' re-hashes every blob of the cache; 'quick' (default) checks sizes and manifests */
  verify?: 'full' | 'quick'
  /** The config file the user passed, for the "how to fetch" hint */
  configPath?: string
  /** What oc-mirror archives brought into the cache (ocmirror.ts), each image under oc-mirror's repository and tag */
  ocMirror?: OcMirrorContent
  /** Carry the registry storage tree's link files (registry-tree/): some host's registry serves a tree laid at build time */
  registryTree?: boolean
  onProgress?: (p: AssembleProgress) => void
  signal?: AbortSignal
}

export interface PayloadImage extends ManifestImage {
  ociName: string
  tag?: string
  missing?: boolean
  /**
   * For the OpenShift hand-off (builder/handoff/content.ts), set by importers
   * that know them (oc-mirror archives): what the image is to a cluster, and
   * the reference clusters pull it by (e.g.
   * quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:…). Absent: read
   * from the config's content.images, the image's labels and its repository.
   */
  kind?: ContentKind
  origin?: string
}

export interface AssembleResult {
  images: PayloadImage[]
  /** "role ociName (ref)" of every image that was not in the cache */
  missing: string[]
  bytes: number
  linked: number
  copied: number
  /**
   * What the registry data volume must hold for this payload (data-volume.ts),
   * from the registry tree plan made here: the build's disk-size check reads
   * these and does not plan the tree again.
   */
  volume: VolumeFigures
}

interface Wanted extends CacheWant {
  target: string
  tag?: string
  /** A stack image the config names (registry.images.<role>) */
  override?: boolean
  /** How first boot pushes oc-mirror content (images.tsv role; ocmirror-payload.ts) */
  tsvRole?: OcMirrorRow['tsvRole']
  kind?: PayloadImage['kind']
  origin?: string
}

/** An oc-mirror row as the rest of the payload sees an image. */
function ocMirrorWanted(r: OcMirrorRow): Wanted {
  return {
    role: 'content',
    ociName: r.ociName,
    ref: r.tag ? `${r.repo}:${r.tag}` : `${r.repo}@${r.entry.digest}`,
    digest: r.entry.digest,
    target: r.repo,
    ...(r.tag ? { tag: r.tag } : {}),
    tsvRole: r.tsvRole,
    ...(r.contentKind ? { kind: r.contentKind } : {}),
    ...(r.origin ? { origin: r.origin } : {}),
  }
}

/** One payload name, one image: two images that would be pushed as the same REPO:TAG are refused. */
function dropDuplicates(found: { w: Wanted; entry: Descriptor }[]): { w: Wanted; entry: Descriptor }[] {
  const byName = new Map<string, { w: Wanted; entry: Descriptor }>()
  for (const f of found) {
    const had = byName.get(f.w.ociName)
    if (had && had.entry.digest !== f.entry.digest) {
      throw new UserError(
        `${had.w.ref} (${had.entry.digest}) and ${f.w.ref} (${f.entry.digest}) would both be pushed as ${f.w.target}:${f.w.tag ?? f.entry.digest}`,
        'give one of them another target in the config (content.images[].target)',
      )
    }
    if (!had) byName.set(f.w.ociName, f)
  }
  return [...byName.values()]
}

/** What an image is looked up by in the cache. */
export interface CacheWant {
  role: 'stack' | 'content'
  /** The name the payload gives it (stack/<role>, content/…) */
  ociName: string
  ref: string
  digest?: string
}

/**
 * The cache entry holding an image, or undefined. Looked for under its
 * payload name (what `images fetch` writes), then under its ref (what
 * `images import --name REF` writes, or the source a fetch recorded); a stack
 * image, always pinned, is also found by its digest under any name. An entry
 * counts only when its digest is the one wanted (or, for a stack image
 * fetched for one architecture, the index digest it was fetched for). A
 * content image must be the pinned digest itself: first boot pushes what the
 * payload holds, and clusters pull it by the pinned digest.
 */
export function findInCache(entries: Descriptor[], w: CacheWant): Descriptor | undefined {
  const digestOk = (e: Descriptor) =>
    !w.digest || e.digest === w.digest || (w.role === 'stack' && e.annotations?.[SOURCE_DIGEST] === w.digest)
  const named = (e: Descriptor) => e.annotations?.[REF_NAME] === w.ociName
  const byRef = (e: Descriptor) => e.annotations?.[REF_NAME] === w.ref || e.annotations?.[SOURCE_REF] === w.ref
  return (
    entries.find((e) => named(e) && digestOk(e)) ??
    entries.find((e) => byRef(e) && digestOk(e)) ??
    (w.role === 'stack' && w.digest ? entries.find((e) => e.digest === w.digest || e.annotations?.[SOURCE_DIGEST] === w.digest) : undefined)
  )
}

/**
 * Why a content image is missing although its name is in the cache: an older
 * `images fetch` stored only one architecture of the index the config pins.
 */
export function narrowedEntry(entries: Descriptor[], w: CacheWant): Descriptor | undefined {
  if (w.role !== 'content' || !w.digest) return undefined
  return entries.find(
    (e) => e.annotations?.[REF_NAME] === w.ociName && e.digest !== w.digest && e.annotations?.[SOURCE_DIGEST] === w.digest,
  )
}

/** The images of `wanted` that the cache at cacheDir does not hold (all of them when there is no cache). */
export async function missingFromCache(cacheDir: string, wanted: CacheWant[]): Promise<CacheWant[]> {
  const exists = !!(await stat(join(cacheDir, 'oci-layout')).catch(() => null))
  if (!exists) return wanted
  const entries = await (await OciLayout.open(cacheDir, { create: false })).entries()
  return wanted.filter((w) => !findInCache(entries, w))
}

/** The command that puts an image the config names into the cache from an archive of it. */
export function importCommand(ref: string, cacheDir: string): string {
  return `mirror-appliance images import ARCHIVE --name ${ref} --cache ${cacheDir}`
}

export async function assemblePayload(opts: AssembleOptions): Promise<AssembleResult> {
  const wanted: Wanted[] = [
    ...opts.stack.map((s): Wanted => {
      const p = parseRef(s.ref)
      return {
        role: 'stack',
        ociName: s.ociName,
        ref: s.ref,
        digest: s.digest,
        target: p.repo,
        tag: p.tag,
        ...(s.override ? { override: true } : {}),
      }
    }),
    ...opts.content.map((c): Wanted => ({
      role: 'content',
      ociName: contentOciName(c),
      ref: c.ref,
      digest: c.digest ?? parseRef(c.ref).digest,
      target: c.target,
      tag: parseRef(c.ref).tag,
    })),
  ]
  const cacheExists = !!(await stat(join(opts.cacheDir, 'oci-layout')).catch(() => null))
  const cache = cacheExists ? await OciLayout.open(opts.cacheDir, { create: false }) : undefined

  const run = async (): Promise<AssembleResult> => {
    // ---- resolve every image first, fail once ----
    const found: { w: Wanted; entry: Descriptor }[] = []
    const missing: Wanted[] = []
    const entries = cache ? await cache.entries() : []
    for (const w of wanted) {
      const entry = findInCache(entries, w)
      if (entry) found.push({ w, entry })
      else missing.push(w)
    }
    if (opts.ocMirror) {
      const ocm = await ocMirrorRows(cache, entries, opts.ocMirror)
      for (const r of ocm.rows) found.push({ w: ocMirrorWanted(r), entry: r.entry })
      for (const m of ocm.missing) {
        missing.push({
          role: 'content',
          ociName: m.ociName,
          ref: `${m.repo}:${m.tag} of the oc-mirror archive ${m.source}`,
          digest: m.digest,
          target: m.repo,
          tag: m.tag,
          ...(m.kind === 'signature' ? { tsvRole: 'signature' as const } : {}),
        })
      }
    }
    found.splice(0, found.length, ...dropDuplicates(found))
    if (missing.length && !opts.allowMissing) {
      const why = (m: Wanted) => {
        const narrowed = narrowedEntry(entries, m)
        return narrowed
          ? `: the cache holds only its ${narrowed.annotations?.['io.mirror-appliance.architecture'] ?? 'one-architecture'} image ${narrowed.digest}, not the index the config pins; fetch it again to keep the whole index`
          : ''
      }
      const list = missing
        .map(
          (m) =>
            `  ${m.role} image ${m.ociName} (${m.ref}${m.digest ? '@' + m.digest : ''})${m.override ? `, named by the config's registry.images.${m.ociName.replace(/^stack\//, '')}` : ''}${why(m)}`,
        )
        .join('\n')
      const overrides = missing.filter((m) => m.override).map((m) => m.ref)
      throw new UserError(
        `${missing.length} image(s) are not in the image cache ${opts.cacheDir}:\n${list}`,
        `fetch them on a connected machine: mirror-appliance images fetch${opts.configPath ? ` -c ${opts.configPath}` : ''} --cache ${opts.cacheDir}` +
          (overrides.length
            ? `, or import the stack image${overrides.length > 1 ? 's' : ''} the config names from an archive: ${overrides.map((r) => importCommand(r, opts.cacheDir)).join('; ')}`
            : '') +
          ' (or build with --allow-missing for a dry run)',
      )
    }
    // ---- check the cache's copy before we put it on media ----
    const hashed = new Map<string, string | null>()
    const problems = []
    for (const f of found) problems.push(...(await cache!.verifyImage(f.entry, { full: opts.verify === 'full', hashed })))
    if (problems.length) throw new VerifyError(problems)

    // ---- the payload layout ----
    const ociDir = join(opts.outDir, 'oci')
    const blobsDir = join(ociDir, 'blobs', 'sha256')
    await mkdir(blobsDir, { recursive: true })
    const blobs = new Map<string, Descriptor>()
    for (const f of found)
      for (const d of await cache!.walk(f.entry))
        if (!/nondistributable|foreign/.test(d.mediaType) || (await cache!.hasBlob(d.digest))) blobs.set(d.digest, d)
    const total = [...blobs.values()].reduce((n, d) => n + d.size, 0)
    let bytes = 0
    let linked = 0
    let copied = 0
    let n = 0
    let canLink = opts.link !== false
    for (const d of blobs.values()) {
      opts.signal?.throwIfAborted()
      const src = cache!.blobPath(d.digest)
      const dst = join(blobsDir, digestHex(d.digest))
      const have = await stat(dst).catch(() => null)
      if (have?.size === d.size) {
        // already placed (an earlier run into the same dir)
      } else {
        if (have) await unlink(dst)
        let done = false
        if (canLink) {
          try {
            await link(src, dst)
            linked++
            done = true
          } catch (e) {
            const code = (e as NodeJS.ErrnoException).code
            if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP') throw e
            canLink = false
          }
        }
        if (!done) {
          // Blobs verified above (full mode) are copied by the kernel
          // (copy_file_range, reflinks where the filesystem has them);
          // otherwise the copy is hashed on the way.
          if (opts.verify === 'full') await copyFast(cache!.blobPath(d.digest), dst)
          else await copyVerified(cache!, d, dst, opts.signal)
          copied++
        }
      }
      bytes += d.size
      n++
      opts.onProgress?.({ bytes, total, blobs: n, totalBlobs: blobs.size })
    }
    await writeFileAtomic(join(ociDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: found.map(({ w, entry }) => ({
        mediaType: entry.mediaType,
        digest: entry.digest,
        size: entry.size,
        ...(entry.platform ? { platform: entry.platform } : {}),
        annotations: {
          [REF_NAME]: w.ociName,
          ...(entry.annotations?.[SPARSE_ABSENT] ? { [SPARSE_ABSENT]: entry.annotations[SPARSE_ABSENT] } : {}),
        },
      })),
    }
    const indexText = JSON.stringify(index, null, 2) + '\n'
    await writeFileAtomic(join(ociDir, 'index.json'), indexText)

    // ---- images.tsv: role, ociName, digest, targetRepo, tag ----
    const tsv =
      found.map(({ w, entry }) => [w.tsvRole ?? w.role, w.ociName, entry.digest, w.target, w.tag].map(tsvField).join('\t')).join('\n') +
      (found.length ? '\n' : '')
    await writeFileAtomic(join(opts.outDir, 'images.tsv'), tsv)

    // ---- payload.json ----
    const images: PayloadImage[] = []
    // Signatures and the parts of sparse indexes are not content images.
    const signatures = found
      .filter(({ w }) => w.tsvRole === 'signature')
      .map(({ w, entry }) => ({ repo: w.target, tag: w.tag, digest: entry.digest }))
    for (const { w, entry } of found) {
      if (w.tsvRole === 'signature' || w.tsvRole === 'part') continue
      const size = (await cache!.walk(entry)).reduce((s, d) => s + d.size, 0)
      images.push({
        role: w.role,
        ociName: w.ociName,
        sourceRef: w.ref,
        digest: entry.digest,
        size,
        platforms: await imagePlatforms(cache!, entry),
        target: w.target,
        ...(w.tag ? { tag: w.tag } : {}),
        ...(w.kind ? { kind: w.kind } : {}),
        ...(w.origin ? { origin: w.origin } : {}),
      })
    }
    for (const w of missing) {
      if (w.tsvRole === 'signature') continue
      images.push({
        role: w.role,
        ociName: w.ociName,
        sourceRef: w.ref,
        digest: w.digest ?? '',
        size: 0,
        platforms: [],
        target: w.target,
        ...(w.tag ? { tag: w.tag } : {}),
        missing: true,
      })
    }
    const missingNames = missing.map((m) => `${m.role} ${m.ociName} (${m.ref})`)
    const releaseSigs = await placeReleaseSignatures(opts.cacheDir, opts.outDir, opts.ocMirror?.releaseSignatures ?? [])
    const payloadJson =
      JSON.stringify(
        {
          schema: 'mirror-appliance/payload/v1',
          images,
          ...(signatures.length ? { signatures } : {}),
          ...(releaseSigs.entries.length ? { releaseSignatures: releaseSigs.entries } : {}),
          missing: missingNames,
          blobs: blobs.size,
          bytes: total,
        },
        null,
        2,
      ) + '\n'
    await writeFileAtomic(join(opts.outDir, 'payload.json'), payloadJson)

    // ---- SHA256SUMS: blobs are named by their sha256 (checked above) ----
    const sums: string[] = []
    const small: [string, string][] = [
      ['images.tsv', tsv],
      ['oci/index.json', indexText],
      ['oci/oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' })],
      ['payload.json', payloadJson],
    ]
    for (const [p, text] of small) sums.push(`${digestHex(sha256Bytes(text))}  ${p}`)
    sums.push(...releaseSigs.sums)
    // One plan of the registry tree (it reads every manifest of the payload):
    // its links when the payload carries them, its figures for the data volume in any flavor.
    const tree = await planPayloadTree(opts.outDir)
    if (opts.registryTree) sums.push(...(await writeTreeLinks(opts.outDir, tree)))
    for (const d of [...blobs.values()].sort((a, b) => (a.digest < b.digest ? -1 : 1)))
      sums.push(`${digestHex(d.digest)}  oci/blobs/sha256/${digestHex(d.digest)}`)
    await writeFileAtomic(join(opts.outDir, 'SHA256SUMS'), sums.join('\n') + '\n')

    return { images, missing: missingNames, bytes: total, linked, copied, volume: treeVolumeFigures(total, tree) }
  }
  return cache ? withDirLock(opts.cacheDir, run, { signal: opts.signal }) : run()
}

/**
 * Copy a blob and check it; refuse to place a blob whose content does not
 * match. The copy reads the source once and hashes the bytes it writes
 * (copy.ts), so what is checked is what lands on the media.
 */
async function copyVerified(cache: OciLayout, d: Descriptor, dst: string, signal?: AbortSignal): Promise<void> {
  await withTemp(dst, async (tmp) => {
    const h = await copyHashing(cache.blobPath(d.digest), tmp, signal)
    if (h.digest !== d.digest)
      throw new VerifyError([
        { image: '(payload)', digest: d.digest, problem: `content does not match its digest (sha256 is ${h.digest})` },
      ])
  })
}

async function copyFast(src: string, dst: string): Promise<void> {
  await withTemp(dst, (tmp) => copyFile(src, tmp, constants.COPYFILE_FICLONE))
}

/**
 * The registry storage tree's link files (tree: the plan of the payload at
 * outDir), under outDir/registry-tree (written beside and renamed into place,
 * replacing an earlier one). Only links: a link names its blob, which first
 * boot finds in oci/blobs (lib.sh place_registry_tree). Returns their
 * SHA256SUMS lines.
 */
async function writeTreeLinks(outDir: string, tree: PayloadTree): Promise<string[]> {
  const dest = join(outDir, PAYLOAD_TREE_DIR)
  await withTemp(
    dest,
    async (tmp) => {
      // the catalog's root even when no image is content: the registry starts on a tree all the same
      await mkdir(join(tmp, TREE_V2, 'repositories'), { recursive: true })
      const made = new Set<string>()
      for (const [path, digest] of tree.links) {
        const parent = dirname(join(tmp, path))
        if (!made.has(parent)) await mkdir(parent, { recursive: true })
        made.add(parent)
        await writeFile(join(tmp, path), digest, { mode: 0o644 })
      }
    },
    { replace: true },
  )
  return tree.links.map(([path, digest]) => `${digestHex(sha256Bytes(digest))}  ${PAYLOAD_TREE_DIR}/${path}`)
}

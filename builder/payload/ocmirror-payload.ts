// oc-mirror content in the payload: every image of the archives under the
// repository and tag oc-mirror gave it, as rows of images.tsv that first boot
// pushes (templates/host/firstboot, step push-content), and the
// release signatures as files.
//
// images.tsv roles for this content (columns: role, payload ref, digest,
// repository, tag):
//   content    pushed to REPO:TAG with every platform (skopeo copy --all)
//   part       a child of a sparse index, pushed by digest (REPO@DIGEST)
//              before the index that names it
//   sparse     an index of which oc-mirror's platforms filter left children
//              out: pushed alone (skopeo copy --multi-arch index-only) after
//              its parts, so it keeps the digest clusters pull it by
//   signature  a cosign signature (tag sha256-<hex>.sig), pushed to REPO:TAG
//              like content so that clusters verifying signatures find it;
//              never counted or listed as a content image
// Release signatures go to release-signatures/<tag>-sha256-<hex> (oc-mirror's
// own file names, working-dir/signatures/), listed in SHA256SUMS and in
// payload.json `releaseSignatures`; on the host they are at
// /var/lib/mirror-appliance/payload/release-signatures/.

import { mkdir, readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { writeFileAtomic } from '../atomic.js'
import { FailureError } from '../errors.js'
import { digestHex, sha256Bytes } from './digest.js'
import { RELEASE_SIGNATURES_DIR, type ContentKind } from './names.js'
import { importArchivesDetailed } from './import.js'
import {
  readImportRecords,
  releaseSignatureDir,
  type ImportRecord,
  type OcMirrorImage,
  type OcMirrorRun,
  type OcMirrorSkip,
  type ReleaseSignature,
} from './ocmirror.js'
import { REF_NAME, sparseAbsent, type Descriptor, type ImageIndex, type OciLayout } from './oci.js'

/**
 * Whether the registry the appliance runs takes an index some children of
 * which are absent. Not distribution 2.8 nor Quay 3.15, the stack's (README,
 * "Multi-architecture images and their digests"): the build refuses sparse
 * indexes (commands/build-stages.ts) while this is false. First boot pushes
 * them (rows `part` and `sparse`) when it is true.
 */
export const SPARSE_INDEXES_PUSHABLE = false

export interface OcMirrorContent {
  images: OcMirrorImage[]
  releaseSignatures: Omit<ReleaseSignature, 'data'>[]
}

export type OcMirrorTsvRole = 'content' | 'part' | 'sparse' | 'signature'

export interface OcMirrorRow {
  tsvRole: OcMirrorTsvRole
  /** Its name in the payload layout */
  ociName: string
  repo: string
  /** undefined for parts, pushed by digest */
  tag?: string
  /** The cache entry (for a part, the child's descriptor) */
  entry: Descriptor
  image: OcMirrorImage
  contentKind?: ContentKind
  origin?: string
}

const payloadName = (prefix: string, repo: string, tag: string) => `${prefix}/${repo}:${tag}`

/**
 * The rows for oc-mirror images, in push order: images by name, a sparse
 * index right after its parts, signatures last. Images the cache no longer
 * holds (by name and digest) are returned as missing.
 */
export async function ocMirrorRows(
  cache: OciLayout | undefined,
  entries: Descriptor[],
  content: OcMirrorContent,
): Promise<{ rows: OcMirrorRow[]; missing: OcMirrorImage[] }> {
  const rows: OcMirrorRow[] = []
  const signatures: OcMirrorRow[] = []
  const missing: OcMirrorImage[] = []
  for (const image of [...content.images].sort((a, b) => (a.ociName < b.ociName ? -1 : 1))) {
    const entry = entries.find((e) => e.annotations?.[REF_NAME] === image.ociName && e.digest === image.digest)
    if (!entry || !cache) {
      missing.push(image)
      continue
    }
    const kind = { ...(image.contentKind ? { contentKind: image.contentKind } : {}), ...(image.origin ? { origin: image.origin } : {}) }
    if (image.kind === 'signature') {
      signatures.push({
        tsvRole: 'signature',
        ociName: payloadName('signature', image.repo, image.tag),
        repo: image.repo,
        tag: image.tag,
        entry,
        image,
      })
      continue
    }
    const absent = sparseAbsent(entry)
    if (absent.size) {
      const index = await cache.readJson<ImageIndex>(entry)
      for (const child of index.manifests.filter((m) => !absent.has(m.digest))) {
        rows.push({
          tsvRole: 'part',
          ociName: payloadName('part', image.repo, `sha256-${digestHex(child.digest)}`),
          repo: image.repo,
          entry: child,
          image,
          ...kind,
        })
      }
    }
    rows.push({
      // A sparse index is pushed as the index alone, after its parts.
      tsvRole: absent.size ? 'sparse' : 'content',
      ociName: payloadName('content', image.repo, image.tag),
      repo: image.repo,
      tag: image.tag,
      entry,
      image,
      ...kind,
    })
  }
  // The same child in two sparse indexes of one repository is pushed once.
  const seen = new Set<string>()
  const unique = rows.filter((r) => r.tsvRole !== 'part' || (!seen.has(r.ociName) && seen.add(r.ociName)))
  return { rows: [...unique, ...signatures], missing }
}

/**
 * Copy the release signatures the cache keeps into the payload; returns
 * their SHA256SUMS lines and payload.json entries.
 */
export async function placeReleaseSignatures(
  cacheDir: string,
  outDir: string,
  sigs: Omit<ReleaseSignature, 'data'>[],
): Promise<{ sums: string[]; entries: { file: string; tag: string; digest: string }[] }> {
  const sums: string[] = []
  const entries: { file: string; tag: string; digest: string }[] = []
  if (!sigs.length) return { sums, entries }
  await mkdir(join(outDir, RELEASE_SIGNATURES_DIR), { recursive: true })
  for (const s of [...sigs].sort((a, b) => (a.file < b.file ? -1 : 1))) {
    const src = join(releaseSignatureDir(cacheDir), s.file)
    const data = await readFile(src).catch(() => {
      throw new FailureError(
        `the release signature ${s.file} is not in the image cache (${src})`,
        'import the oc-mirror archives again: mirror-appliance images import DIR',
      )
    })
    const rel = `${RELEASE_SIGNATURES_DIR}/${s.file}`
    const dst = join(outDir, rel)
    await writeFileAtomic(dst, data, { mkdir: true })
    sums.push(`${digestHex(sha256Bytes(data))}  ${rel}`)
    entries.push({ file: rel, tag: s.tag, digest: s.digest })
  }
  return { sums, entries }
}

export interface OcMirrorForBuild {
  content: OcMirrorContent
  skipped: OcMirrorSkip[]
  runs: OcMirrorRun[]
  /** Archives named by the config that are gone and were never imported (only with allowMissing) */
  missing: string[]
}

/** An earlier import's record of the chunks at (or in) `path`. */
function recordedImport(records: ImportRecord[], path: string): ImportRecord | undefined {
  return [...records].reverse().find((r) => r.chunks.some((c) => c === path || dirname(c) === path))
}

/**
 * The oc-mirror archives a config names (content.ocMirrorArchives), for a
 * build: imported into the cache (what is there already is not copied
 * again), or, for an archive deleted after `images import`, what that import
 * recorded. `field(i, message)` makes the error for entry i.
 */
export async function ocMirrorForBuild(o: {
  cacheDir: string
  archives: string[]
  allowMissing: boolean
  field: (i: number, message: string) => Error
}): Promise<OcMirrorForBuild> {
  const out: OcMirrorForBuild = { content: { images: [], releaseSignatures: [] }, skipped: [], runs: [], missing: [] }
  if (!o.archives.length) return out
  const present: string[] = []
  const recorded: ImportRecord[] = []
  const records = await readImportRecords(o.cacheDir)
  for (const [i, p] of o.archives.entries()) {
    if (await stat(p).catch(() => null)) present.push(p)
    else {
      const r = recordedImport(records, p)
      if (r) {
        if (!recorded.includes(r)) recorded.push(r)
      } else if (o.allowMissing) out.missing.push(p)
      else
        throw o.field(
          i,
          `${p} does not exist, and the image cache ${o.cacheDir} holds no import of it; give the directory of the mirror_*.tar chunks, or import them first: mirror-appliance images import ${p} --cache ${o.cacheDir}`,
        )
    }
  }
  const images = new Map<string, OcMirrorImage>()
  const sigs = new Map<string, Omit<ReleaseSignature, 'data'>>()
  for (const r of recorded) {
    for (const img of r.images) images.set(img.ociName, img)
    for (const s of r.releaseSignatures) sigs.set(s.file, s)
    out.skipped.push(...r.skipped)
    out.runs.push(...r.runs)
  }
  if (present.length) {
    const r = await importArchivesDetailed({ cacheDir: o.cacheDir, paths: present, format: 'oc-mirror' })
    for (const img of r.ocMirror?.images ?? []) images.set(img.ociName, img)
    for (const { data: _, ...s } of r.ocMirror?.releaseSignatures ?? []) sigs.set(s.file, s)
    out.skipped.push(...(r.ocMirror?.skipped ?? []))
    out.runs.push(...(r.ocMirror?.runs ?? []))
  }
  out.content = { images: [...images.values()], releaseSignatures: [...sigs.values()] }
  return out
}

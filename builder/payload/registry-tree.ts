// The distribution flavor's content ready to serve with no push: the
// payload's content images laid out as the registry's own filesystem storage
// tree. First boot moves the tree onto the data volume (a rename on one
// filesystem) and starts the registry: boot-to-ready does not grow with the
// content, and each blob is stored once (hard-linked from the payload's OCI
// layout when both are on one filesystem).
//
// The layout is distribution's, read from distribution/distribution at commit
// 0d6b721dc3ce (the pin of ocmirror.ts), registry/storage/:
//  - paths.go pathFor: under <root>/docker/registry/v2,
//      blobs/sha256/<first 2 hex>/<hex>/data               (blobDataPathSpec)
//      repositories/<name>/_layers/sha256/<hex>/link         (layerLinkPathSpec)
//      repositories/<name>/_manifests/revisions/sha256/<hex>/link
//      repositories/<name>/_manifests/tags/<tag>/current/link
//      repositories/<name>/_manifests/tags/<tag>/index/sha256/<hex>/link
//  - blobstore.go link(): a link file holds exactly the digest string
//    "sha256:<hex>", no newline (readlink parses it with digest.Parse).
//  - registry.go: Blobs() reads a repository's blobs (configs, layers)
//    through its _layers links only; Manifests() reads manifests through its
//    _manifests/revisions links only. So a config gets a _layers link and a
//    manifest a revision link, as a push makes them (linkedblobstore.go
//    linkBlob): an index's children are pushed as manifests, so each child is
//    a revision of the repository too.
//  - manifeststore.go Get() only unmarshals what a revision link names; the
//    check that an index's children are present (manifestlisthandler.go
//    verifyManifest) runs on Put only. An index some children of which are
//    absent on purpose (a sparse index, oci.ts SPARSE_ABSENT) is therefore
//    served as laid, by the same program that refuses it by push.
//  - tagstore.go Tag(): tags/<tag>/index/<alg>/<hex>/link (the tag's history)
//    then tags/<tag>/current/link; All() lists the directories under tags/.
//  - catalog.go handleRepository: v3 finds a repository by its _manifests
//    directory; Debian's docker-registry (2.8.2, tag v2.8.2 of the same
//    repository) by its _layers directory. Every repository here has both.
// The filesystem driver (driver/filesystem/driver.go) makes directories 0777
// and files 0666 under the umask; we write 0755 and 0644.
//
// Which images: the rows of images.tsv that first boot would push
// (ocmirror-payload.ts roles content, sparse, part, signature), under the same
// repository and tag; a row without a tag gets sha256-<hex>, as first boot
// gives it. Stack images are not content: they go to containers-storage.

import { constants } from 'node:fs'
import { copyFile, link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { withTemp } from '../atomic.js'
import { FailureError } from '../errors.js'
import { copyHashing } from './copy.js'
import { digestHex, isDigest } from './digest.js'
import { isIndexType, isManifestType, OciLayout, REF_NAME, type Descriptor } from './oci.js'

/** Where the registry's data starts under its rootdirectory (paths.go storagePathRoot + storagePathVersion). */
export const TREE_V2 = 'docker/registry/v2'

/** images.tsv roles whose images the registry serves (the rows first boot pushes). */
export const TREE_ROLES = ['content', 'sparse', 'part', 'signature'] as const
export type TreeRole = (typeof TREE_ROLES)[number]

/**
 * distribution's repository path grammar (reference/regexp.go, v2.8.2:
 * nameComponentRegexp joined by "/"; total length at most 255,
 * NameTotalLengthMax). A component starts with [a-z0-9]: no "." or ".."
 * can reach a path.
 */
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/
/** reference/regexp.go TagRegexp */
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/

/** One image the registry is to serve. */
export interface TreeImage {
  /** The images.tsv it comes from and its line (1-based), for errors */
  file: string
  line: number
  role: TreeRole
  ociName: string
  repo: string
  /** Absent for parts of a sparse index: served by digest only */
  tag?: string
  /** The payload's index.json entry (its annotations say which children are absent) */
  root: Descriptor
}

/** What one repository holds: digests of its layer links, revisions and tags. */
export interface RepoPlan {
  layers: Set<string>
  revisions: Set<string>
  /** tag -> digest */
  tags: Map<string, string>
}

export interface TreePlan {
  repos: Map<string, RepoPlan>
  /** Every blob the tree holds, once */
  blobs: Map<string, Descriptor>
}

const foreign = (d: Descriptor) => /nondistributable|foreign/.test(d.mediaType)

/**
 * The images of a payload that the registry serves: images.tsv rows of the
 * roles first boot pushes, each with its entry in the payload's
 * oci/index.json. Refuses rows it cannot place (a bad repository or tag, an
 * entry the layout lacks), naming the images.tsv line.
 */
export async function readTreeImages(payloadDir: string, layout: OciLayout): Promise<TreeImage[]> {
  const tsvPath = join(payloadDir, 'images.tsv')
  const text = await readFile(tsvPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new FailureError(
      `${tsvPath}: ${e.code === 'ENOENT' ? 'missing' : e.message}`,
      'assemble the payload first (mirror-appliance build)',
    )
  })
  const byName = new Map((await layout.entries()).map((e) => [e.annotations?.[REF_NAME] ?? '', e]))
  const images: TreeImage[] = []
  for (const [i, row] of text.split('\n').entries()) {
    if (!row) continue
    const where = `${tsvPath} line ${i + 1}`
    const cols = row.split('\t')
    if (cols.length !== 5)
      throw new FailureError(`${where}: expected 5 tab-separated fields (role, name, digest, repository, tag), found ${cols.length}`)
    const [role, ociName, digest, repo, tagField] = cols as [string, string, string, string, string]
    if (!(TREE_ROLES as readonly string[]).includes(role)) continue
    if (!isDigest(digest)) throw new FailureError(`${where}: ${JSON.stringify(digest)} is not a sha256 digest`)
    if (!REPO_RE.test(repo) || repo.length > 255)
      throw new FailureError(
        `${where}: ${JSON.stringify(repo)} is not a repository name the registry takes (lower-case path components of letters, digits and . _ -)`,
      )
    const entry = byName.get(ociName)
    if (!entry) throw new FailureError(`${where}: the payload's oci/index.json has no image named ${ociName}`, 'assemble the payload again')
    if (entry.digest !== digest)
      throw new FailureError(
        `${where}: ${ociName} is ${entry.digest} in oci/index.json, images.tsv says ${digest}`,
        'assemble the payload again',
      )
    let tag: string | undefined
    if (role !== 'part') {
      // first boot's rule: an image listed by digest only is tagged sha256-<hex>
      tag = tagField === '-' ? `sha256-${digestHex(digest)}` : tagField
      if (!TAG_RE.test(tag)) throw new FailureError(`${where}: ${JSON.stringify(tag)} is not a tag the registry takes`)
    }
    images.push({ file: tsvPath, line: i + 1, role: role as TreeRole, ociName, repo, ...(tag ? { tag } : {}), root: entry })
  }
  return images
}

/**
 * Which links each repository gets and which blobs the tree holds. Reads
 * manifests and indexes from the layout, never layers. A tag given two
 * different images is refused: the registry keeps one image per tag.
 */
export async function planRegistryTree(layout: OciLayout, images: TreeImage[]): Promise<TreePlan> {
  const repos = new Map<string, RepoPlan>()
  const blobs = new Map<string, Descriptor>()
  const tagLine = new Map<string, TreeImage>()
  for (const img of images) {
    let repo = repos.get(img.repo)
    if (!repo) repos.set(img.repo, (repo = { layers: new Set(), revisions: new Set(), tags: new Map() }))
    const reached = await layout.walk(img.root).catch((e: Error) => {
      throw new FailureError(
        `${img.file} line ${img.line}: cannot read the manifests of ${img.ociName}: ${e.message}`,
        'assemble the payload again',
      )
    })
    for (const d of reached) {
      const isManifest = isIndexType(d.mediaType) || isManifestType(d.mediaType)
      if (!isManifest && foreign(d) && !(await layout.hasBlob(d.digest))) continue // never distributed: clients fetch it from its urls
      blobs.set(d.digest, d)
      if (isManifest) repo.revisions.add(d.digest)
      else repo.layers.add(d.digest)
    }
    if (img.tag) {
      const key = `${img.repo}:${img.tag}`
      const had = tagLine.get(key)
      if (had && had.root.digest !== img.root.digest)
        throw new FailureError(
          `${img.file} lines ${had.line} and ${img.line} both tag ${key}: ${had.root.digest} and ${img.root.digest}`,
          'assemble the payload again',
        )
      tagLine.set(key, img)
      repo.tags.set(img.tag, img.root.digest)
    }
  }
  return { repos, blobs }
}

/** Path of a blob's data under the tree root (paths.go blobDataPathSpec). */
export function blobDataPath(digest: string): string {
  const hex = digestHex(digest)
  return `${TREE_V2}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`
}

/**
 * Every link file of the tree: [path under the tree root, digest it holds],
 * sorted by path. Pure: the layout of paths.go in one place.
 */
export function treeLinks(plan: TreePlan): [string, string][] {
  const out: [string, string][] = []
  for (const [name, repo] of plan.repos) {
    const base = `${TREE_V2}/repositories/${name}`
    for (const d of repo.layers) out.push([`${base}/_layers/sha256/${digestHex(d)}/link`, d])
    for (const d of repo.revisions) out.push([`${base}/_manifests/revisions/sha256/${digestHex(d)}/link`, d])
    for (const [tag, d] of repo.tags) {
      out.push([`${base}/_manifests/tags/${tag}/current/link`, d])
      out.push([`${base}/_manifests/tags/${tag}/index/sha256/${digestHex(d)}/link`, d])
    }
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
}

/** A payload's tree before it is written: the plan, its link files and how many directories it makes. */
export interface PayloadTree {
  layout: OciLayout
  plan: TreePlan
  links: [string, string][]
  /** Directories of the tree, the root excluded */
  dirs: number
  /** Bytes of the distinct blobs */
  bytes: number
}

/** Plan the tree of an assembled payload (reads images.tsv and manifests; writes nothing). */
export async function planPayloadTree(payloadDir: string): Promise<PayloadTree> {
  const layout = await OciLayout.open(join(payloadDir, 'oci'), { create: false })
  const plan = await planRegistryTree(layout, await readTreeImages(payloadDir, layout))
  const links = treeLinks(plan)
  const dirs = new Set<string>()
  const addParents = (p: string) => {
    for (let d = dirname(p); d !== '.' && !dirs.has(d); d = dirname(d)) dirs.add(d)
  }
  addParents(`${TREE_V2}/repositories/x`)
  for (const [p] of links) addParents(p)
  for (const d of plan.blobs.keys()) addParents(blobDataPath(d))
  return { layout, plan, links, dirs: dirs.size, bytes: [...plan.blobs.values()].reduce((n, d) => n + d.size, 0) }
}

export interface RegistryTreeOptions {
  /** An assembled payload: images.tsv and oci/ (assemble.ts) */
  payloadDir: string
  /** The registry's rootdirectory to create (replaced whole if it exists) */
  treeDir: string
  /** false: never hard-link (reflink, else copy), for a tree that will be changed apart from the payload */
  link?: boolean
  onProgress?: (p: { blobs: number; totalBlobs: number; bytes: number; totalBytes: number }) => void
  signal?: AbortSignal
}

export interface RegistryTreeResult {
  /** Repositories in the catalog, sorted */
  repositories: string[]
  /** repo:tag of every tag, sorted */
  tags: string[]
  blobs: number
  /** Bytes of the distinct blobs */
  bytes: number
  /** Link files written */
  links: number
  /** Directories created (for the data volume's size: each costs an inode, on ext4 a block) */
  dirs: number
  linked: number
  reflinked: number
  copied: number
}

/**
 * Lay the registry storage tree for a payload at treeDir: built in a temp
 * directory beside it and renamed into place, so treeDir is whole or
 * untouched. Blobs are hard links to the payload's (same filesystem), else
 * reflinks, else copies checked against their digest while written.
 */
export async function writeRegistryTree(opts: RegistryTreeOptions): Promise<RegistryTreeResult> {
  const { layout, plan, links, bytes } = await planPayloadTree(opts.payloadDir)

  const parent = dirname(opts.treeDir)
  await mkdir(parent, { recursive: true })
  return withTemp(
    opts.treeDir,
    async (tmp) => {
      const dirs = new DirMaker(tmp)
      await dirs.make(`${TREE_V2}/repositories`) // an empty catalog is a tree too
      const placed = await placeBlobs(layout, plan, tmp, dirs, opts)
      await inPool(links, 32, async ([path, digest]) => {
        opts.signal?.throwIfAborted()
        await dirs.make(dirname(path))
        await writeFile(join(tmp, path), digest, { mode: 0o644, flag: 'wx' })
      })
      return {
        repositories: [...plan.repos.keys()].sort(),
        tags: [...plan.repos].flatMap(([name, r]) => [...r.tags.keys()].map((t) => `${name}:${t}`)).sort(),
        blobs: plan.blobs.size,
        bytes,
        links: links.length,
        dirs: dirs.count,
        ...placed,
      }
    },
    { replace: true },
  )
}

/** mkdir -p under a root, counting the directories it made (each once). */
class DirMaker {
  private readonly made = new Set<string>()
  count = 0
  constructor(private readonly root: string) {}
  async make(rel: string): Promise<void> {
    const missing: string[] = []
    for (let d = rel; d !== '.' && d !== '' && !this.made.has(d); d = dirname(d)) missing.push(d)
    if (!missing.length) return
    await mkdir(join(this.root, missing[0]!), { recursive: true, mode: 0o755 })
    for (const d of missing) {
      if (this.made.has(d)) continue // another caller made it meanwhile
      this.made.add(d)
      this.count++
    }
  }
}

/**
 * Put every blob's data file in place: hard link, else reflink, else
 * verified copy. The first blob decides; links and reflinks (metadata only)
 * then run 16 at a time, copies one after another (each keeps the disk busy
 * by itself, copy.ts).
 */
async function placeBlobs(layout: OciLayout, plan: TreePlan, root: string, dirs: DirMaker, opts: RegistryTreeOptions) {
  // an object, so that the closure's changes are seen after it (and by TypeScript)
  const state: { mode: 'link' | 'reflink' | 'copy' } = { mode: opts.link === false ? 'reflink' : 'link' }
  const count = { linked: 0, reflinked: 0, copied: 0 }
  let bytes = 0
  let n = 0
  const totalBytes = [...plan.blobs.values()].reduce((s, d) => s + d.size, 0)
  const place = async (d: Descriptor) => {
    opts.signal?.throwIfAborted()
    const src = layout.blobPath(d.digest)
    const st = await stat(src).catch(() => null)
    if (!st?.isFile()) throw new FailureError(`the payload lacks blob ${d.digest} (${src})`, 'assemble the payload again')
    if (st.size !== d.size)
      throw new FailureError(`payload blob ${src} is ${st.size} bytes, its descriptor says ${d.size}`, 'assemble the payload again')
    const rel = blobDataPath(d.digest)
    await dirs.make(dirname(rel))
    const dst = join(root, rel)
    if (state.mode === 'link') {
      try {
        await link(src, dst)
        count.linked++
      } catch (e) {
        if (!cannotLink(e)) throw e
        state.mode = 'reflink'
      }
    }
    if (state.mode === 'reflink') {
      try {
        // FICLONE_FORCE: a reflink or nothing; the payload's blob was checked when assembled
        await copyFile(src, dst, constants.COPYFILE_FICLONE_FORCE)
        count.reflinked++
      } catch {
        await unlink(dst).catch(() => {})
        state.mode = 'copy'
      }
    }
    if (state.mode === 'copy') {
      await copyChecked(src, dst, d.digest, opts.signal)
      count.copied++
    }
    bytes += d.size
    opts.onProgress?.({ blobs: ++n, totalBlobs: plan.blobs.size, bytes, totalBytes })
  }
  const [first, ...rest] = plan.blobs.values()
  if (first) await place(first)
  await inPool(rest, state.mode === 'copy' ? 1 : 16, place)
  return count
}

/** Errors after which a hard link will not work for any blob: another filesystem, no links allowed there. */
function cannotLink(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code
  return code === 'EXDEV' || code === 'EPERM' || code === 'EMLINK' || code === 'ENOTSUP' || code === 'EOPNOTSUPP'
}

/** Copy and hash what is written (copy.ts); a copy that does not match its digest is not kept. */
async function copyChecked(src: string, dst: string, digest: string, signal?: AbortSignal): Promise<void> {
  try {
    const h = await copyHashing(src, dst, signal)
    if (h.digest !== digest)
      throw new FailureError(
        `payload blob ${src} does not match its digest ${digest} (sha256 is ${h.digest})`,
        'assemble the payload again',
      )
  } catch (e) {
    await unlink(dst).catch(() => {})
    throw e
  }
}

/**
 * Run fn over items, at most `limit` at a time (many small files: keep the
 * disk queue busy). After a failure no new item starts, and every running one
 * ends before the first error is thrown: the caller may then remove the
 * directory they write into.
 */
async function inPool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let failed = false
  const worker = async () => {
    while (!failed && next < items.length) {
      try {
        await fn(items[next++]!)
      } catch (e) {
        failed = true
        throw e
      }
    }
  }
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker))
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failure) throw failure.reason
}

// The distribution flavor's content ready to serve with no push: the plan of
// the payload's content images laid out as the registry's own filesystem
// storage tree. The build writes only the tree's link files into the payload
// (assemble.ts writeTreeLinks); first boot (templates/host/lib.sh
// place_registry_tree) hard-links each blob a link names from the payload's
// OCI layout into the tree, on the data volume, and renames it into the
// registry's storage directory: boot-to-ready does not grow with the content,
// and each blob is stored once. Nothing here writes: the plan, the paths and
// what they cost.
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

import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { FailureError } from '../errors.js'
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

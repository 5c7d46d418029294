// Generates oc-mirror v2 archives the way oc-mirror writes them, for the
// import tests. Followed from the source, openshift/oc-mirror at commit
// 855b64a3c9c03634bcab6210b641274772050cda:
//  - the local cache is a distribution filesystem storage tree
//    (distribution/distribution registry/storage/paths.go, commit
//    0d6b721dc3ce): pushing a blob writes blobs/sha256/<2>/<hex>/data and
//    repositories/<repo>/_layers/sha256/<hex>/link, a manifest is a blob
//    linked at _manifests/revisions/sha256/<hex>/link, a tag writes
//    _manifests/tags/<tag>/current/link and tags/<tag>/index/sha256/<hex>/link;
//    a link holds "sha256:<hex>"; an interrupted upload leaves
//    _uploads/<uuid>/{data,startedat,hashstates/sha256/<offset>}. The
//    platforms filter pushes an index and only the children it keeps
//    (cli/executor.go runs the cache with indexes.platforms: none).
//  - archive/archive.go BuildArchive: every file under
//    docker/registry/v2/repositories (filepath.Walk: lexical per directory),
//    then for each image of the run its blobs (image-blob-gatherer.go: manifest
//    or index and kept children, configs, layers, the cosign signature tagged
//    sha256-<hex>.sig) minus those in the newest working-dir/.history file
//    and those added already, then working-dir/ (walked likewise), then the
//    image set config as isc_<RFC3339>; afterwards history.Append writes
//    working-dir/.history/.history-<RFC3339> = old history ∪ added blobs.
//  - archive/permissive_adder.go: chunk mirror_%06d.tar, a new chunk when a
//    file would make the current one exceed archiveSize, a file larger than
//    archiveSize alone in an "exception chunk" taking the next number while
//    the current chunk stays open; adder_common.go: tar.FileInfoHeader, so
//    regular files only, Go's writer (USTAR, the prefix split of
//    splitUSTARPath, PAX when a name does not fit).
//  - release/signature.go: working-dir/signatures/<tag>-sha256-<hex>;
//    release/local_stored_collector.go: working-dir/release-images/<repo>/<tag>/
//    (an OCI layout of the release image); config/pin_catalogs.go:
//    working-dir/isc_pinned_<time>.yaml and disc_pinned_<time>.yaml.
// Blob and manifest bytes come from oci-fixtures.ts.

import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildImage, buildIndex, sha, tarHeader, type Blob, type BuiltImage } from './oci-fixtures.js'

const REG = 'docker/registry/v2'
const MTIME = 1717236000
const OWNER = 'mirror'

/** Go's archive/tar splitUSTARPath (writer.go). */
function splitUSTARPath(name: string): [string, string] | undefined {
  let length = name.length
  if (length <= 100 || !/^[\x00-\x7f]*$/.test(name)) return undefined
  if (length > 156) length = 156
  else if (name[length - 1] === '/') length--
  const i = name.slice(0, length).lastIndexOf('/')
  const nlen = name.length - i - 1
  if (i <= 0 || nlen > 100 || nlen === 0 || i > 155) return undefined
  return [name.slice(0, i), name.slice(i + 1)]
}

function withChecksum(h: Buffer): Buffer {
  h.write('        ', 148)
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  return h
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512)

/** One regular file as Go's tar.Writer writes a FileInfoHeader. */
function goTarEntry(name: string, body: Buffer): Buffer {
  const opts = { mtime: MTIME, owner: OWNER }
  if (name.length <= 100) return Buffer.concat([tarHeader({ name, body }, body.length, opts), body, pad(body.length)])
  const split = splitUSTARPath(name)
  if (split) {
    const h = tarHeader({ name: split[1] }, body.length, opts)
    h.write(split[0], 345)
    return Buffer.concat([withChecksum(h), body, pad(body.length)])
  }
  // PAX: a header "dir/PaxHeaders.0/file" with the path record, then the
  // real header with the name cut to its field.
  const rec = (k: string, v: string) => {
    const tail = ` ${k}=${v}\n`
    let n = tail.length + 1
    while (`${n}${tail}`.length !== n) n = `${n}${tail}`.length
    return `${n}${tail}`
  }
  const paxBody = Buffer.from(rec('path', name))
  const slash = name.lastIndexOf('/')
  const paxName = `${name.slice(0, slash + 1)}PaxHeaders.0/${name.slice(slash + 1)}`.slice(0, 100)
  const ph = tarHeader({ name: paxName, type: 'x' }, paxBody.length, opts)
  const h = tarHeader({ name: name.slice(0, 100) }, body.length, opts)
  return Buffer.concat([ph, paxBody, pad(paxBody.length), h, body, pad(body.length)])
}

/** filepath.Walk order: lexical per directory, i.e. by path segments. */
function walkOrder(a: string, b: string): number {
  const x = a.split('/')
  const y = b.split('/')
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1
  return x.length - y.length
}

const link = (digest: string) => Buffer.from(digest)
const hexOf = (digest: string) => digest.slice(7)

/** A cosign signature manifest (simple signing payload) for `digest`, pushed as sha256-<hex>.sig. */
export function cosignSignature(repo: string, digest: string): { manifest: Blob; config: Blob; layer: Blob } {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': `registry.example.com/${repo}` },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  )
  const layer: Blob = {
    mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
    digest: sha(payload),
    size: payload.length,
    data: payload,
  }
  const cfgData = Buffer.from(
    JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] } }),
  )
  const config: Blob = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(cfgData), size: cfgData.length, data: cfgData }
  const m = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: [
        {
          mediaType: layer.mediaType,
          digest: layer.digest,
          size: layer.size,
          annotations: { 'dev.cosignproject.cosign/signature': Buffer.from(`sig of ${digest}`).toString('base64') },
        },
      ],
    }),
  )
  return { manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(m), size: m.length, data: m }, config, layer }
}

export interface ImageRef {
  repo: string
  tag: string
  digest: string
}

export interface RunOutput {
  dir: string
  chunks: string[]
  /** Names in each chunk, in order */
  entries: string[][]
  /** Blobs this run's archive carries */
  shipped: Set<string>
  iscTime: string
  historyTime: string
}

/**
 * oc-mirror's state on the connected side: its cache registry (shared by
 * every workspace of the user) and one workspace's working-dir.
 */
export class OcMirrorWorkspace {
  /** path under the cache root -> bytes */
  readonly cache = new Map<string, Buffer>()
  /** path under working-dir/ -> bytes, .history excluded */
  readonly workingDir = new Map<string, Buffer>()
  /** history files, oldest first */
  readonly history: { time: string; blobs: Set<string> }[] = []
  private readonly blobData = new Map<string, Buffer>()

  private putBlob(repo: string, b: { digest: string; data: Buffer }, layerLink = true): void {
    this.blobData.set(b.digest, b.data)
    this.cache.set(`${REG}/blobs/sha256/${hexOf(b.digest).slice(0, 2)}/${hexOf(b.digest)}/data`, b.data)
    if (layerLink) this.cache.set(`${REG}/repositories/${repo}/_layers/sha256/${hexOf(b.digest)}/link`, link(b.digest))
  }

  private putManifest(repo: string, m: Blob): void {
    this.putBlob(repo, m, false)
    this.cache.set(`${REG}/repositories/${repo}/_manifests/revisions/sha256/${hexOf(m.digest)}/link`, link(m.digest))
  }

  private putImage(repo: string, img: BuiltImage): void {
    for (const l of img.layers) this.putBlob(repo, l)
    this.putBlob(repo, img.config)
    this.putManifest(repo, img.manifest)
  }

  private tag(repo: string, tag: string, digest: string): ImageRef {
    this.cache.set(`${REG}/repositories/${repo}/_manifests/tags/${tag}/current/link`, link(digest))
    this.cache.set(`${REG}/repositories/${repo}/_manifests/tags/${tag}/index/sha256/${hexOf(digest)}/link`, link(digest))
    return { repo, tag, digest }
  }

  /** Push a single-platform image and tag it. */
  pushImage(repo: string, tag: string, img: BuiltImage): ImageRef {
    this.putImage(repo, img)
    return this.tag(repo, tag, img.manifest.digest)
  }

  /** Push an image pinned by digest only: oc-mirror tags it sha256-<hex> (prepareTag). */
  pushByDigest(repo: string, img: BuiltImage): ImageRef {
    return this.pushImage(repo, `sha256-${hexOf(img.manifest.digest)}`, img)
  }

  /** Push an index with the children whose architecture `keep` allows (all by default). */
  pushIndex(repo: string, tag: string, children: BuiltImage[], keep: (arch: string) => boolean = () => true): ImageRef & { index: Blob } {
    const index = buildIndex(children)
    for (const c of children) {
      const arch = (JSON.parse(c.config.data.toString()) as { architecture: string }).architecture
      if (keep(arch)) this.putImage(repo, c)
    }
    this.putManifest(repo, index)
    return { ...this.tag(repo, tag, index.digest), index }
  }

  /** A cosign signature of `digest`, tagged sha256-<hex>.sig in the same repository. */
  sign(repo: string, digest: string): ImageRef {
    const s = cosignSignature(repo, digest)
    this.putBlob(repo, s.layer)
    this.putBlob(repo, s.config)
    this.putManifest(repo, s.manifest)
    return this.tag(repo, `sha256-${hexOf(digest)}.sig`, s.manifest.digest)
  }

  /** An upload the cache registry never finished. */
  leftoverUpload(repo: string, id: string): void {
    const base = `${REG}/repositories/${repo}/_uploads/${id}`
    this.cache.set(`${base}/data`, Buffer.from('partial upload'))
    this.cache.set(`${base}/startedat`, Buffer.from('2024-05-31T09:00:00Z'))
    this.cache.set(`${base}/hashstates/sha256/0`, Buffer.alloc(108, 1))
  }

  /** A release signature as release/signature.go stores it. */
  releaseSignature(tag: string, digest: string): Buffer {
    const data = Buffer.concat([Buffer.from([0xa3, 0x01]), createHash('sha256').update(`gpg signature of ${digest}`).digest()])
    this.workingDir.set(`signatures/${tag}-sha256-${hexOf(digest)}`, data)
    return data
  }

  /** working-dir/release-images/<repo>/<tag>/: the OCI layout oc-mirror copies the release image into. */
  releaseLayout(repoBase: string, tag: string, img: BuiltImage): void {
    const base = `release-images/${repoBase}/${tag}`
    this.workingDir.set(`${base}/oci-layout`, Buffer.from('{"imageLayoutVersion":"1.0.0"}'))
    this.workingDir.set(
      `${base}/index.json`,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          manifests: [{ mediaType: img.manifest.mediaType, digest: img.manifest.digest, size: img.manifest.size }],
        }),
      ),
    )
    for (const b of [img.manifest, img.config, ...img.layers]) this.workingDir.set(`${base}/blobs/sha256/${hexOf(b.digest)}`, b.data)
  }

  private manifestOf(digest: string): {
    manifests?: { digest: string; platform?: { architecture: string } }[]
    config?: { digest: string }
    layers?: { digest: string }[]
  } {
    return JSON.parse(this.blobData.get(digest)!.toString()) as never
  }

  private hasRevision(repo: string, digest: string): boolean {
    return this.cache.has(`${REG}/repositories/${repo}/_manifests/revisions/sha256/${hexOf(digest)}/link`)
  }

  /** image-blob-gatherer.go GatherBlobs: the image's blobs, its kept children's, and their cosign signatures'. */
  gather(ref: ImageRef): Set<string> {
    const out = new Set<string>()
    const single = (digest: string) => {
      out.add(digest)
      const m = this.manifestOf(digest)
      for (const l of m.layers ?? []) out.add(l.digest)
      if (m.config) out.add(m.config.digest)
    }
    const signature = (digest: string) => {
      const tagLink = this.cache.get(`${REG}/repositories/${ref.repo}/_manifests/tags/sha256-${hexOf(digest)}.sig/current/link`)
      if (tagLink) single(tagLink.toString())
    }
    const doc = this.manifestOf(ref.digest)
    if (doc.manifests) {
      out.add(ref.digest)
      signature(ref.digest)
      for (const c of doc.manifests) {
        if (!this.hasRevision(ref.repo, c.digest)) continue // platform not mirrored
        single(c.digest)
        signature(c.digest)
      }
    } else {
      single(ref.digest)
      signature(ref.digest)
    }
    return out
  }

  /**
   * One mirror-to-disk run: the archive chunks in `dir`, as BuildArchive
   * writes them with archiveSize (in bytes here, GiB in oc-mirror), then
   * the history file.
   */
  async mirrorToDisk(o: {
    dir: string
    images: ImageRef[]
    iscTime: string
    historyTime: string
    archiveSize: number
    isc?: string
  }): Promise<RunOutput> {
    const files: [string, Buffer][] = []
    // 1 - the whole repositories tree of the cache
    for (const p of [...this.cache.keys()].filter((k) => k.startsWith(`${REG}/repositories/`)).sort(walkOrder))
      files.push([p, this.cache.get(p)!])
    // 2 - this run's blobs that no earlier run shipped
    const old = this.history.at(-1)?.blobs ?? new Set<string>()
    const added = new Set<string>()
    for (const img of o.images) {
      for (const d of [...this.gather(img)].sort()) {
        if (old.has(d) || added.has(d)) continue
        added.add(d)
        files.push([`${REG}/blobs/sha256/${hexOf(d).slice(0, 2)}/${hexOf(d)}/data`, this.blobData.get(d)!])
      }
    }
    // 3 - working-dir, with the history files of the runs before
    const wd = new Map(this.workingDir)
    for (const h of this.history) wd.set(`.history/.history-${h.time}`, Buffer.from([...h.blobs].join('\n') + '\n'))
    wd.set(`isc_pinned_${o.iscTime}.yaml`, Buffer.from(o.isc ?? ISC))
    wd.set(
      `disc_pinned_${o.iscTime}.yaml`,
      Buffer.from((o.isc ?? ISC).replace('kind: ImageSetConfiguration', 'kind: DeleteImageSetConfiguration').replace('mirror:', 'delete:')),
    )
    // the cache registry's log: chatty, so the last chunk holds only working-dir/ and isc_*
    wd.set('logs/registry.log', Buffer.from(`time="${o.iscTime}" level=info msg="listening on [::]:55000"\n`.repeat(60)))
    for (const p of [...wd.keys()].sort(walkOrder)) files.push([`working-dir/${p}`, wd.get(p)!])
    // 4 - the image set config
    files.push([`isc_${o.iscTime}`, Buffer.from(o.isc ?? ISC)])
    const out = await writeChunks(o.dir, files, o.archiveSize)
    // 5 - history.Append
    this.history.push({ time: o.historyTime, blobs: new Set([...old, ...added]) })
    return { ...out, dir: o.dir, shipped: added, iscTime: o.iscTime, historyTime: o.historyTime }
  }
}

const ISC = `kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
archiveSize: 1
mirror:
  platform:
    channels:
      - name: stable-4.15
        minVersion: 4.15.0
        maxVersion: 4.15.1
    architectures:
      - amd64
  operators:
    - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.15
      packages:
        - name: kube-rbac-proxy-operator
  additionalImages:
    - name: registry.access.redhat.com/ubi9/ubi:latest
    - name: registry.access.redhat.com/ubi9/ubi-minimal:latest
`

/** permissiveAdder: chunks of at most maxSize bytes of file data, oversized files alone in an exception chunk. */
async function writeChunks(dir: string, files: [string, Buffer][], maxSize: number): Promise<{ chunks: string[]; entries: string[][] }> {
  await mkdir(dir, { recursive: true })
  const chunks = new Map<number, { parts: Buffer[]; names: string[] }>()
  let current = 1
  let id = 1
  let size = 0
  chunks.set(current, { parts: [], names: [] })
  for (const [name, body] of files) {
    if (body.length > maxSize) {
      id++
      chunks.set(id, { parts: [goTarEntry(name, body)], names: [name] })
      continue
    }
    if (body.length + size > maxSize) {
      id++
      current = id
      size = 0
      chunks.set(current, { parts: [], names: [] })
    }
    chunks.get(current)!.parts.push(goTarEntry(name, body))
    chunks.get(current)!.names.push(name)
    size += body.length
  }
  const paths: string[] = []
  const entries: string[][] = []
  for (const n of [...chunks.keys()].sort((a, b) => a - b)) {
    const p = join(dir, `mirror_${String(n).padStart(6, '0')}.tar`)
    await writeFile(p, Buffer.concat([...chunks.get(n)!.parts, Buffer.alloc(1024)]))
    paths.push(p)
    entries.push(chunks.get(n)!.names)
  }
  return { chunks: paths, entries }
}

/** Text gzip cannot shrink much: a hash chain. */
function noise(chars: number): string {
  let out = ''
  let h = 'seed'
  while (out.length < chars) out += h = createHash('sha256').update(h).digest('base64')
  return out.slice(0, chars)
}

/** What a scenario's import must give, by digest. */
export interface Expected {
  images: { repo: string; tag: string; digest: string; kind: 'image' | 'signature'; absent?: string[]; contentKind: string }[]
  skipped: { repo: string; tag: string; digest: string }[]
  releaseSignatures: { file: string; digest: string; data: Buffer }[]
}

export interface Scenario {
  run1: RunOutput
  run2: RunOutput
  expect1: Expected
  /** After run 1 and run 2 */
  expect2: Expected
  /** Blobs every image of run 2 needs (for payload checks) */
  images: Record<string, BuiltImage>
  /** A layer only run 1 shipped, which run 2's images need */
  sharedLayer: string
}

/**
 * Two runs of one workspace, in a cache that another config used before:
 *  run 1: a release (openshift/release-images), two components
 *  (openshift/release), a signed component (sha256-<hex>.sig), an operator
 *  bundle pinned by digest, a catalog, and ubi9/ubi:latest filtered to amd64
 *  (a sparse index); ubi8/ubi:8.9 is another config's (stale) and an upload
 *  was left unfinished;
 *  run 2 (incremental): a newer component sharing a layer with run 1's, a new
 *  image, and the catalog tag moved to a new digest.
 * Chunks are small: several per run, a layer in an exception chunk, and a
 * trailing chunk with only working-dir/ and isc_*.
 */
export async function ocMirrorScenario(base: string): Promise<Scenario> {
  const ws = new OcMirrorWorkspace()
  const baseLayer = { 'etc/os-release': 'ID=rhel\nVERSION_ID=9.4\n', 'usr/bin/sh': 'sh\n'.repeat(300) }
  const im = {
    release: buildImage({ layers: [baseLayer, { 'release-manifests/image-references': '{"kind":"ImageStream"}' }] }),
    cli: buildImage({ layers: [baseLayer, { 'usr/bin/oc': 'oc 4.15.0\n'.repeat(50) }] }),
    installer: buildImage({ layers: [baseLayer, { 'usr/bin/openshift-install': 'installer\n'.repeat(40) }] }),
    rbac: buildImage({ layers: [baseLayer, { 'usr/bin/kube-rbac-proxy': 'proxy\n' }] }),
    catalog: buildImage({ layers: [baseLayer, { 'configs/index.json': '{"schema":"olm.package","name":"a"}' }] }),
    ubiAmd: buildImage({ layers: [baseLayer, { arch: 'amd64\n' }], architecture: 'amd64' }),
    ubiArm: buildImage({ layers: [baseLayer, { arch: 'arm64\n' }], architecture: 'arm64' }),
    stale: buildImage({ layers: [{ 'etc/os-release': 'ID=rhel\nVERSION_ID=8.9\n' }] }),
    // a big layer, alone in an exception chunk
    big: buildImage({ layers: [baseLayer, { 'data/blob': noise(24000) }] }),
    cli2: buildImage({ layers: [baseLayer, { 'usr/bin/oc': 'oc 4.15.1\n'.repeat(50) }] }),
    minimal: buildImage({ layers: [{ 'etc/os-release': 'ID=rhel\nVARIANT=minimal\n' }] }),
    catalog2: buildImage({ layers: [baseLayer, { 'configs/index.json': '{"schema":"olm.package","name":"b"}' }] }),
  }
  // another ImageSetConfiguration's image, left in the shared cache
  const stale = ws.pushImage('ubi8/ubi', '8.9', im.stale)
  const release = ws.pushImage('openshift/release-images', '4.15.0-x86_64', im.release)
  const cli = ws.pushImage('openshift/release', '4.15.0-x86_64-cli', im.cli)
  const installer = ws.pushImage('openshift/release', '4.15.0-x86_64-installer', im.installer)
  const cliSig = ws.sign('openshift/release', cli.digest)
  const rbac = ws.pushByDigest('openshift4/ose-kube-rbac-proxy', im.rbac)
  const catalog = ws.pushImage('redhat/redhat-operator-index', 'v4.15', im.catalog)
  const ubi = ws.pushIndex('ubi9/ubi', 'latest', [im.ubiAmd, im.ubiArm], (a) => a === 'amd64')
  const big = ws.pushImage('openshift/release', '4.15.0-x86_64-big', im.big)
  ws.leftoverUpload('openshift/release', 'd1b5c8a2-7e0f-4a2b-9c61-3f6f1f0a9b11')
  ws.releaseLayout('ocp-release', '4.15.0-x86_64', im.release)
  const sig1 = ws.releaseSignature('4.15.0-x86_64', release.digest)
  const run1Images = [release, cli, installer, big, rbac, catalog, ubi]
  const run1 = await ws.mirrorToDisk({
    dir: join(base, 'run1'),
    images: run1Images,
    iscTime: '2024-06-01T10:00:00Z',
    historyTime: '2024-06-01T10:07:13Z',
    archiveSize: 6000,
  })

  const cli2 = ws.pushImage('openshift/release', '4.15.1-x86_64-cli', im.cli2)
  const minimal = ws.pushImage('ubi9/ubi-minimal', 'latest', im.minimal)
  const catalog2 = ws.pushImage('redhat/redhat-operator-index', 'v4.15', im.catalog2)
  const run2 = await ws.mirrorToDisk({
    dir: join(base, 'run2'),
    images: [...run1Images.filter((i) => i !== catalog), catalog2, cli2, minimal],
    iscTime: '2024-06-08T10:00:00Z',
    historyTime: '2024-06-08T10:04:51Z',
    archiveSize: 6000,
  })

  const img = (r: ImageRef, contentKind: string, extra: Partial<Expected['images'][number]> = {}) => ({
    repo: r.repo,
    tag: r.tag,
    digest: r.digest,
    kind: 'image' as const,
    contentKind,
    ...extra,
  })
  const expect1: Expected = {
    images: [
      img(release, 'release'),
      img(cli, 'release-component'),
      img(installer, 'release-component'),
      img(big, 'release-component'),
      img(cliSig, 'release-component', { kind: 'signature' }),
      img(rbac, 'operator'),
      img(catalog, 'operator-catalog'),
      img(ubi, 'generic', { absent: [im.ubiArm.manifest.digest] }),
    ],
    skipped: [{ repo: stale.repo, tag: stale.tag, digest: stale.digest }],
    releaseSignatures: [{ file: `4.15.0-x86_64-sha256-${hexOf(release.digest)}`, digest: release.digest, data: sig1 }],
  }
  const expect2: Expected = {
    images: [
      ...expect1.images.filter((i) => i.repo !== catalog.repo),
      img(catalog2, 'operator-catalog'),
      img(cli2, 'release-component'),
      img(minimal, 'generic'),
    ],
    skipped: expect1.skipped,
    releaseSignatures: expect1.releaseSignatures,
  }
  return { run1, run2, expect1, expect2, images: im, sharedLayer: im.cli.layers[0]!.digest }
}

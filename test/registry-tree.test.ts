// The distribution flavor's content laid out as the registry's own storage
// tree (builder/payload/registry-tree.ts), the way the product lays it: the
// build writes the tree's link files into the payload (assemblePayload with
// registryTree), the kickstart copies the payload onto the data volume
// (cp -a) and first boot's place_registry_tree (templates/host/lib.sh)
// hard-links the blobs into the tree and renames it into the registry's
// storage (test/helpers/registry-tree-host.ts). Proven with Debian's real
// docker-registry (distribution 2.8) started on that storage, read-write, and
// the real skopeo through the product's wrapper (builder/tools/skopeo.ts):
// every image pulls by digest and by tag, the catalog and tag lists are
// complete, and a later push into the same repository works and reuses the
// laid blobs. The payload holds images sharing layers, a multi-arch index
// under a tag, an image pinned by digest only, two tags of one image, a stack
// image (not content: not in the registry), and an oc-mirror content set
// (signatures, digest-only tags, a sparse index) imported from archives made
// as oc-mirror makes them (test/helpers/oc-mirror-fixture.ts).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { assemblePayload } from '../builder/payload/assemble.js'
import { importArchive, importArchivesDetailed } from '../builder/payload/import.js'
import { dataVolumeNeeds, TREE_FILE_BYTES } from '../builder/payload/data-volume.js'
import { OciLayout } from '../builder/payload/oci.js'
import { planPayloadTree, planRegistryTree, readTreeImages, treeLinks, TREE_V2, type TreeImage } from '../builder/payload/registry-tree.js'
import { skopeoCopy, skopeoInspectRaw } from '../builder/tools/skopeo.js'
import { ocMirrorScenario } from './helpers/oc-mirror-fixture.js'
import { buildImage, buildIndex, sampleImages, sha, writeLayout } from './helpers/oci-fixtures.js'
import { startRegistry } from './helpers/registry.js'
import { dataVolume, filesUnder, placeRegistryTree, runLib } from './helpers/registry-tree-host.js'

const haveTools = spawnSync('docker-registry', ['--version']).status === 0 && spawnSync('skopeo', ['--version']).status === 0

const work = await mkdtemp(join(tmpdir(), 'ma-regtree-'))
t.teardown(() => rm(work, { recursive: true, force: true }))

// ---- a payload: content images of our own and an oc-mirror set ----
const imgs = sampleImages()
const stackImage = buildImage({ layers: [{ 'bin/registry': 'registry\n'.repeat(100) }] })
const src = join(work, 'src')
await writeLayout(src, [
  { name: 'quay.io/example/app:1.0', root: imgs.app.manifest, images: [imgs.app] },
  { name: 'quay.io/example/app:latest', root: imgs.app.manifest, images: [imgs.app] },
  { name: 'quay.io/example/tool:2.0', root: imgs.tool.manifest, images: [imgs.tool] },
  { name: `content/example/pinned@${imgs.tool.manifest.digest}`, root: imgs.tool.manifest, images: [imgs.tool] },
  { name: 'quay.io/example/multi:4.16', root: imgs.multi, images: [imgs.amd, imgs.arm] },
  { name: 'stack/registry', root: stackImage.manifest, images: [stackImage] },
])
const cache = join(work, 'cache')
await importArchive({ cacheDir: cache, path: src })
const s = await ocMirrorScenario(join(work, 'archives'))
const ocm = (await importArchivesDetailed({ cacheDir: cache, paths: [s.run1.dir, s.run2.dir] })).ocMirror!
const payload = join(work, 'payload')
const assembled = await assemblePayload({
  cacheDir: cache,
  stack: [{ name: 'registry', ref: 'docker.io/library/registry:2.8.3', digest: stackImage.manifest.digest, ociName: 'stack/registry' }],
  content: [
    { ref: 'quay.io/example/app:1.0', target: 'example/app' },
    { ref: 'quay.io/example/app:latest', target: 'example/app' },
    { ref: 'quay.io/example/tool:2.0', target: 'example/tool' },
    { ref: `quay.io/example/tool@${imgs.tool.manifest.digest}`, target: 'example/pinned' },
    { ref: 'quay.io/example/multi:4.16', target: 'openshift/multi' },
  ],
  outDir: payload,
  ocMirror: { images: ocm.images, releaseSignatures: ocm.releaseSignatures },
  registryTree: true,
})

/** What the registry must serve: repo, tag, digest (and the children of indexes by digest). */
const expected: { repo: string; tag: string; digest: string; sparse?: boolean }[] = [
  { repo: 'example/app', tag: '1.0', digest: imgs.app.manifest.digest },
  { repo: 'example/app', tag: 'latest', digest: imgs.app.manifest.digest },
  { repo: 'example/tool', tag: '2.0', digest: imgs.tool.manifest.digest },
  { repo: 'example/pinned', tag: `sha256-${imgs.tool.manifest.digest.slice(7)}`, digest: imgs.tool.manifest.digest },
  { repo: 'openshift/multi', tag: '4.16', digest: imgs.multi.digest },
  ...s.expect2.images.map((i) => ({ repo: i.repo, tag: i.tag, digest: i.digest, ...(i.absent ? { sparse: true } : {}) })),
]
const byDigest: { repo: string; digest: string }[] = [
  { repo: 'openshift/multi', digest: imgs.amd.manifest.digest },
  { repo: 'openshift/multi', digest: imgs.arm.manifest.digest },
  { repo: 'ubi9/ubi', digest: s.images.ubiAmd!.manifest.digest },
]
const repos = [...new Set(expected.map((e) => e.repo))].sort()

/** The tree first boot laid, as the registry will read it: what it holds and what it cost. */
interface Laid {
  /** Repositories: directories under repositories/ holding _manifests (catalog.go), sorted */
  repositories: string[]
  /** repo:tag of every tag, sorted */
  tags: string[]
  /** Hex of every blob's data file */
  blobs: string[]
  /** Bytes of the data files */
  bytes: number
  /** Link files */
  links: number
  /** Directories, the storage directory itself excluded */
  dirs: number
}

function readLaid(storage: string): Laid {
  const v2 = join(storage, TREE_V2)
  const repositories: string[] = []
  const findRepos = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }))
      if (e.isDirectory() && e.name === '_manifests') repositories.push(relative(join(v2, 'repositories'), dir))
      else if (e.isDirectory() && !e.name.startsWith('_')) findRepos(join(dir, e.name))
  }
  findRepos(join(v2, 'repositories'))
  const tags = repositories.flatMap((r) => readdirSync(join(v2, 'repositories', r, '_manifests/tags')).map((tag) => `${r}:${tag}`))
  const blobs: string[] = []
  for (const xx of readdirSync(join(v2, 'blobs/sha256'))) for (const hex of readdirSync(join(v2, 'blobs/sha256', xx))) blobs.push(hex)
  const files = filesUnder(storage)
  let dirs = 0
  const countDirs = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }))
      if (e.isDirectory()) {
        dirs++
        countDirs(join(dir, e.name))
      }
  }
  countDirs(storage)
  return {
    repositories: repositories.sort(),
    tags: tags.sort(),
    blobs,
    bytes: files.filter((f) => f.endsWith('/data')).reduce((n, f) => n + statSync(f).size, 0),
    links: files.filter((f) => f.endsWith('/link')).length,
    dirs,
  }
}

/** A host's data volume with the payload on it and first boot's tree step run; throws when the step fails. */
async function laidHost(name: string): Promise<{ payload: string; storage: string; out: string; laid: Laid }> {
  const host = await dataVolume(payload, join(work, name))
  const r = placeRegistryTree(host.payload, host.storage)
  if (r.status !== 0) throw new Error(`place_registry_tree failed (${r.status}): ${r.out}`)
  return { ...host, out: r.out, laid: readLaid(host.storage) }
}

const host = await laidHost('data')
const tree = host.storage
const laid = host.laid

t.test('the tree: every blob once, hard-linked from the payload; links as distribution writes them', async (t) => {
  t.same(laid.repositories, repos, 'one repository per target, the stack image is not content')
  t.same(laid.tags, expected.map((e) => `${e.repo}:${e.tag}`).sort())
  t.match(
    host.out,
    new RegExp(`: ${laid.blobs.length} blob\\(s\\) hard-linked from the payload, nothing pushed`),
    'one filesystem: hard links only',
  )
  for (const hex of laid.blobs)
    t.equal(
      statSync(join(tree, TREE_V2, 'blobs/sha256', hex.slice(0, 2), hex, 'data')).ino,
      statSync(join(host.payload, 'oci/blobs/sha256', hex)).ino,
      `${hex.slice(0, 12)}: a hard link to the payload's blob`,
    )
  for (const xx of readdirSync(join(tree, TREE_V2, 'blobs/sha256')))
    for (const hex of readdirSync(join(tree, TREE_V2, 'blobs/sha256', xx))) t.equal(hex.slice(0, 2), xx)
  t.equal(laid.blobs.length, (await planPayloadTree(payload)).plan.blobs.size, 'each blob once')
  t.equal(new Set(laid.blobs).size, laid.blobs.length)
  const layer = imgs.app.layers[0]!.digest.slice(7) // shared by app, tool, amd, arm
  const a = statSync(join(tree, TREE_V2, 'blobs/sha256', layer.slice(0, 2), layer, 'data'))
  const b = statSync(join(host.payload, 'oci/blobs/sha256', layer))
  t.equal(a.ino, b.ino, 'the blob is the payload file itself: no second copy')
  t.equal(
    laid.bytes,
    [...new Set(laid.blobs)].reduce((n, h) => n + statSync(join(payload, 'oci/blobs/sha256', h)).size, 0),
  )

  const repo = join(tree, TREE_V2, 'repositories/openshift/multi')
  const link = (p: string) => readFileSync(join(repo, p), 'utf8')
  t.equal(link('_manifests/tags/4.16/current/link'), imgs.multi.digest, 'the tag names the index; a link is the digest, no newline')
  t.equal(link(`_manifests/tags/4.16/index/sha256/${imgs.multi.digest.slice(7)}/link`), imgs.multi.digest)
  for (const m of [imgs.multi, imgs.amd.manifest, imgs.arm.manifest])
    t.equal(link(`_manifests/revisions/sha256/${m.digest.slice(7)}/link`), m.digest, 'the index and each child are revisions')
  for (const c of [imgs.amd.config, imgs.arm.config, ...imgs.amd.layers])
    t.equal(link(`_layers/sha256/${c.digest.slice(7)}/link`), c.digest, 'configs and layers are layer links')
  t.notOk(existsSync(join(repo, `_layers/sha256/${imgs.amd.manifest.digest.slice(7)}`)), 'a manifest is not a layer link')
  t.notOk(existsSync(join(tree, TREE_V2, 'repositories/docker.io')), 'stack images stay out')
  const stackLayer = stackImage.layers[0]!.digest.slice(7)
  t.notOk(existsSync(join(tree, TREE_V2, 'blobs/sha256', stackLayer.slice(0, 2), stackLayer)), 'and so do their blobs')
  t.same(
    readdirSync(join(tree, TREE_V2, 'repositories/ubi9/ubi/_manifests/revisions/sha256')).sort(),
    [s.images.ubiAmd!.manifest.digest.slice(7), expected.find((e) => e.sparse)!.digest.slice(7)].sort(),
    'the sparse index and the child it keeps; not the one oc-mirror left out',
  )
  t.same(readdirSync(tree), ['docker'], 'the tree in place, no staging directory left')
  t.same(
    readdirSync(payload).filter((f) => f.includes('.tmp-') || f.includes('.old-')),
    [],
    'no temp dirs left in the payload',
  )
})

t.test('the plan says what the tree costs before it is written', async (t) => {
  const plan = await planPayloadTree(payload)
  t.equal(plan.links.length, laid.links, 'link files planned = link files laid')
  t.equal(plan.dirs, laid.dirs, 'directories counted ahead = directories made')
  t.equal(plan.bytes, laid.bytes)
  // the figures the build's data-volume check reads: assembly's, from the one plan it made
  const figures = assembled.volume
  const payloadJson = JSON.parse(await readFile(join(payload, 'payload.json'), 'utf8')) as { bytes: number }
  t.same(figures, { payloadBytes: payloadJson.bytes, contentBytes: laid.bytes, treeFiles: laid.links + laid.dirs })
  t.ok(figures.payloadBytes > figures.contentBytes, 'the stack image is in the payload, not in the registry')
  const d = dataVolumeNeeds({ flavor: 'distribution', ...figures })
  const q = dataVolumeNeeds({ flavor: 'quay', ...figures })
  t.equal(q.peakBytes - figures.payloadBytes, laid.bytes, 'Quay: the pushed copy comes on top of the payload')
  t.equal(
    d.peakBytes - figures.payloadBytes,
    (laid.links + laid.dirs) * TREE_FILE_BYTES,
    'distribution: only link files and directories come on top',
  )
})

t.test('treeLinks: the paths of paths.go, sorted', async (t) => {
  const d = (c: string) => `sha256:${c.repeat(64)}`
  const links = treeLinks({
    repos: new Map([['a/b', { layers: new Set([d('1')]), revisions: new Set([d('2')]), tags: new Map([['v1', d('2')]]) }]]),
    blobs: new Map(),
  })
  const r = `${TREE_V2}/repositories/a/b`
  t.same(links, [
    [`${r}/_layers/sha256/${'1'.repeat(64)}/link`, d('1')],
    [`${r}/_manifests/revisions/sha256/${'2'.repeat(64)}/link`, d('2')],
    [`${r}/_manifests/tags/v1/current/link`, d('2')],
    [`${r}/_manifests/tags/v1/index/sha256/${'2'.repeat(64)}/link`, d('2')],
  ])
})

/** Debian's docker-registry serving rootdirectory, read-write, stopped at teardown; log() is all it wrote (access log included). */
async function serve(t: Test, rootdirectory: string): Promise<{ host: string; log: () => string }> {
  const reg = await startRegistry({ rootdirectory, logLevel: 'info' })
  t.teardown(() => reg.stop())
  return { host: reg.host, log: reg.fullLog }
}

const raw = (ref: string) => skopeoInspectRaw({ ref: `docker://${ref}`, tlsVerify: false })
const getJson = async (url: string) => (await fetch(url)).json() as Promise<Record<string, unknown>>

t.test(
  'docker-registry serves the tree: by digest and tag, catalog, tag lists, a later push',
  { skip: !haveTools && 'needs docker-registry and skopeo' },
  async (t) => {
    // A data volume of its own, laid by first boot's step: the push below changes the storage it serves.
    const served = await laidHost('data-served')
    const storage = served.storage
    const { host, log } = await serve(t, storage)

    for (const e of expected) {
      t.equal(sha(await raw(`${host}/${e.repo}:${e.tag}`)), e.digest, `${e.repo}:${e.tag} by tag`)
      t.equal(sha(await raw(`${host}/${e.repo}@${e.digest}`)), e.digest, `${e.repo}@${e.digest.slice(0, 19)} by digest`)
    }
    for (const c of byDigest) t.equal(sha(await raw(`${host}/${c.repo}@${c.digest}`)), c.digest, `child ${c.repo}@${c.digest.slice(0, 19)}`)

    // every image pulled whole (layers and configs through the repository's links)
    await mkdir(join(work, 'pulled'))
    for (const e of expected) {
      const dir = join(work, 'pulled', `${e.repo.replaceAll('/', '_')}_${e.tag}`)
      // a sparse index cannot be copied --all: its absent platform is not there; this machine's platform is
      await skopeoCopy({
        src: `docker://${host}/${e.repo}:${e.tag}`,
        dest: `dir:${dir}`,
        srcTlsVerify: false,
        ...(e.sparse ? { overrideArch: 'amd64' } : { all: true }),
      })
      t.ok(existsSync(join(dir, 'manifest.json')), `${e.repo}:${e.tag} copied to a dir`)
    }
    const multiDir = join(work, 'pulled', 'openshift_multi_4.16')
    for (const b of [...imgs.arm.layers, imgs.arm.config])
      t.ok(readFileSync(join(multiDir, b.digest.slice(7))).equals(b.data), `arm64 blob ${b.digest.slice(0, 19)} same bytes`)

    const catalog = await getJson(`http://${host}/v2/_catalog?n=1000`)
    t.same(catalog.repositories, repos, '/v2/_catalog lists every repository')
    for (const r of repos) {
      const tags = await getJson(`http://${host}/v2/${r}/tags/list`)
      // 2.8 lists tags in directory order (sorted from v3 on, tagstore.go All)
      t.same(
        { ...tags, tags: [...(tags.tags as string[])].sort() },
        {
          name: r,
          tags: expected
            .filter((e) => e.repo === r)
            .map((e) => e.tag)
            .sort(),
        },
        `/v2/${r}/tags/list`,
      )
    }

    // A later push into the same repository: a new image on the same base layer.
    const next = buildImage({
      layers: [{ 'etc/os-release': 'ID=test\n', 'bin/hello': '#!/bin/sh\necho hello\n'.repeat(200) }, { 'app/three': 'three\n' }],
    })
    t.equal(next.layers[0]!.digest, imgs.app.layers[0]!.digest, 'shares the base layer with what the tree holds')
    const nextIndex = buildIndex([next])
    const layout = join(work, 'next')
    await writeLayout(layout, [
      { name: 'app:3.0', root: next.manifest, images: [next] },
      { name: 'multi:4.17', root: nextIndex, images: [next] },
    ])
    const mark = log().length
    await skopeoCopy({
      src: `oci:${layout}:app:3.0`,
      dest: `docker://${host}/example/app:3.0`,
      preserveDigests: true,
      destTlsVerify: false,
    })
    // The access log says what the push did: the laid base layer was found in
    // the repository (HEAD 200) and not uploaded; the new layer was.
    const pushLog = log().slice(mark)
    const uploaded = (d: string) => pushLog.includes(`digest=${encodeURIComponent(d)}`) || pushLog.includes(`digest=${d}`)
    t.match(
      pushLog,
      new RegExp(`"HEAD /v2/example/app/blobs/${next.layers[0]!.digest} HTTP/1\\.1" 200`),
      'the base layer is found in the repository',
    )
    t.notOk(uploaded(next.layers[0]!.digest), 'and not uploaded again')
    t.ok(uploaded(next.layers[1]!.digest), 'the new layer is uploaded')
    await skopeoCopy({
      src: `oci:${layout}:multi:4.17`,
      dest: `docker://${host}/openshift/multi:4.17`,
      all: true,
      preserveDigests: true,
      destTlsVerify: false,
    })
    t.equal(sha(await raw(`${host}/example/app:3.0`)), next.manifest.digest, 'the pushed image is served')
    t.equal(sha(await raw(`${host}/openshift/multi:4.17`)), nextIndex.digest, 'the pushed index is served')
    const tagsOf = async (r: string) => [...((await getJson(`http://${host}/v2/${r}/tags/list`)).tags as string[])].sort()
    t.same(await tagsOf('example/app'), ['1.0', '3.0', 'latest'])
    t.same(await tagsOf('openshift/multi'), ['4.16', '4.17'])
    t.equal(sha(await raw(`${host}/example/app:1.0`)), imgs.app.manifest.digest, 'what was laid is still served')
    const base = imgs.app.layers[0]!.digest.slice(7)
    t.equal(
      statSync(join(storage, TREE_V2, 'blobs/sha256', base.slice(0, 2), base, 'data')).ino,
      statSync(join(served.payload, 'oci/blobs/sha256', base)).ino,
      'the shared layer in the tree is still the payload file',
    )
  },
)

// /dev/shm is a tmpfs on Linux: another filesystem than the temp dir when that is on disk.
const shm = '/dev/shm'
const otherFs = existsSync(shm) && statSync(shm).dev !== statSync(work).dev
t.test(
  'another filesystem: blobs copied, same bytes; a damaged blob stops first boot before any tree is laid',
  { skip: !otherFs && `${shm} is not another filesystem here` },
  async (t) => {
    const other = await mkdtemp(join(shm, 'ma-regtree-'))
    t.teardown(() => rm(other, { recursive: true, force: true }))
    await mkdir(join(other, 'storage'))
    const r = placeRegistryTree(host.payload, join(other, 'storage'))
    t.equal(r.status, 0, r.out)
    t.match(r.out, /blob\(s\) copied \(the payload is on another filesystem\)/)
    const copied = readLaid(join(other, 'storage'))
    t.same(copied.blobs.sort(), [...laid.blobs].sort(), 'every blob copied')
    const layer = imgs.tool.layers[1]!
    t.ok(
      readFileSync(join(other, 'storage', TREE_V2, 'blobs/sha256', layer.digest.slice(7, 9), layer.digest.slice(7), 'data')).equals(
        layer.data,
      ),
    )

    // A payload with one blob damaged (same size): first boot's payload check
    // (lib.sh verify_payload, the real sha256sum) refuses it, naming the blob,
    // and first boot runs that check before it lays the tree.
    const bad = await dataVolume(payload, join(work, 'data-bad'))
    const victim = join(bad.payload, 'oci/blobs/sha256', layer.digest.slice(7))
    const bytes = await readFile(victim)
    bytes[0] = bytes[0]! ^ 0xff
    await unlink(victim)
    await writeFile(victim, bytes)
    const check = runLib('verify_payload', bad.payload)
    t.equal(check.status, 1, check.out)
    t.match(check.out, new RegExp(`oci/blobs/sha256/${layer.digest.slice(7)}: FAILED`))
    const firstboot = readFileSync(new URL('../templates/host/firstboot', import.meta.url), 'utf8')
    t.match(firstboot, /^PREPARE_STEPS=\([^)]*\bverify-payload\b/m, 'first boot checks the payload first')
    t.match(firstboot, /PREPARE_STEPS\+=\(place-content\)/, 'and lays the tree after')
    t.same(readdirSync(bad.storage), [], 'no tree laid')
  },
)

t.test('without images.tsv: refused', async (t) => {
  const empty = join(work, 'no-tsv')
  await mkdir(join(empty, 'oci'), { recursive: true })
  await cp(join(payload, 'oci'), join(empty, 'oci'), { recursive: true })
  await t.rejects(planPayloadTree(empty), {
    name: 'FailureError',
    message: /images\.tsv: missing/,
  })
})

t.test('a missing blob is refused by first boot, naming it; no tree laid', async (t) => {
  const bad = await dataVolume(payload, join(work, 'data-missing'))
  const gone = imgs.arm.layers[1]!.digest
  await unlink(join(bad.payload, 'oci/blobs/sha256', gone.slice(7)))
  const r = placeRegistryTree(bad.payload, bad.storage)
  t.equal(r.status, 1, r.out)
  t.match(r.out, new RegExp(`the payload lacks blob ${gone}, which its registry tree names`))
  t.notOk(existsSync(join(bad.storage, 'docker')), 'the registry does not get a tree with a blob missing')
})

t.test('images.tsv rows the registry cannot take are refused, naming the line', async (t) => {
  const layout = await OciLayout.open(join(payload, 'oci'), { create: false })
  const tsv = await readFile(join(payload, 'images.tsv'), 'utf8')
  const rows = tsv.trimEnd().split('\n')
  const app = rows.findIndex((r) => r.startsWith('content\tcontent/example/app:1.0\t'))
  const edit = async (name: string, fn: (cols: string[]) => string[]) => {
    const dir = join(work, name)
    await cp(payload, dir, { recursive: true })
    const out = rows.map((r, i) => (i === app ? fn(r.split('\t')).join('\t') : r))
    await writeFile(join(dir, 'images.tsv'), out.join('\n') + '\n')
    return dir
  }
  const cases: [string, (c: string[]) => string[], RegExp][] = [
    [
      'bad-repo',
      (c) => [c[0]!, c[1]!, c[2]!, '../../etc', c[4]!],
      /line \d+: "\.\.\/\.\.\/etc" is not a repository name the registry takes/,
    ],
    ['upper-repo', (c) => [c[0]!, c[1]!, c[2]!, 'Example/App', c[4]!], /"Example\/App" is not a repository name/],
    ['bad-tag', (c) => [c[0]!, c[1]!, c[2]!, c[3]!, '.hidden'], /"\.hidden" is not a tag the registry takes/],
    ['no-entry', (c) => [c[0]!, 'content/nowhere:1', c[2]!, c[3]!, c[4]!], /oci\/index\.json has no image named content\/nowhere:1/],
    [
      'other-digest',
      (c) => [c[0]!, c[1]!, imgs.tool.manifest.digest, c[3]!, c[4]!],
      /content\/example\/app:1\.0 is sha256:[a-f0-9]{64} in oci\/index\.json, images\.tsv says/,
    ],
    ['short', (c) => c.slice(0, 3), /expected 5 tab-separated fields/],
    [
      'tag-twice',
      (c) => [c[0]!, 'content/example/tool:2.0', imgs.tool.manifest.digest, 'example/app', 'latest'],
      / lines \d+ and \d+ both tag example\/app:latest: sha256:[a-f0-9]{64} and sha256:[a-f0-9]{64}/,
    ],
  ]
  for (const [name, fn, re] of cases) {
    const dir = await edit(name, fn)
    // the plan the build makes before it writes the tree's links (assemble.ts writeTreeLinks)
    await t.rejects(planPayloadTree(dir), { name: 'FailureError', message: new RegExp(`images\\.tsv.*${re.source}`) }, name)
  }
  // the plan alone, for a row set with a sparse part: revisions only, no tag
  const images: TreeImage[] = (await readTreeImages(payload, layout)).filter((i) => i.role === 'part')
  const plan = await planRegistryTree(layout, images)
  for (const [, r] of plan.repos) t.same([...r.tags.keys()], [], 'a part has no tag')
})

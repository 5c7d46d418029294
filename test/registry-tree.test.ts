// The distribution flavor's content laid out at build time as the registry's
// own storage tree (builder/payload/registry-tree.ts), proven with Debian's
// real docker-registry (distribution 2.8) started on that tree, read-write,
// and the real skopeo through the product's wrapper (builder/tools/skopeo.ts):
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
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { assemblePayload } from '../builder/payload/assemble.js'
import { importArchive, importArchivesDetailed } from '../builder/payload/import.js'
import { dataVolumeNeeds, payloadVolumeFigures, TREE_FILE_BYTES } from '../builder/payload/data-volume.js'
import { OciLayout } from '../builder/payload/oci.js'
import {
  planPayloadTree,
  planRegistryTree,
  readTreeImages,
  treeLinks,
  TREE_V2,
  writeRegistryTree,
  type TreeImage,
} from '../builder/payload/registry-tree.js'
import { skopeoCopy, skopeoInspectRaw } from '../builder/tools/skopeo.js'
import { ocMirrorScenario } from './helpers/oc-mirror-fixture.js'
import { buildImage, buildIndex, sampleImages, sha, writeLayout } from './helpers/oci-fixtures.js'
import { startRegistry } from './helpers/registry.js'

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
await assemblePayload({
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

const tree = join(work, 'tree')
const result = await writeRegistryTree({ payloadDir: payload, treeDir: tree })

t.test('the tree: every blob once, hard-linked from the payload; links as distribution writes them', async (t) => {
  t.same(result.repositories, repos, 'one repository per target, the stack image is not content')
  t.same(result.tags, expected.map((e) => `${e.repo}:${e.tag}`).sort())
  t.ok(result.linked === result.blobs && result.copied === 0 && result.reflinked === 0, 'one filesystem: hard links only')
  const data: string[] = []
  for (const xx of readdirSync(join(tree, TREE_V2, 'blobs/sha256')))
    for (const hex of readdirSync(join(tree, TREE_V2, 'blobs/sha256', xx))) {
      t.equal(hex.slice(0, 2), xx)
      data.push(hex)
    }
  t.equal(data.length, result.blobs, 'each blob once')
  t.equal(new Set(data).size, data.length)
  const layer = imgs.app.layers[0]!.digest.slice(7) // shared by app, tool, amd, arm
  const a = statSync(join(tree, TREE_V2, 'blobs/sha256', layer.slice(0, 2), layer, 'data'))
  const b = statSync(join(payload, 'oci/blobs/sha256', layer))
  t.equal(a.ino, b.ino, 'the blob is the payload file itself: no second copy')
  t.equal(
    result.bytes,
    [...new Set(data)].reduce((n, h) => n + statSync(join(payload, 'oci/blobs/sha256', h)).size, 0),
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
  t.same(
    readdirSync(work).filter((f) => f.includes('.tmp-') || f.includes('.old-')),
    [],
    'no temp dirs left',
  )
})

t.test('the plan says what the tree costs before it is written', async (t) => {
  const plan = await planPayloadTree(payload)
  t.equal(plan.links.length, result.links)
  t.equal(plan.dirs, result.dirs, 'directories counted ahead = directories made')
  t.equal(plan.bytes, result.bytes)
  const figures = await payloadVolumeFigures(payload)
  const payloadJson = JSON.parse(await readFile(join(payload, 'payload.json'), 'utf8')) as { bytes: number }
  t.same(figures, { payloadBytes: payloadJson.bytes, contentBytes: result.bytes, treeFiles: result.links + result.dirs })
  t.ok(figures.payloadBytes > figures.contentBytes, 'the stack image is in the payload, not in the registry')
  const d = dataVolumeNeeds({ flavor: 'distribution', ...figures })
  const q = dataVolumeNeeds({ flavor: 'quay', ...figures })
  t.equal(q.peakBytes - figures.payloadBytes, result.bytes, 'Quay: the pushed copy comes on top of the payload')
  t.equal(
    d.peakBytes - figures.payloadBytes,
    (result.links + result.dirs) * TREE_FILE_BYTES,
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
    // First boot moves the tree onto the data volume: nothing in it names the path it was built at.
    const storage = join(work, 'data', 'registry', 'storage')
    await mkdir(join(work, 'data', 'registry'), { recursive: true })
    await rename(tree, storage)
    t.teardown(() => rename(storage, tree))
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
      statSync(join(payload, 'oci/blobs/sha256', base)).ino,
      'the shared layer in the tree is still the payload file',
    )
  },
)

// /dev/shm is a tmpfs on Linux: another filesystem than the temp dir when that is on disk.
const shm = '/dev/shm'
const otherFs = existsSync(shm) && statSync(shm).dev !== statSync(work).dev
t.test(
  'another filesystem: blobs copied and checked; a damaged blob leaves nothing behind',
  { skip: !otherFs && `${shm} is not another filesystem here` },
  async (t) => {
    const other = await mkdtemp(join(shm, 'ma-regtree-'))
    t.teardown(() => rm(other, { recursive: true, force: true }))
    const r = await writeRegistryTree({ payloadDir: payload, treeDir: join(other, 'tree') })
    t.equal(r.linked, 0)
    t.equal(r.reflinked + r.copied, r.blobs, 'every blob copied (or reflinked)')
    const layer = imgs.tool.layers[1]!
    t.ok(
      readFileSync(join(other, 'tree', TREE_V2, 'blobs/sha256', layer.digest.slice(7, 9), layer.digest.slice(7), 'data')).equals(
        layer.data,
      ),
    )

    // A copy of the payload with one blob damaged (same size): refused, and the old tree stays as it was.
    const bad = join(work, 'payload-bad')
    await cp(payload, bad, { recursive: true })
    const victim = join(bad, 'oci/blobs/sha256', layer.digest.slice(7))
    const bytes = await readFile(victim)
    bytes[0] = bytes[0]! ^ 0xff
    await unlink(victim)
    await writeFile(victim, bytes)
    const before = await readdir(join(other, 'tree', TREE_V2, 'repositories'))
    await t.rejects(writeRegistryTree({ payloadDir: bad, treeDir: join(other, 'tree') }), {
      name: 'FailureError',
      message: new RegExp(`payload blob .* does not match its digest ${layer.digest}`),
    })
    t.same(await readdir(join(other, 'tree', TREE_V2, 'repositories')), before, 'the earlier tree is untouched')
    t.same(
      (await readdir(other)).filter((f) => f !== 'tree'),
      [],
      'no temp dir left',
    )
    await t.rejects(writeRegistryTree({ payloadDir: bad, treeDir: join(other, 'fresh') }), { name: 'FailureError' })
    t.notOk(existsSync(join(other, 'fresh')), 'no tree at all after a failure')
  },
)

t.test('link: false makes files of its own (reflinks where the filesystem has them, else checked copies)', async (t) => {
  const r = await writeRegistryTree({ payloadDir: payload, treeDir: join(work, 'tree-own'), link: false })
  t.equal(r.linked, 0)
  t.equal(r.reflinked + r.copied, r.blobs)
  const layer = imgs.app.layers[1]!.digest.slice(7)
  const own = join(work, 'tree-own', TREE_V2, 'blobs/sha256', layer.slice(0, 2), layer, 'data')
  t.not(statSync(own).ino, statSync(join(payload, 'oci/blobs/sha256', layer)).ino, 'not the payload file')
  t.ok(readFileSync(own).equals(imgs.app.layers[1]!.data))
})

t.test('stopped (Ctrl-C) or without images.tsv: refused, nothing written', async (t) => {
  const ac = new AbortController()
  let seen = 0
  await t.rejects(
    writeRegistryTree({
      payloadDir: payload,
      treeDir: join(work, 'tree-stopped'),
      signal: ac.signal,
      onProgress: () => ++seen === 3 && ac.abort(),
    }),
    { name: 'AbortError' },
  )
  t.notOk(existsSync(join(work, 'tree-stopped')))
  t.same(
    readdirSync(work).filter((f) => f.includes('.tmp-')),
    [],
    'the temp dir is gone',
  )
  const empty = join(work, 'no-tsv')
  await mkdir(join(empty, 'oci'), { recursive: true })
  await cp(join(payload, 'oci'), join(empty, 'oci'), { recursive: true })
  await t.rejects(writeRegistryTree({ payloadDir: empty, treeDir: join(empty, 'tree') }), {
    name: 'FailureError',
    message: /images\.tsv: missing/,
  })
})

t.test('a missing blob is refused, naming it; nothing written', async (t) => {
  const bad = join(work, 'payload-missing')
  await cp(payload, bad, { recursive: true })
  const gone = imgs.arm.layers[1]!.digest
  await unlink(join(bad, 'oci/blobs/sha256', gone.slice(7)))
  await t.rejects(writeRegistryTree({ payloadDir: bad, treeDir: join(work, 'tree-missing') }), {
    name: 'FailureError',
    message: new RegExp(`the payload lacks blob ${gone}`),
  })
  t.notOk(existsSync(join(work, 'tree-missing')))
  t.same(
    readdirSync(work).filter((f) => f.includes('.tmp-')),
    [],
  )
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
    await t.rejects(
      writeRegistryTree({ payloadDir: dir, treeDir: join(dir, 'tree') }),
      { name: 'FailureError', message: new RegExp(`images\\.tsv.*${re.source}`) },
      name,
    )
    t.notOk(existsSync(join(dir, 'tree')), `${name}: nothing written`)
  }
  // the plan alone, for a row set with a sparse part: revisions only, no tag
  const images: TreeImage[] = (await readTreeImages(payload, layout)).filter((i) => i.role === 'part')
  const plan = await planRegistryTree(layout, images)
  for (const [, r] of plan.repos) t.same([...r.tags.keys()], [], 'a part has no tag')
})

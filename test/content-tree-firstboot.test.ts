// Issue 21 point 5 wired end to end, short of booting: the distribution
// flavor's payload carries the registry storage tree's link files only (no
// second copy of any blob), its SHA256SUMS covers them and verifies with the
// real sha256sum; first boot's tree step (lib.sh place_registry_tree, run by
// bash on a payload copied with cp -a as the kickstart copies it) links the
// payload's blobs into that tree and renames it into the registry's storage
// directory; Debian's docker-registry started on that directory serves every
// image, pulled whole by digest with the real skopeo. A second run changes
// nothing; a staging directory an interrupted run left is laid again; a
// payload on another filesystem gets its blobs copied.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { assemblePayload, type AssembleOptions } from '../builder/payload/assemble.js'
import { importArchive } from '../builder/payload/import.js'
import { planPayloadTree, TREE_V2 } from '../builder/payload/registry-tree.js'
import { PAYLOAD_TREE_DIR } from '../builder/registry/layout.js'
import { skopeoCopy, skopeoInspectRaw } from '../builder/tools/skopeo.js'
import { buildImage, sampleImages, sha, writeLayout } from './helpers/oci-fixtures.js'
import { startRegistry } from './helpers/registry.js'
import { dataVolume as dataVolumeOf, filesUnder, placeRegistryTree } from './helpers/registry-tree-host.js'

const haveTools = spawnSync('docker-registry', ['--version']).status === 0 && spawnSync('skopeo', ['--version']).status === 0

const work = await mkdtemp(join(tmpdir(), 'ma-tree-fb-'))
t.teardown(() => rm(work, { recursive: true, force: true }))

// ---- a cache with content images sharing a layer, an index, and a stack image ----
const imgs = sampleImages()
const stackImage = buildImage({ layers: [{ 'bin/registry': 'registry\n'.repeat(100) }] })
const src = join(work, 'src')
await writeLayout(src, [
  { name: 'quay.io/example/app:1.0', root: imgs.app.manifest, images: [imgs.app] },
  { name: 'quay.io/example/tool:2.0', root: imgs.tool.manifest, images: [imgs.tool] },
  { name: `content/example/pinned@${imgs.tool.manifest.digest}`, root: imgs.tool.manifest, images: [imgs.tool] },
  { name: 'quay.io/example/multi:4.16', root: imgs.multi, images: [imgs.amd, imgs.arm] },
  { name: 'stack/registry', root: stackImage.manifest, images: [stackImage] },
])
const cache = join(work, 'cache')
await importArchive({ cacheDir: cache, path: src })
const assembleOpts = (outDir: string, registryTree: boolean): AssembleOptions => ({
  cacheDir: cache,
  stack: [{ name: 'registry', ref: 'docker.io/library/registry:2.8.3', digest: stackImage.manifest.digest, ociName: 'stack/registry' }],
  content: [
    { ref: 'quay.io/example/app:1.0', target: 'example/app' },
    { ref: 'quay.io/example/tool:2.0', target: 'example/tool' },
    { ref: `quay.io/example/tool@${imgs.tool.manifest.digest}`, target: 'example/pinned' },
    { ref: 'quay.io/example/multi:4.16', target: 'openshift/multi' },
  ],
  outDir,
  registryTree,
  link: false, // the media's payload is a copy of the cache, as on an ISO
})
const payload = join(work, 'payload')
await assemblePayload(assembleOpts(payload, true))

/** Every image the registry must serve: repository, tag, digest. */
const expected = [
  { repo: 'example/app', tag: '1.0', digest: imgs.app.manifest.digest },
  { repo: 'example/tool', tag: '2.0', digest: imgs.tool.manifest.digest },
  { repo: 'example/pinned', tag: `sha256-${imgs.tool.manifest.digest.slice(7)}`, digest: imgs.tool.manifest.digest },
  { repo: 'openshift/multi', tag: '4.16', digest: imgs.multi.digest },
]

t.test("the payload carries the tree's link files, no blob twice; SHA256SUMS covers them and verifies", async (t) => {
  const tree = join(payload, PAYLOAD_TREE_DIR)
  const files = filesUnder(tree)
    .map((f) => relative(tree, f))
    .sort()
  const plan = await planPayloadTree(payload)
  t.same(files, plan.links.map(([p]) => p).sort(), 'exactly the links of the plan')
  t.ok(files.length > 0)
  for (const f of files) {
    t.equal(f.split('/').pop(), 'link', `${f}: a link file`)
    t.match(readFileSync(join(tree, f), 'utf8'), /^sha256:[0-9a-f]{64}$/, 'holds a digest, no newline')
  }
  t.notOk(
    files.some((f) => f.includes('/blobs/')),
    'no blob data in the tree: the blobs are oci/blobs, once',
  )
  t.ok(existsSync(join(tree, TREE_V2, 'repositories')))
  const sums = readFileSync(join(payload, 'SHA256SUMS'), 'utf8').split('\n').filter(Boolean)
  t.equal(sums.filter((l) => l.includes(`  ${PAYLOAD_TREE_DIR}/`)).length, files.length, 'one SHA256SUMS line per link file')
  const check = spawnSync('sha256sum', ['--strict', '--quiet', '-c', 'SHA256SUMS'], { cwd: payload, encoding: 'utf8' })
  t.equal(check.status, 0, `sha256sum -c verifies the payload: ${check.stdout}${check.stderr}`)
  // a changed link is caught by the check the kickstart and first boot run
  const one = join(tree, files[0]!)
  const was = readFileSync(one, 'utf8')
  await writeFile(one, `sha256:${'0'.repeat(64)}`)
  t.not(spawnSync('sha256sum', ['--strict', '--quiet', '-c', 'SHA256SUMS'], { cwd: payload }).status, 0, 'a damaged link fails the check')
  await writeFile(one, was)
  const treeBytes = files.reduce((n, f) => n + statSync(join(tree, f)).size, 0)
  t.equal(treeBytes, files.length * 71, 'the tree adds 71 bytes a link, nothing more')
  t.notOk(
    readdirSync(payload).some((f) => f.includes('.tmp-')),
    'no temp dir left',
  )
})

t.test('a payload for a registry that is pushed to carries no tree', async (t) => {
  const other = join(work, 'payload-push')
  await assemblePayload(assembleOpts(other, false))
  t.notOk(existsSync(join(other, PAYLOAD_TREE_DIR)))
  t.notOk(readFileSync(join(other, 'SHA256SUMS'), 'utf8').includes(PAYLOAD_TREE_DIR))
})

/** The host: this payload on a data volume under work (helpers/registry-tree-host.ts). */
const dataVolume = (name: string) => dataVolumeOf(payload, join(work, name))

/** Debian's docker-registry on rootdirectory (plain HTTP on 127.0.0.1), stopped at teardown. */
async function serve(t: Test, rootdirectory: string): Promise<string> {
  const reg = await startRegistry({ rootdirectory })
  t.teardown(() => reg.stop())
  return reg.host
}

const blobData = (storage: string, digest: string) => join(storage, TREE_V2, 'blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data')

t.test(
  "first boot's tree step on a real payload: docker-registry serves every image, pulled whole by digest",
  { skip: !haveTools && 'needs docker-registry and skopeo' },
  async (t) => {
    const host = await dataVolume('data')
    const r = placeRegistryTree(host.payload, host.storage)
    t.equal(r.status, 0, r.out)
    t.match(r.out, /registry storage tree in .*: \d+ blob\(s\) hard-linked from the payload, nothing pushed/)
    t.same(readdirSync(host.storage), ['docker'], 'the tree in place, no staging directory left')
    const layer = imgs.app.layers[0]!.digest
    t.equal(
      statSync(blobData(host.storage, layer)).ino,
      statSync(join(host.payload, 'oci/blobs/sha256', layer.slice(7))).ino,
      "a blob is the payload's file: stored once",
    )
    const stackLayer = stackImage.layers[0]!.digest
    t.notOk(existsSync(blobData(host.storage, stackLayer)), "stack images are not the registry's")
    t.equal(
      statSync(join(host.storage, 'docker')).mode & 0o777,
      0o755,
      'directories the registry reads, as a push makes them (first boot runs with umask 077)',
    )
    const someLink = filesUnder(join(host.storage, TREE_V2, 'repositories'))[0]!
    t.equal(statSync(someLink).mode & 0o777, 0o644)
    t.not(
      statSync(someLink).ino,
      statSync(join(host.payload, PAYLOAD_TREE_DIR, relative(host.storage, someLink))).ino,
      'links are copies: the registry rewrites a tag in place, the payload stays as its SHA256SUMS says',
    )
    t.equal(
      spawnSync('sha256sum', ['--strict', '--quiet', '-c', 'SHA256SUMS'], { cwd: host.payload }).status,
      0,
      'the payload still verifies',
    )

    const addr = await serve(t, host.storage)
    await mkdir(join(work, 'pulled'))
    for (const e of expected) {
      const dir = join(work, 'pulled', `${e.repo.replaceAll('/', '_')}`)
      await skopeoCopy({
        src: `docker://${addr}/${e.repo}@${e.digest}`,
        dest: `oci:${dir}:x`,
        all: true,
        preserveDigests: true,
        srcTlsVerify: false,
      })
      const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }
      t.equal(index.manifests[0]!.digest, e.digest, `${e.repo}@${e.digest.slice(0, 19)} pulled whole, same digest`)
      t.equal(
        sha(await skopeoInspectRaw({ ref: `docker://${addr}/${e.repo}:${e.tag}`, tlsVerify: false })),
        e.digest,
        `${e.repo}:${e.tag} by tag`,
      )
    }
    for (const b of [...imgs.arm.layers, imgs.arm.config])
      t.ok(
        readFileSync(join(work, 'pulled/openshift_multi/blobs/sha256', b.digest.slice(7))).equals(b.data),
        `arm64 blob ${b.digest.slice(0, 19)}: same bytes`,
      )
    const catalog = (await (await fetch(`http://${addr}/v2/_catalog`)).json()) as { repositories: string[] }
    t.same(catalog.repositories, [...new Set(expected.map((e) => e.repo))].sort(), 'the catalog lists every repository')

    // a second run (the step not recorded: a power cut after the rename): nothing changes
    const before = statSync(join(host.storage, 'docker')).ino
    const again = placeRegistryTree(host.payload, host.storage)
    t.equal(again.status, 0, again.out)
    t.match(again.out, /holds content already: left as it is/)
    t.equal(statSync(join(host.storage, 'docker')).ino, before, 'the tree in place is not touched')
  },
)

t.test('an interrupted run (staging left, nothing renamed) is laid again; a damaged tree is refused before the rename', async (t) => {
  const host = await dataVolume('data-interrupted')
  await mkdir(join(host.storage, '.mirror-appliance-tree/docker/registry'), { recursive: true })
  await writeFile(join(host.storage, '.mirror-appliance-tree/docker/registry/half'), 'x')
  const r = placeRegistryTree(host.payload, host.storage)
  t.equal(r.status, 0, r.out)
  t.same(readdirSync(host.storage), ['docker'])
  t.notOk(existsSync(join(host.storage, 'docker/registry/half')), 'nothing of the interrupted run')

  const bad = await dataVolume('data-missing-blob')
  const layer = imgs.tool.layers[1]!.digest.slice(7)
  await rm(join(bad.payload, 'oci/blobs/sha256', layer))
  const refused = placeRegistryTree(bad.payload, bad.storage)
  t.equal(refused.status, 1)
  t.match(refused.out, new RegExp(`the payload lacks blob sha256:${layer}, which its registry tree names`))
  t.notOk(existsSync(join(bad.storage, 'docker')), 'the registry does not get a tree with a blob missing')
})

const shm = '/dev/shm'
const otherFs = existsSync(shm) && statSync(shm).dev !== statSync(work).dev
t.test(
  'the payload on another filesystem than the storage: blobs copied, same bytes',
  { skip: !otherFs && `${shm} is not another filesystem here` },
  async (t) => {
    const other = await mkdtemp(join(shm, 'ma-tree-fb-'))
    t.teardown(() => rm(other, { recursive: true, force: true }))
    await mkdir(join(other, 'storage'))
    const r = placeRegistryTree(payload, join(other, 'storage'))
    t.equal(r.status, 0, r.out)
    t.match(r.out, /blob\(s\) copied \(the payload is on another filesystem\)/)
    const layer = imgs.app.layers[0]!
    t.ok(readFileSync(blobData(join(other, 'storage'), layer.digest)).equals(layer.data))
  },
)

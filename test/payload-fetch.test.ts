// images fetch against a real registry (Debian's docker-registry on
// 127.0.0.1) holding small images built here: pinned and unpinned refs,
// multi-arch kept whole or narrowed to one architecture, blobs shared by two
// images stored once, an interrupted fetch resumed, 404 not retried,
// connection failures retried.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fetchImages, type FetchProgress } from '../builder/payload/fetch.js'
import { OciLayout, SOURCE_DIGEST } from '../builder/payload/oci.js'
import { startRegistry } from './helpers/registry.js'
import { buildImage, sampleImages, writeLayout } from './helpers/oci-fixtures.js'

function skopeo(...args: string[]) {
  const r = spawnSync('skopeo', args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`skopeo ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

const reg = await startRegistry()
t.teardown(() => reg.stop())
const work = await mkdtemp(join(tmpdir(), 'ma-fetch-'))
t.teardown(() => rm(work, { recursive: true, force: true }))

const imgs = sampleImages()
// A larger, incompressible layer so a fetch can be interrupted mid-way.
const big = buildImage({ layers: [{ 'big.bin': randomBytes(24 * 1024 * 1024).toString('base64') }] })
const src = join(work, 'src')
await writeLayout(src, [
  { name: 'app', root: imgs.app.manifest, images: [imgs.app] },
  { name: 'tool', root: imgs.tool.manifest, images: [imgs.tool] },
  { name: 'multi', root: imgs.multi, images: [imgs.amd, imgs.arm] },
  { name: 'big', root: big.manifest, images: [big] },
])
for (const [name, repo] of [
  ['app', 'test/app:1'],
  ['tool', 'test/tool:1'],
  ['multi', 'test/multi:1'],
  ['big', 'test/big:1'],
]) {
  skopeo('copy', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${src}:${name}`, `docker://${reg.host}/${repo}`)
}

const base = { tlsVerify: false, retries: 2, backoffMs: 10 }

t.test('pinned, unpinned and multi-arch images land in one layout, shared blobs once', async (t) => {
  const cacheDir = join(work, 'cache1')
  const events: FetchProgress[] = []
  const res = await fetchImages({
    ...base,
    cacheDir,
    architecture: 'all',
    onProgress: (p) => events.push(p),
    images: [
      { ref: `${reg.host}/test/app:1`, digest: imgs.app.manifest.digest, ociName: 'stack/app' },
      { ref: `${reg.host}/test/tool:1`, ociName: 'content/tool' },
      { ref: `${reg.host}/test/multi:1`, digest: imgs.multi.digest, ociName: 'content/multi' },
    ],
  })
  t.same(
    res.map((r) => [r.ociName, r.digest, r.skipped]),
    [
      ['stack/app', imgs.app.manifest.digest, false],
      ['content/tool', imgs.tool.manifest.digest, false],
      ['content/multi', imgs.multi.digest, false],
    ],
  )
  const layout = await OciLayout.open(cacheDir)
  const entries = await layout.entries()
  t.equal(entries.length, 3)
  const reachable = new Set<string>()
  for (const e of entries) for (const d of await layout.walk(e)) reachable.add(d.digest)
  const files = (await readdir(layout.blobsDir)).filter((n) => !n.startsWith('.'))
  t.equal(files.length, reachable.size, 'one file per distinct blob')
  // The base layer is used by all four manifests: one file.
  const baseLayer = imgs.app.layers[0]!.digest
  t.equal(imgs.tool.layers[0]!.digest, baseLayer)
  t.equal(files.filter((f) => `sha256:${f}` === baseLayer).length, 1)
  const { problems } = await layout.verify({ full: true })
  t.same(problems, [])
  t.ok(
    events.some((e) => e.phase === 'blob' && e.bytes > 0),
    'progress reports bytes',
  )
  t.ok(events.some((e) => e.phase === 'done' && e.image === 'content/multi'))

  // Second run: nothing to do.
  const again = await fetchImages({
    ...base,
    cacheDir,
    architecture: 'all',
    images: [{ ref: `${reg.host}/test/app:1`, digest: imgs.app.manifest.digest, ociName: 'stack/app' }],
  })
  t.equal(again[0]!.skipped, true)
})

t.test('one architecture: the index digest is checked, the arch manifest stored', async (t) => {
  const cacheDir = join(work, 'cache-arm')
  const [r] = await fetchImages({
    ...base,
    cacheDir,
    architecture: 'arm64',
    images: [{ ref: `${reg.host}/test/multi:1`, digest: imgs.multi.digest, ociName: 'content/multi' }],
  })
  t.equal(r!.digest, imgs.arm.manifest.digest)
  const layout = await OciLayout.open(cacheDir)
  const e = await layout.findByName('content/multi')
  t.equal(e!.annotations![SOURCE_DIGEST], imgs.multi.digest)
  t.notOk(await layout.hasBlob(imgs.amd.layers[1]!.digest), 'the amd64 layer was not copied')
  await t.rejects(
    fetchImages({
      ...base,
      cacheDir,
      architecture: 's390x',
      images: [{ ref: `${reg.host}/test/multi:1`, digest: imgs.multi.digest, ociName: 'x' }],
    }),
    { name: 'UserError', message: /no linux\/s390x image \(it has: amd64, arm64\)/ },
  )
})

t.test('an interrupted fetch resumes', async (t) => {
  const cacheDir = join(work, 'cache-int')
  const ac = new AbortController()
  const img = { ref: `${reg.host}/test/big:1`, digest: big.manifest.digest, ociName: 'content/big' }
  await t.rejects(
    fetchImages({
      ...base,
      cacheDir,
      architecture: 'all',
      images: [img],
      signal: ac.signal,
      onProgress: (p) => {
        if (p.phase === 'blob') ac.abort()
      },
    }),
  )
  const layout = await OciLayout.open(cacheDir)
  t.equal(await layout.findByName('content/big'), undefined, 'no entry for a half-copied image')
  const [r] = await fetchImages({ ...base, cacheDir, architecture: 'all', images: [img] })
  t.equal(r!.skipped, false)
  t.equal(r!.digest, big.manifest.digest)
  t.same((await layout.verify({ full: true })).problems, [])
  const stray = await layout.putBlobBytes('not referenced by any image')
  const gc = await layout.gc()
  t.ok(gc.removed >= 1)
  t.notOk(await layout.hasBlob(stray.digest), 'gc removed the unreferenced blob')
  t.same((await layout.verify({ full: true })).problems, [], 'gc keeps what the index references')
})

t.test('a corrupted blob is detected, naming the image and the blob', async (t) => {
  const cacheDir = join(work, 'cache1')
  const layout = await OciLayout.open(cacheDir)
  const layer = imgs.tool.layers[1]!
  const p = layout.blobPath(layer.digest)
  const size = (await stat(p)).size
  await writeFile(p, Buffer.alloc(size, 0x41))
  const { problems } = await layout.verify({ full: true })
  t.same(problems, [{ image: 'content/tool', digest: layer.digest, problem: problems[0]?.problem }])
  t.match(problems[0]!.problem, /content does not match its digest/)
  await writeFile(p, 'short')
  t.match((await layout.verify({ full: false })).problems[0]!.problem, /size is 5, descriptor says \d+/)
})

t.test('401/404 are not retried; connection failures are, with backoff', async (t) => {
  const cacheDir = join(work, 'cache-err')
  const events: FetchProgress[] = []
  await t.rejects(
    fetchImages({
      ...base,
      cacheDir,
      architecture: 'all',
      onProgress: (e) => events.push(e),
      images: [{ ref: `${reg.host}/test/nope:1`, ociName: 'nope' }],
    }),
    { name: 'ToolError', message: /manifest unknown|not found/i },
  )
  t.equal(events.filter((e) => e.phase === 'retry').length, 0)

  const dead = `127.0.0.1:${reg.host.split(':')[1] === '1' ? 2 : 1}`
  events.length = 0
  await t.rejects(
    fetchImages({
      ...base,
      cacheDir,
      architecture: 'all',
      onProgress: (e) => events.push(e),
      images: [{ ref: `${dead}/x/y:1`, ociName: 'dead' }],
    }),
    { name: 'ToolError' },
  )
  const retries = events.filter((e) => e.phase === 'retry')
  t.equal(retries.length, 2)
  t.same(
    retries.map((e) => (e.phase === 'retry' ? e.delayMs : 0)),
    [10, 20],
    'delay doubles',
  )
})

t.test('a missing authfile is a usage error', async (t) => {
  await t.rejects(
    fetchImages({ ...base, cacheDir: join(work, 'c'), architecture: 'all', authfile: join(work, 'no-such-auth.json'), images: [] }),
    { name: 'UserError', message: /authfile .* does not exist/ },
  )
})

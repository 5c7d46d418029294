// oc-mirror v2 archives as oc-mirror writes them (test/helpers/oc-mirror-fixture.ts
// follows its archive writer): chunk sets, incremental runs alone and on top
// of each other, a stale repository, a sparse index, cosign signatures and
// release signatures, checked in the cache and in the payload by digest.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { assemblePayload } from '../builder/payload/assemble.js'
import { importArchive, importArchivesDetailed } from '../builder/payload/import.js'
import { OciLayout, REF_NAME, SPARSE_ABSENT } from '../builder/payload/oci.js'
import { OCM_KIND, releaseSignatureDir, type OcMirrorResult } from '../builder/payload/ocmirror.js'
import { ocMirrorScenario, type Expected } from './helpers/oc-mirror-fixture.js'

const work = await mkdtemp(join(tmpdir(), 'ma-ocmirror-'))
t.teardown(() => rm(work, { recursive: true, force: true }))
const s = await ocMirrorScenario(join(work, 'archives'))
let n = 0
const cacheDir = () => join(work, `cache-${++n}`)
const blobsIn = (dir: string) =>
  new Set(
    readdirSync(join(dir, 'blobs', 'sha256'))
      .filter((f) => !f.startsWith('.'))
      .map((f) => `sha256:${f}`),
  )

/** The import's result and the cache's index.json say the same, by digest, as the scenario expects. */
async function checkImport(t: Test, cache: string, r: OcMirrorResult, want: Expected) {
  const got = r.images.map((i) => ({
    repo: i.repo,
    tag: i.tag,
    digest: i.digest,
    kind: i.kind,
    contentKind: i.contentKind,
    ...(i.absent ? { absent: i.absent } : {}),
  }))
  const key = (x: { repo: string; tag: string }) => `${x.repo}:${x.tag}`
  t.same(
    got.sort((a, b) => (key(a) < key(b) ? -1 : 1)),
    [...want.images].sort((a, b) => (key(a) < key(b) ? -1 : 1)),
    'every image, by digest, with its kind',
  )
  t.same(
    r.skipped.map((x) => ({ repo: x.repo, tag: x.tag, digest: x.digest })),
    want.skipped,
    'the stale repository is skipped and listed',
  )
  const layout = await OciLayout.open(cache)
  const entries = await layout.entries()
  for (const w of want.images) {
    const e = entries.find((x) => x.annotations?.[REF_NAME] === `${w.repo}:${w.tag}`)
    t.equal(e?.digest, w.digest, `cache holds ${w.repo}:${w.tag}`)
    t.equal(e?.annotations?.[OCM_KIND], w.kind)
  }
  t.notOk(
    entries.some((e) => e.annotations?.[REF_NAME] === 'ubi8/ubi:8.9'),
    'nothing of the stale repository is in the cache',
  )
  t.same((await layout.verify({ full: true })).problems, [], 'every blob of every image is there and matches its digest')
  for (const sig of want.releaseSignatures)
    t.same(readFileSync(join(releaseSignatureDir(cache), sig.file)), sig.data, `release signature ${sig.file} kept`)
}

t.test('the fixture is shaped like oc-mirror output', async (t) => {
  for (const run of [s.run1, s.run2]) {
    t.ok(run.chunks.length >= 3, `${run.dir}: several chunks`)
    const last = run.entries.at(-1)!
    t.ok(
      last.every((n) => n.startsWith('working-dir/') || n.startsWith('isc_')),
      'the last chunk holds only working-dir/ and isc_*',
    )
    t.ok(run.entries[0]![0]!.startsWith('docker/registry/v2/repositories/'), 'the repositories tree comes first')
    for (const [i, chunk] of run.chunks.entries()) {
      const listed = spawnSync('tar', ['-tf', chunk], { encoding: 'utf8' })
      t.equal(listed.status, 0, `GNU tar reads ${chunk}`)
      t.same(listed.stdout.trim().split('\n'), run.entries[i], 'with the names the writer gave')
    }
  }
  const blobChunk = (digest: string) => s.run1.entries.findIndex((names) => names.some((n) => n.endsWith(`/${digest.slice(7)}/data`)))
  const cli = s.images.cli!
  t.not(blobChunk(cli.manifest.digest), blobChunk(cli.layers[1]!.digest), 'a manifest and one of its layers sit in different chunks')
  t.ok(
    s.run1.entries.some((names) => names.length === 1 && names[0]!.startsWith('docker/registry/v2/blobs/')),
    'a blob larger than archiveSize has a chunk of its own',
  )
  const all2 = s.run2.entries.flat()
  t.ok(all2.includes(`working-dir/.history/.history-${s.run1.historyTime}`), 'run 2 carries the history run 1 wrote')
  t.notOk(
    all2.some((n) => n.endsWith(`/${s.sharedLayer.slice(7)}/data`)),
    'run 2 does not ship the layer run 1 shipped',
  )
  t.ok(
    all2.some((n) => n.includes(`/_layers/sha256/${s.sharedLayer.slice(7)}/link`)),
    'but its repositories still link it',
  )
  t.ok(
    all2.some((n) => /\/_uploads\/[^/]+\/startedat$/.test(n)),
    'an unfinished upload is in the repositories tree',
  )
})

t.test('run 1: every image by digest, a sparse index, signatures kept, the stale repository skipped', async (t) => {
  const cache = cacheDir()
  const r = await importArchivesDetailed({ cacheDir: cache, paths: [s.run1.dir] })
  await checkImport(t, cache, r.ocMirror!, s.expect1)
  const arm = s.images.ubiArm!
  t.notOk(blobsIn(cache).has(arm.manifest.digest), 'the platform oc-mirror left out is absent')
  const ubi = (await (await OciLayout.open(cache)).entries()).find((e) => e.annotations?.[REF_NAME] === 'ubi9/ubi:latest')!
  t.equal(ubi.annotations?.[SPARSE_ABSENT], arm.manifest.digest, 'and recorded as absent on purpose')
  t.same(
    r.ocMirror!.runs.map((x) => x.iscTime),
    [s.run1.iscTime],
  )
  // The chunks given one by one (the trailing one alone would be no oc-mirror archive) are one set.
  const again = await importArchivesDetailed({ cacheDir: cacheDir(), paths: s.run1.chunks })
  t.same(
    again.ocMirror!.images.map((i) => i.digest).sort(),
    r.ocMirror!.images.map((i) => i.digest).sort(),
    'the chunks as files: the same images',
  )
})

t.test('run 2 alone: refused, naming the earlier run it needs; nothing written', async (t) => {
  const cache = cacheDir()
  await t.rejects(importArchivesDetailed({ cacheDir: cache, paths: [s.run2.dir] }), {
    name: 'OcMirrorError',
    message: new RegExp(
      `oc-mirror run of ${s.run2.iscTime}\\).*need blobs.*incremental[^]*shipped by the oc-mirror run that ended at ${s.run1.historyTime} \\(working-dir/\\.history/\\.history-${s.run1.historyTime}`,
    ),
    hint: new RegExp(`import the archive of the oc-mirror run that ended at ${s.run1.historyTime} first.*nothing was written`),
  })
  t.same(blobsIn(cache), new Set(), 'no blob left in the cache')
  t.same(await (await OciLayout.open(cache)).entries(), [])
})

t.test('run 2 on top of run 1 in the cache: the new images, the moved catalog tag', async (t) => {
  const cache = cacheDir()
  await importArchivesDetailed({ cacheDir: cache, paths: [s.run1.dir] })
  const r = await importArchivesDetailed({ cacheDir: cache, paths: [s.run2.dir] })
  await checkImport(t, cache, r.ocMirror!, s.expect2)
})

t.test('both runs in one import, newest given first: read oldest first', async (t) => {
  const cache = cacheDir()
  const r = await importArchivesDetailed({ cacheDir: cache, paths: [s.run2.dir, s.run1.dir] })
  await checkImport(t, cache, r.ocMirror!, s.expect2)
  t.same(
    r.ocMirror!.runs.map((x) => x.iscTime),
    [s.run1.iscTime, s.run2.iscTime],
  )
})

t.test('a chunk missing from the set is named; the trailing chunk alone is no archive', async (t) => {
  const cache = cacheDir()
  // the chunk holding the big layer is left out
  const without = s.run1.chunks.filter((_, i) => !(s.run1.entries[i]!.length === 1))
  const gone = s.run1.chunks
    .find((_, i) => s.run1.entries[i]!.length === 1)!
    .split('/')
    .pop()!
  await t.rejects(importArchivesDetailed({ cacheDir: cache, paths: without }), {
    name: 'OcMirrorError',
    message: /openshift\/release:4\.15\.0-x86_64-big: layer of .* is in none of the chunks given, and no earlier run shipped it/,
    hint: new RegExp(`give every chunk of this run; missing: ${gone.replace('.', '\\.')}`),
  })
  t.same(blobsIn(cache), new Set(), 'nothing left behind')
  await t.rejects(importArchive({ cacheDir: cache, path: s.run1.chunks.at(-1)! }), {
    name: 'ArchiveError',
    message:
      /none of its 1 chunk\(s\) \(mirror_00000\d\.tar\) holds docker\/registry\/v2\/.*working-dir\/ and isc_\* comes with the chunks before it/,
  })
})

t.test('payload: each image under its oc-mirror repository and tag; sparse index, parts, signatures, release signatures', async (t) => {
  const cache = cacheDir()
  const r = (await importArchivesDetailed({ cacheDir: cache, paths: [s.run1.dir, s.run2.dir] })).ocMirror!
  const out = join(work, 'payload')
  const res = await assemblePayload({
    cacheDir: cache,
    stack: [],
    content: [],
    outDir: out,
    ocMirror: { images: r.images, releaseSignatures: r.releaseSignatures },
  })
  const rows = readFileSync(join(out, 'images.tsv'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split('\t'))
  const row = (role: string, repo: string, tag: string) => rows.find((x) => x[0] === role && x[3] === repo && x[4] === tag)
  for (const w of s.expect2.images) {
    const role = w.kind === 'signature' ? 'signature' : w.absent ? 'sparse' : 'content'
    t.same(row(role, w.repo, w.tag)?.[2], w.digest, `${role} ${w.repo}:${w.tag} pushed by its digest`)
  }
  const amd = s.images.ubiAmd!.manifest.digest
  const part = rows.findIndex((x) => x[0] === 'part' && x[2] === amd)
  const sparse = rows.findIndex((x) => x[0] === 'sparse' && x[3] === 'ubi9/ubi')
  t.ok(part >= 0 && part < sparse, 'the kept platform of the sparse index is pushed by digest before the index')
  t.equal(rows[part]![3], 'ubi9/ubi')
  t.equal(rows[part]![4], '-', 'a part has no tag')
  t.ok(
    rows.findIndex((x) => x[0] === 'signature') > Math.max(...rows.map((x, i) => (x[0] === 'content' ? i : -1))),
    'signatures after the content',
  )
  // the payload layout holds every blob by digest, the left-out platform not
  const blobs = blobsIn(join(out, 'oci'))
  const images = s.images
  for (const im of [
    images.release!,
    images.cli!,
    images.cli2!,
    images.big!,
    images.rbac!,
    images.catalog2!,
    images.ubiAmd!,
    images.minimal!,
  ]) {
    for (const b of [im.manifest, im.config, ...im.layers]) t.ok(blobs.has(b.digest), `payload blob ${b.digest.slice(0, 19)}`)
  }
  t.notOk(blobs.has(images.ubiArm!.manifest.digest), 'not the platform oc-mirror left out')
  const index = JSON.parse(readFileSync(join(out, 'oci/index.json'), 'utf8')) as {
    manifests: { digest: string; annotations: Record<string, string> }[]
  }
  for (const x of rows)
    t.equal(index.manifests.find((m) => m.annotations[REF_NAME] === x[1])?.digest, x[2], `${x[1]} in the payload layout`)
  // skopeo (first boot's tool) reads every row's image from the layout
  for (const x of rows.filter((x) => x[0] !== 'sparse')) {
    const raw = spawnSync('skopeo', ['inspect', '--raw', `oci:${join(out, 'oci')}:${x[1]}`])
    t.equal(raw.status, 0, `skopeo reads ${x[1]}`)
  }
  // release signatures: oc-mirror's file names, byte for byte, checked by SHA256SUMS
  for (const sig of s.expect2.releaseSignatures)
    t.same(readFileSync(join(out, 'release-signatures', sig.file)), sig.data, `release-signatures/${sig.file}`)
  const sums = spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: out, encoding: 'utf8' })
  t.equal(sums.status, 0, sums.stdout + sums.stderr)
  t.match(readFileSync(join(out, 'SHA256SUMS'), 'utf8'), new RegExp(`  release-signatures/4\\.15\\.0-x86_64-sha256-[a-f0-9]{64}$`, 'm'))
  // payload.json: signatures and parts are not content images
  const pj = JSON.parse(readFileSync(join(out, 'payload.json'), 'utf8')) as {
    images: { target: string; tag?: string; digest: string; kind?: string }[]
    signatures: { repo: string; tag: string; digest: string }[]
    releaseSignatures: { file: string; digest: string }[]
  }
  t.notOk(
    pj.images.some((i) => i.tag?.endsWith('.sig')),
    'no signature among the images',
  )
  t.equal(pj.images.length, s.expect2.images.filter((i) => i.kind === 'image').length)
  t.same(
    pj.signatures.map((x) => x.digest),
    s.expect2.images.filter((i) => i.kind === 'signature').map((i) => i.digest),
  )
  t.same(pj.releaseSignatures, [
    {
      file: `release-signatures/${s.expect2.releaseSignatures[0]!.file}`,
      tag: '4.15.0-x86_64',
      digest: s.expect2.releaseSignatures[0]!.digest,
    },
  ])
  for (const w of s.expect2.images.filter((i) => i.kind === 'image'))
    t.equal(pj.images.find((i) => i.target === w.repo && i.tag === w.tag)?.kind, w.contentKind, `${w.repo}:${w.tag} is ${w.contentKind}`)
  // where clusters pull them from, as the ImageSetConfiguration names them
  const origin = (repo: string) => (pj.images as { target: string; origin?: string }[]).find((i) => i.target === repo)?.origin
  t.equal(
    origin('ubi9/ubi-minimal'),
    'registry.access.redhat.com/ubi9/ubi-minimal:latest',
    'an additional image: its registry from the ISC',
  )
  t.equal(
    origin('redhat/redhat-operator-index'),
    'registry.redhat.io/redhat/redhat-operator-index:v4.15',
    'a catalog: its registry from the ISC',
  )
  t.equal(origin('openshift4/ose-kube-rbac-proxy'), undefined, 'an operator image: not named by the ISC, no origin guessed')
  t.same(res.missing, [])
  t.ok(existsSync(join(out, 'oci/oci-layout')))
})

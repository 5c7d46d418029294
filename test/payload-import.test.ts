// images import: archives made by skopeo (docker-archive is the format
// `podman save` writes; oci-archive), OCI layout dirs, an oc-mirror v2 style
// archive (distribution storage tree), and hostile archives that must be
// refused with nothing left behind in the cache.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, symlink, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { importArchive, importArchives } from '../builder/payload/import.js'
import { OciLayout } from '../builder/payload/oci.js'
import { sampleImages, tarBytes, writeLayout, type TarEntry } from './helpers/oci-fixtures.js'

function skopeo(...args: string[]) {
  const r = spawnSync('skopeo', args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`skopeo ${args.join(' ')}: ${r.stderr}`)
}

const work = await mkdtemp(join(tmpdir(), 'ma-import-'))
t.teardown(() => rm(work, { recursive: true, force: true }))
const imgs = sampleImages()
const src = join(work, 'src')
await writeLayout(src, [
  { name: 'app', root: imgs.app.manifest, images: [imgs.app] },
  { name: 'tool', root: imgs.tool.manifest, images: [imgs.tool] },
  { name: 'multi', root: imgs.multi, images: [imgs.amd, imgs.arm] },
])

async function blobFiles(cache: string): Promise<string[]> {
  return (await readdir(join(cache, 'blobs', 'sha256')).catch(() => [])).sort()
}

t.test('docker-archive (podman save format) and oci-archive from skopeo', async (t) => {
  const cache = join(work, 'c1')
  const dockerTar = join(work, 'app-docker.tar')
  skopeo('copy', `oci:${src}:app`, `docker-archive:${dockerTar}:localhost/app:1`)
  const ociTar = join(work, 'tool-oci.tar')
  skopeo('copy', '--preserve-digests', `oci:${src}:tool`, `oci-archive:${ociTar}:example.com/tool:2`)

  const a = await importArchive({ cacheDir: cache, path: dockerTar, format: 'auto' })
  t.same(
    a.map((i) => i.ociName),
    ['localhost/app:1'],
  )
  const b = await importArchive({ cacheDir: cache, path: ociTar })
  t.same(
    b.map((i) => [i.ociName, i.digest]),
    [['example.com/tool:2', imgs.tool.manifest.digest]],
  )
  const layout = await OciLayout.open(cache)
  t.same((await layout.verify({ full: true })).problems, [])
  // The result is usable by skopeo: copy it out again.
  skopeo('copy', `oci:${cache}:localhost/app:1`, `dir:${join(work, 'out-app')}`)
  t.ok((await readdir(join(work, 'out-app'))).includes('manifest.json'))
})

t.test('OCI layout directory; shared blobs stored once', async (t) => {
  const cache = join(work, 'c2')
  const r = await importArchive({ cacheDir: cache, path: src, format: 'oci-dir' })
  t.equal(r.length, 3)
  const layout = await OciLayout.open(cache)
  const reachable = new Set<string>()
  for (const e of await layout.entries()) for (const d of await layout.walk(e)) reachable.add(d.digest.slice(7))
  t.same(await blobFiles(cache), [...reachable].sort(), 'one file per distinct blob, nothing else')
})

t.test('oc-mirror v2 archive: distribution storage tree, split over two chunks', async (t) => {
  const cache = join(work, 'c3')
  const reg = 'docker/registry/v2/'
  const blob = (b: { digest: string; data: Buffer }): TarEntry => ({
    name: `${reg}blobs/sha256/${b.digest.slice(7, 9)}/${b.digest.slice(7)}/data`,
    body: b.data,
  })
  const chunk1 = tarBytes([
    { name: 'working-dir/.oc-mirror/.cache/whatever.json', body: '{}' },
    { name: `${reg}repositories/openshift/multi/_manifests/tags/4.16/current/link`, body: imgs.multi.digest },
    blob(imgs.multi),
    blob(imgs.amd.manifest),
    blob(imgs.arm.manifest),
    blob(imgs.amd.config),
    blob(imgs.arm.config),
  ])
  const chunk2 = tarBytes([...imgs.amd.layers, ...imgs.arm.layers.slice(1)].map(blob))
  await writeFile(join(work, 'mirror_000001.tar'), chunk1)
  await writeFile(join(work, 'mirror_000002.tar'), chunk2)
  const r = await importArchives({ cacheDir: cache, paths: [join(work, 'mirror_000001.tar'), join(work, 'mirror_000002.tar')] })
  t.same(
    r.map((i) => [i.ociName, i.digest]),
    [['openshift/multi:4.16', imgs.multi.digest]],
  )
  t.same((await (await OciLayout.open(cache)).verify({ full: true })).problems, [])
})

const hostile: [string, TarEntry[], RegExp][] = [
  ['path traversal', [{ name: '../../etc/evil', body: 'x' }], /escapes the archive/],
  ['absolute path', [{ name: '/etc/evil', body: 'x' }], /absolute path/],
  ['symlink pointing out', [{ name: 'index.json', type: '2', linkname: '../../../etc/passwd' }], /symlink index.json points outside/],
  ['absolute symlink', [{ name: 'manifest.json', type: '2', linkname: '/etc/passwd' }], /points outside/],
  [
    'hard link',
    [
      { name: 'a', body: 'x' },
      { name: 'manifest.json', type: '1', linkname: 'a' },
    ],
    /hard link manifest.json -> a refused/,
  ],
  ['device file', [{ name: 'dev', type: '3' }], /device or FIFO entry dev refused/],
]
for (const [what, entries, msg] of hostile) {
  t.test(`refused: ${what}`, async (t) => {
    const cache = join(work, `h-${what.replace(/\W/g, '')}`)
    const file = join(work, `${what.replace(/\W/g, '')}.tar`)
    await writeFile(file, tarBytes(entries))
    await t.rejects(importArchive({ cacheDir: cache, path: file }), { name: 'ArchiveError', message: msg })
    t.same(await blobFiles(cache), [], 'nothing written to the cache')
  })
}

t.test('refused: a blob that does not match its digest; nothing left behind', async (t) => {
  const cache = join(work, 'bad')
  const bad = join(work, 'bad-oci')
  await writeLayout(bad, [{ name: 'app:1', root: imgs.app.manifest, images: [imgs.app] }])
  const layer = imgs.app.layers[1]!
  const p = join(bad, 'blobs', 'sha256', layer.digest.slice(7))
  const data = await readFile(p)
  data[data.length - 1] = data[data.length - 1]! ^ 0xff
  await writeFile(p, data)
  await t.rejects(importArchive({ cacheDir: cache, path: bad }), {
    name: 'ArchiveError',
    message: new RegExp(`blob ${layer.digest} .* does not match its digest.*tampered`),
  })
  t.same(await blobFiles(cache), [], 'the blobs imported before the bad one were removed again')
  t.same(await (await OciLayout.open(cache)).entries(), [])
})

t.test('refused: docker-archive layer that does not match its diff_id', async (t) => {
  const dockerTar = join(work, 'tamper-docker.tar')
  skopeo('copy', `oci:${src}:app`, `docker-archive:${dockerTar}:localhost/app:1`)
  // Rewrite one layer's bytes (same size) inside the archive.
  const buf = await readFile(dockerTar)
  const idx = buf.indexOf(Buffer.from('one\n'))
  t.ok(idx > 0)
  buf.write('ONE\n', idx)
  await writeFile(dockerTar, buf)
  await t.rejects(importArchive({ cacheDir: join(work, 'c-tamper'), path: dockerTar }), {
    name: 'ArchiveError',
    message: /does not match its digest \(diff_id .*tampered/,
  })
})

t.test('refused: oversized manifest, gzip archive, symlink out of a layout dir', async (t) => {
  const big = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:' + 'a'.repeat(64), size: 64 * 1024 * 1024 }
  await writeFile(
    join(work, 'big.tar'),
    tarBytes([
      { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', body: JSON.stringify({ schemaVersion: 2, manifests: [big] }) },
    ]),
  )
  await t.rejects(importArchive({ cacheDir: join(work, 'c-big'), path: join(work, 'big.tar') }), {
    message: /more than the 4194304 allowed/,
  })

  await writeFile(join(work, 'x.tar.gz'), Buffer.from([0x1f, 0x8b, 8, 0, ...Buffer.alloc(600)]))
  await t.rejects(importArchive({ cacheDir: join(work, 'c-gz'), path: join(work, 'x.tar.gz') }), {
    message: /gzip-compressed; decompress it first/,
  })

  const evil = join(work, 'evil-dir')
  await writeLayout(evil, [{ name: 'app:1', root: imgs.app.manifest, images: [imgs.app] }])
  const cfg = join(evil, 'blobs', 'sha256', imgs.app.config.digest.slice(7))
  await rm(cfg)
  await mkdir(join(work, 'outside'), { recursive: true })
  await writeFile(join(work, 'outside', 'cfg'), imgs.app.config.data)
  await symlink(join(work, 'outside', 'cfg'), cfg)
  await t.rejects(importArchive({ cacheDir: join(work, 'c-evil'), path: evil }), {
    name: 'ArchiveError',
    message: /symlink pointing outside the directory/,
  })
})

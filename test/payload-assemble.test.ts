// Payload assembly from a cache: only the needed images, blobs hard-linked
// (same inode as the cache), images.tsv for first boot, payload.json,
// SHA256SUMS checked by sha256sum -c, skopeo reading the result; refusal
// (exit 2) naming the missing stack image and the fetch command.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { assemblePayload } from '../builder/payload/assemble.js'
import { imagesCommand } from '../builder/payload/cli.js'
import { importArchive } from '../builder/payload/import.js'
import { OciLayout } from '../builder/payload/oci.js'
import { sampleImages, writeLayout } from './helpers/oci-fixtures.js'

const work = await mkdtemp(join(tmpdir(), 'ma-assemble-'))
t.teardown(() => rm(work, { recursive: true, force: true }))
const imgs = sampleImages()
const src = join(work, 'src')
await writeLayout(src, [
  { name: 'stack/quay', root: imgs.app.manifest, images: [imgs.app] },
  { name: 'stack/redis', root: imgs.tool.manifest, images: [imgs.tool] },
  { name: 'content/openshift/multi:4.16', root: imgs.multi, images: [imgs.amd, imgs.arm] },
  { name: 'unused/image:1', root: imgs.amd.manifest, images: [imgs.amd] },
])
const cache = join(work, 'cache')
await importArchive({ cacheDir: cache, path: src })
const stack = [
  { name: 'quay', ref: 'quay.io/projectquay/quay:3.15.0', digest: imgs.app.manifest.digest, ociName: 'stack/quay' },
  { name: 'redis', ref: 'docker.io/library/redis:7.2.16', digest: imgs.tool.manifest.digest, ociName: 'stack/redis' },
]
const content = [{ ref: 'quay.io/openshift/multi:4.16', digest: imgs.multi.digest, target: 'openshift/multi' }]

t.test('payload layout, images.tsv, payload.json, SHA256SUMS', async (t) => {
  const outDir = join(work, 'out')
  const r = await assemblePayload({ cacheDir: cache, stack, content, outDir })
  t.same(r.missing, [])
  t.ok(r.linked > 0 && r.copied === 0, 'same filesystem: hard links')
  const tsv = await readFile(join(outDir, 'images.tsv'), 'utf8')
  t.equal(
    tsv,
    [
      `stack\tstack/quay\t${imgs.app.manifest.digest}\tquay.io/projectquay/quay\t3.15.0`,
      `stack\tstack/redis\t${imgs.tool.manifest.digest}\tdocker.io/library/redis\t7.2.16`,
      `content\tcontent/openshift/multi:4.16\t${imgs.multi.digest}\topenshift/multi\t4.16`,
      '',
    ].join('\n'),
  )
  const layer = imgs.app.layers[0]!.digest.slice(7)
  const a = await stat(join(outDir, 'oci', 'blobs', 'sha256', layer))
  const b = await stat(join(cache, 'blobs', 'sha256', layer))
  t.equal(a.ino, b.ino, 'blob hard-linked from the cache')
  const payload = JSON.parse(await readFile(join(outDir, 'payload.json'), 'utf8'))
  const multi = payload.images.find((i: { ociName: string }) => i.ociName === 'content/openshift/multi:4.16')
  t.same(multi.platforms, ['linux/amd64', 'linux/arm64'])
  t.equal(multi.sourceRef, 'quay.io/openshift/multi:4.16')
  t.ok(multi.size > 0)
  const sums = spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: outDir, encoding: 'utf8' })
  t.equal(sums.status, 0, sums.stderr)
  const layout = await OciLayout.open(join(outDir, 'oci'), { create: false })
  t.same(
    (await layout.entries()).map((e) => e.annotations!['org.opencontainers.image.ref.name']),
    ['stack/quay', 'stack/redis', 'content/openshift/multi:4.16'],
  )
  t.same((await layout.verify({ full: true })).problems, [])
  const sk = spawnSync('skopeo', ['inspect', '--raw', `oci:${join(outDir, 'oci')}:stack/redis`], { encoding: 'utf8' })
  t.equal(sk.status, 0, sk.stderr)
  t.equal(JSON.parse(sk.stdout).config.digest, imgs.tool.config.digest)
})

t.test('a missing stack image is refused, naming it and the fetch command', async (t) => {
  const extra = [...stack, { name: 'x', ref: 'quay.io/x/y:1', digest: 'sha256:' + 'b'.repeat(64), ociName: 'stack/y' }]
  await t.rejects(assemblePayload({ cacheDir: cache, stack: extra, content, outDir: join(work, 'out2'), configPath: 'site.yaml' }), {
    name: 'UserError',
    exitCode: 2,
    message: /1 image\(s\) are not in the image cache .*\n  stack image stack\/y \(quay\.io\/x\/y:1@sha256:b{64}\)/,
    hint: /mirror-appliance images fetch -c site\.yaml --cache /,
  })
  const r = await assemblePayload({ cacheDir: cache, stack: extra, content, outDir: join(work, 'out3'), allowMissing: true })
  t.same(r.missing, ['stack stack/y (quay.io/x/y:1)'])
  const payload = JSON.parse(await readFile(join(work, 'out3', 'payload.json'), 'utf8'))
  t.same(payload.missing, r.missing)
  t.equal(payload.images.find((i: { ociName: string }) => i.ociName === 'stack/y').missing, true)
})

t.test('a corrupted cache blob stops assembly with the image and blob named', async (t) => {
  const c2 = join(work, 'cache2')
  await importArchive({ cacheDir: c2, path: src })
  const cfg = imgs.tool.config.digest
  const p = join(c2, 'blobs', 'sha256', cfg.slice(7))
  const { writeFile } = await import('node:fs/promises')
  await writeFile(p, Buffer.alloc(imgs.tool.config.size, 0x20))
  await t.rejects(assemblePayload({ cacheDir: c2, stack, content, outDir: join(work, 'out4'), verify: 'full' }), {
    name: 'VerifyError',
    message: new RegExp(`stack/redis: blob ${cfg}: content does not match`),
  })
})

t.test('images list / verify through the CLI handler', async (t) => {
  let out = ''
  const ctx = { json: true, quiet: true, verbose: false }
  t.equal(await imagesCommand(['list', '--cache', cache], ctx, (s) => (out += s)), 0)
  const listed = JSON.parse(out)
  t.same(listed.images.map((i: { name: string }) => i.name).sort(), [
    'content/openshift/multi:4.16',
    'stack/quay',
    'stack/redis',
    'unused/image:1',
  ])
  out = ''
  t.equal(await imagesCommand(['verify', '--cache', cache], { ...ctx, json: false }, (s) => (out += s)), 0)
  t.match(out, /4 image\(s\) verified/)
  out = ''
  t.equal(await imagesCommand(['fetch', '--help'], ctx, (s) => (out += s)), 0)
  t.match(out, /--authfile FILE/)
  await t.rejects(
    imagesCommand(['list', '--bogus'], ctx, () => {}),
    { name: 'UserError', message: /Unknown option '--bogus'/ },
  )
  await t.rejects(
    imagesCommand(['frob'], ctx, () => {}),
    { name: 'UserError' },
  )
})

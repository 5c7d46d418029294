// mirror-registryctl import of archives with many entries, under bash with
// the recording fakes (test/helpers/ctl-harness.ts): the listing that decides
// the archive's kind must read the whole archive. A listing cut short in a
// pipe (`tar -tf | head`) killed tar with SIGPIPE, pipefail made that a
// failure, and every archive of more than 2000 entries was refused as
// "neither an OCI layout directory nor a tar archive".
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { testPlan } from './helpers/bundle-fixture.js'
import { ctlHarness, type CtlHarness } from './helpers/ctl-harness.js'
import { sampleImages, tarBytes, type TarEntry } from './helpers/oci-fixtures.js'

const installed = async (t: Test): Promise<CtlHarness & { ctl: string }> => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install'])
  if (r.status !== 0) throw new Error(r.out)
  return Object.assign(h, { ctl: join(h.root, 'usr/local/bin/mirror-registryctl') })
}

/**
 * 2500 small files first, so that what tells the kind comes after entry
 * 2000, named like oc-mirror's links (~150 bytes): a listing larger than the
 * pipe buffer, so that tar is still writing when a reader stops reading.
 */
const hex = (i: number) => createHash('sha256').update(String(i)).digest('hex')
const filler = (dir: string): TarEntry[] =>
  Array.from({ length: 2500 }, (_, i) => ({ name: `${dir}/${hex(i)}/${hex(i + 1e6)}`, body: `${i}\n` }))

t.test('an OCI archive of 2500+ entries is imported: the index.json after entry 2000 is found', async (t) => {
  const h = await installed(t)
  const imgs = sampleImages()
  const blobs = [imgs.app.manifest, imgs.app.config, ...imgs.app.layers]
  const entries: TarEntry[] = [
    ...filler('extra/sha256'),
    { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
    ...blobs.map((b) => ({ name: `blobs/sha256/${b.digest.slice(7)}`, body: b.data })),
    {
      name: 'index.json',
      body: JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: imgs.app.manifest.mediaType,
            digest: imgs.app.manifest.digest,
            size: imgs.app.manifest.size,
            annotations: { 'org.opencontainers.image.ref.name': 'content/team/app:1.0' },
          },
        ],
      }),
    },
  ]
  t.ok(entries.findIndex((e) => e.name === 'index.json') > 2000, 'index.json is past entry 2000')
  t.ok(entries.reduce((n, e) => n + e.name.length + 1, 0) > 4 * 65536, 'the listing is larger than a pipe buffer')
  const archive = join(h.base, 'big-oci.tar')
  writeFileSync(archive, tarBytes(entries))
  const n = h.calls().length
  const r = h.run(['import', archive], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.notMatch(r.out, /neither an OCI layout/)
  const pushes = h
    .calls()
    .slice(n)
    .filter((c) => c.startsWith('skopeo copy --quiet --all'))
  t.equal(pushes.length, 1, 'the image was pushed')
  t.match(
    pushes[0]!,
    /oci:ROOT\/var\/tmp\/mirror-registryctl\.[^ ]+:content\/team\/app:1\.0 docker:\/\/registry\.lab\.example:8443\/team\/app:1\.0$/,
  )
})

t.test('an oc-mirror chunk of 2500+ entries is recognised as one, not refused as no tar', async (t) => {
  const h = await installed(t)
  const archive = join(h.base, 'mirror_000001.tar')
  writeFileSync(
    archive,
    tarBytes([
      ...filler('docker/registry/v2/repositories/openshift/release/_layers/sha256'),
      { name: 'working-dir/.history/.history-2024-06-01T10:07:13Z', body: '' },
    ]),
  )
  const r = h.run(['import', archive], {}, h.ctl)
  t.equal(r.status, 1)
  t.match(r.out, /is an oc-mirror archive: push it with oc-mirror itself/)
})

t.test('a file that is no tar archive is refused as such, with what tar said', async (t) => {
  const h = await installed(t)
  const junk = join(h.base, 'junk.tar')
  writeFileSync(junk, Buffer.alloc(4096, 0x41))
  const r = h.run(['import', junk], {}, h.ctl)
  t.equal(r.status, 1)
  t.match(r.out, /junk\.tar is neither an OCI layout directory nor a tar archive \(tar: .+\)/)
})

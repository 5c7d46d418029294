// First boot loads each stack image with
//   skopeo copy oci:PAYLOAD/oci:stack/x containers-storage:REPO@DIGEST
// and the unit's Image=REPO@DIGEST must then resolve locally with no pull.
// podman is not installed here; skopeo writes the same containers-storage
// (vfs driver in a scratch root), so this checks what podman's lookup reads:
// the image is stored under the exact name REPO@DIGEST, with the index
// (manifest list) digest the lock pins, and resolves by that reference.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sampleImages, writeLayout } from '../helpers/oci-fixtures.js'

t.test('a multi-arch stack image loads into containers-storage under repo@index-digest', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stack-load-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const imgs = sampleImages()
  await writeLayout(join(dir, 'oci'), [{ name: 'stack/quay', root: imgs.multi, images: [imgs.amd, imgs.arm] }])
  const store = `[vfs@${join(dir, 'root')}+${join(dir, 'run')}]`
  const ref = `quay.io/projectquay/quay@${imgs.multi.digest}`
  const copy = spawnSync(
    'skopeo',
    [
      '--insecure-policy',
      '--override-arch',
      'amd64',
      'copy',
      '--quiet',
      `oci:${join(dir, 'oci')}:stack/quay`,
      `containers-storage:${store}${ref}`,
    ],
    { encoding: 'utf8' },
  )
  t.equal(copy.status, 0, copy.stderr)
  const images = JSON.parse(readFileSync(join(dir, 'root/vfs-images/images.json'), 'utf8')) as {
    names?: string[]
    digest?: string
    'big-data-digests'?: Record<string, string>
  }[]
  t.equal(images.length, 1)
  t.same(images[0]!.names, [ref], 'stored under the exact name the unit uses')
  t.equal(images[0]!.digest, imgs.multi.digest, 'image digest is the pinned index digest')
  t.ok(
    Object.keys(images[0]!['big-data-digests'] ?? {}).includes(`manifest-${imgs.amd.manifest.digest}`),
    'the amd64 instance is what was stored',
  )
  const inspect = spawnSync('skopeo', ['inspect', '--raw', `containers-storage:${store}${ref}`])
  t.equal(inspect.status, 0, String(inspect.stderr))
  const other = spawnSync('skopeo', ['inspect', '--raw', `containers-storage:${store}quay.io/projectquay/quay@sha256:${'0'.repeat(64)}`])
  t.not(other.status, 0, 'another digest does not resolve')
})

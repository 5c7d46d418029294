// The payload's copy when hard links cannot be used: what lands in the payload
// is byte for byte the cache's blob, its sha256 is checked on the way (a blob
// whose bytes changed is refused and nothing of it is left behind), and on
// another filesystem (a tmpfs) a build falls back from hard links to this
// copy, judged by sha256sum -c.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { assemblePayload } from '../builder/payload/assemble.js'
import { copyHashing } from '../builder/payload/copy.js'
import { MEDIA, OciLayout } from '../builder/payload/oci.js'

const work = await mkdtemp(join(tmpdir(), 'ma-copy-'))
t.teardown(() => rm(work, { recursive: true, force: true }))
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex')

// Many rounds of copy.ts's four 1 MiB buffers, and not a multiple of them: every buffer is reused and the last read is short.
const big = randomBytes(13 * 1024 * 1024 + 5)

t.test('copyHashing: same bytes, the digest of what was written, the source mode', async (t) => {
  const src = join(work, 'src.bin')
  await writeFile(src, big)
  await chmod(src, 0o640)
  const dst = join(work, 'dst.bin')
  const r = await copyHashing(src, dst)
  t.same(r, { digest: sha(big), size: big.length })
  t.ok((await readFile(dst)).equals(big), 'byte-identical copy')
  t.equal((await stat(dst)).mode & 0o777, 0o640)

  const empty = join(work, 'empty')
  await writeFile(empty, '')
  t.same(await copyHashing(empty, join(work, 'empty.copy')), { digest: sha(Buffer.alloc(0)), size: 0 })

  await t.rejects(copyHashing(src, dst), { code: 'EEXIST' }, 'never writes over an existing file')
  const stop = new AbortController()
  stop.abort()
  await t.rejects(copyHashing(src, join(work, 'never'), stop.signal), { name: 'AbortError' })
  t.notOk(await stat(join(work, 'never')).catch(() => null), 'an aborted copy does not start')
  // Stopped after two chunks, with a read and writes in flight: the error comes out, nothing is left dangling.
  let checks = 0
  const midway = {
    throwIfAborted() {
      if (++checks > 3) throw new DOMException('stopped', 'AbortError')
    },
  } as AbortSignal
  await t.rejects(copyHashing(src, join(work, 'partial'), midway), { name: 'AbortError' })
  t.equal(checks, 4, 'stopped between chunks')
})

/** A cache holding one image whose layer is `big`; returns what assemblePayload needs. */
async function cacheWithBigLayer(dir: string) {
  const cache = await OciLayout.open(dir)
  const layer = await cache.putBlobBytes(big)
  const config = await cache.putBlobBytes(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }),
  )
  const manifest = await cache.putBlobBytes(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: { mediaType: MEDIA.ociConfig, ...config },
      layers: [{ mediaType: MEDIA.ociLayerGzip, ...layer }],
    }),
  )
  await cache.setEntry('stack/big', { mediaType: MEDIA.ociManifest, ...manifest })
  return { cache, layer, stack: [{ name: 'big', ref: 'example.com/big:1', digest: manifest.digest, ociName: 'stack/big' }] }
}

const sums = (dir: string) => spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' })

t.test('link: false copies every blob (own inode), and sha256sum -c agrees', async (t) => {
  const { cache, layer, stack } = await cacheWithBigLayer(join(work, 'cache'))
  const outDir = join(work, 'out')
  const r = await assemblePayload({ cacheDir: cache.dir, stack, content: [], outDir, link: false })
  t.equal(r.linked, 0)
  t.equal(r.copied, 3, 'manifest, config and layer copied')
  const placed = join(outDir, 'oci', 'blobs', 'sha256', layer.digest.slice(7))
  t.not((await stat(placed)).ino, (await stat(cache.blobPath(layer.digest))).ino)
  t.ok((await readFile(placed)).equals(big))
  const s = sums(outDir)
  t.equal(s.status, 0, s.stderr)
})

t.test('a blob whose bytes changed in the cache is refused on the copy, and nothing of it is left', async (t) => {
  const { cache, layer, stack } = await cacheWithBigLayer(join(work, 'cache-bad'))
  // Same size (the quick check passes), one byte changed in the last buffer.
  const bad = Buffer.from(big)
  bad[bad.length - 3]! ^= 0xff
  await writeFile(cache.blobPath(layer.digest), bad)
  const outDir = join(work, 'out-bad')
  await t.rejects(assemblePayload({ cacheDir: cache.dir, stack, content: [], outDir, link: false }), {
    name: 'VerifyError',
    message: new RegExp(`blob ${layer.digest}: content does not match its digest \\(sha256 is ${sha(bad)}\\)`),
    hint: /images fetch/,
  })
  const left = await readdir(join(outDir, 'oci', 'blobs', 'sha256'))
  t.notOk(
    left.some((f) => f.startsWith(layer.digest.slice(7))),
    `no copy or temporary file of the bad blob (${left.join(', ')})`,
  )
})

// /dev/shm is a tmpfs on Linux: another filesystem than the temp dir when that is on disk.
const otherFs = '/dev/shm'
const otherDev = (() => {
  try {
    return statSync(otherFs).dev !== statSync(tmpdir()).dev
  } catch {
    return false
  }
})()
t.test(
  'across filesystems a build copies instead of linking',
  { skip: otherDev ? false : `${otherFs} is not another filesystem than ${tmpdir()} here` },
  async (t) => {
    const { cache, stack } = await cacheWithBigLayer(join(work, 'cache-x'))
    const outDir = await mkdtemp(join(otherFs, 'ma-copy-'))
    t.teardown(() => rm(outDir, { recursive: true, force: true }))
    const r = await assemblePayload({ cacheDir: cache.dir, stack, content: [], outDir })
    t.equal(r.linked, 0, 'no hard link across filesystems')
    t.equal(r.copied, 3)
    const s = sums(outDir)
    t.equal(s.status, 0, s.stderr)
  },
)

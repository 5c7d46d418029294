// builder/hash.ts: file hashes checked against coreutils' sha256sum and
// against hashing the bytes in memory, at sizes around the read buffer; the
// base-ISO checksum cache hits only for the same version of the same file.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { appendFile, chmod, mkdir, open, readdir, rename, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  fileIdentity,
  hashedWhileWritten,
  hashFile,
  hashPinned,
  hashWhileWritten,
  sha256File,
  sha256FileCached,
  type PinnedHash,
} from '../builder/hash.js'
import { writeManifest } from '../builder/manifest.js'

const MiB = 1 << 20
const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const sha256sum = (p: string) => spawnSync('sha256sum', [p], { encoding: 'utf8' }).stdout.split(' ')[0]

t.test('hashFile matches the bytes at sizes around the 1 MiB read buffer', async (t) => {
  const dir = t.testdir()
  for (const size of [0, 1, MiB - 1, MiB, MiB + 1, 2 * MiB, 3 * MiB + 5]) {
    const data = randomBytes(size)
    const p = join(dir, `f${size}`)
    await writeFile(p, data)
    const r = await hashFile(p)
    t.same(r, { sha256: hex(data), size }, `${size} bytes`)
  }
  const p = join(dir, `f${3 * MiB + 5}`)
  t.equal(await sha256File(p), sha256sum(p), 'agrees with coreutils sha256sum')
})

t.test('hashFile: a missing file and an aborted read reject', async (t) => {
  const dir = t.testdir()
  await t.rejects(hashFile(join(dir, 'nope')), { code: 'ENOENT' })
  const p = join(dir, 'big')
  await writeFile(p, Buffer.alloc(8 * MiB, 7))
  const ac = new AbortController()
  ac.abort()
  await t.rejects(hashFile(p, ac.signal), { name: 'AbortError' })
  const ac2 = new AbortController()
  const pending = hashFile(p, ac2.signal)
  ac2.abort()
  await t.rejects(pending, { name: 'AbortError' }, 'abort while reading')
})

t.test('sha256FileCached: one hash per file version', async (t) => {
  const dir = t.testdir()
  const cache = join(dir, 'cache')
  const p = join(dir, 'base.iso')
  await writeFile(p, Buffer.alloc(2 * MiB + 3, 1))

  const first = await sha256FileCached(p, cache)
  t.same(first, { sha256: sha256sum(p), cached: false }, 'first time: read')
  const entries = await readdir(join(cache, 'checksums'))
  t.equal(entries.length, 1, 'one entry stored')
  t.equal(((await stat(join(cache, 'checksums', entries[0]!))).mode & 0o777).toString(8), '644')
  t.same(await sha256FileCached(p, cache), { sha256: first.sha256, cached: true }, 'second time: remembered')

  // Same size, mtime put back: only the ctime tells, and it must.
  const s = await stat(p)
  await writeFile(p, Buffer.alloc(2 * MiB + 3, 2))
  await utimes(p, s.atime, s.mtime)
  const changed = await sha256FileCached(p, cache)
  t.same(changed, { sha256: sha256sum(p), cached: false }, 'rewritten in place with the old mtime: read again')
  t.not(changed.sha256, first.sha256)

  // Another file renamed over the path: a new inode.
  await writeFile(join(dir, 'other'), Buffer.alloc(100, 3))
  await rename(join(dir, 'other'), p)
  t.same(await sha256FileCached(p, cache), { sha256: sha256sum(p), cached: false }, 'replaced by another file: read again')
})

t.test('sha256FileCached: no cache, a broken entry or an unwritable cache still give the right hash', async (t) => {
  const dir = t.testdir()
  const p = join(dir, 'base.iso')
  await writeFile(p, 'data')
  const want = sha256sum(p)
  t.same(await sha256FileCached(p, undefined), { sha256: want, cached: false })
  t.same(await sha256FileCached(p, undefined), { sha256: want, cached: false }, 'without a cache dir nothing is remembered')

  const cache = join(dir, 'cache')
  await sha256FileCached(p, cache)
  const [entry] = await readdir(join(cache, 'checksums'))
  await writeFile(join(cache, 'checksums', entry!), 'not a hash\n')
  t.same(await sha256FileCached(p, cache), { sha256: want, cached: false }, 'a garbled entry is ignored and rewritten')
  t.same(await sha256FileCached(p, cache), { sha256: want, cached: true })

  const blocked = join(dir, 'blocked')
  await writeFile(blocked, 'a file where the cache dir should be')
  t.same(await sha256FileCached(p, blocked), { sha256: want, cached: false }, 'cache dir is a file')
  const ro = join(dir, 'ro')
  await mkdir(join(ro, 'checksums'), { recursive: true })
  await chmod(join(ro, 'checksums'), 0o555)
  t.same(await sha256FileCached(p, ro), { sha256: want, cached: false }, 'read-only cache')
  t.same(
    (await readdir(join(ro, 'checksums'))).filter((f) => f.includes('.tmp-')),
    [],
    'no temp files left',
  )
})

t.test('hashes started early: used by the manifest only for the version that was read', async (t) => {
  const dir = t.testdir({ 'a.iso': 'medium a', 'b.iso': 'medium b', 'c.iso': 'medium c', secrets: { 'ca.key': 'never listed' } })
  const early = new Map<string, Promise<PinnedHash | null>>()
  for (const f of ['a.iso', 'b.iso']) early.set(f, hashPinned(join(dir, f)))
  t.same(await early.get('a.iso'), { sha256: sha256sum(join(dir, 'a.iso')), size: 8, identity: await fileIdentity(join(dir, 'a.iso')) })
  // a pinned hash is trusted as is (the manifest does not read a.iso again) ...
  const trusted = 'f'.repeat(64)
  early.set('a.iso', Promise.resolve({ ...(await early.get('a.iso'))!, sha256: trusted }))
  // ... unless the file is no longer the version that was hashed
  await new Promise((r) => setTimeout(r, 10))
  await writeFile(join(dir, 'b.iso'), 'medium B')
  const base = {
    schema: 'mirror-appliance/manifest/v1',
    builder: { version: '0', node: 'v20' },
    config: { file: 'x', digest: 'y' },
    host: { hostname: 'h', rhel: '8.10', flavor: 'quay', port: 8443 },
    epoch: 0,
    demo: false,
    images: [],
    missingImages: [],
    tools: {},
  } as unknown as Parameters<typeof writeManifest>[1]
  const m = await writeManifest(dir, base, early)
  const by = Object.fromEntries(m.outputs.map((o) => [o.path, o.sha256]))
  t.equal(by['a.iso'], trusted, 'the early hash of an unchanged file is used')
  t.equal(by['b.iso'], sha256sum(join(dir, 'b.iso')), 'a file changed after its early hash is hashed again')
  t.equal(by['c.iso'], sha256sum(join(dir, 'c.iso')), 'a file without an early hash is hashed')
  t.notOk('secrets/ca.key' in by, 'secrets are not outputs')
  t.equal(await hashPinned(join(dir, 'nope')), null, 'a missing file pins nothing')
})

/**
 * A writer like xorriso: a head of zeros first, then `chunks` one after
 * another a few ms apart, and the real head last (or a failure).
 */
async function isoLikeWriter(path: string, head: Buffer, chunks: Buffer[], opts: { fail?: boolean } = {}): Promise<void> {
  await appendFile(path, Buffer.alloc(head.length))
  for (const c of chunks) {
    await appendFile(path, c)
    await new Promise((r) => setTimeout(r, 5))
  }
  if (opts.fail) throw new Error('writer failed')
  const fh = await open(path, 'r+')
  await fh.write(head, 0, head.length, 0)
  await fh.close()
}

t.test('hashWhileWritten: the sha256 of a file read while it is written, its head written last, checked by sha256sum', async (t) => {
  const dir = t.testdir()
  const head = randomBytes(64 * 1024)
  // the file appears only after a while, then grows in uneven pieces across the 1 MiB read size
  const chunks = [randomBytes(5), randomBytes(MiB + 7), randomBytes(3 * MiB), randomBytes(1), randomBytes(MiB - 1)]
  const p = join(dir, 'out.iso')
  const writer = new Promise((r) => setTimeout(r, 50)).then(() => isoLikeWriter(p, head, chunks))
  const r = await hashWhileWritten(p, writer, head)
  t.same(
    r.hash,
    { sha256: sha256sum(p), size: head.length + chunks.reduce((n, c) => n + c.length, 0) },
    'the right guess: the hash of the file',
  )
  t.ok(r.head.equals(head), 'and the head it got')
  t.same(await hashedWhileWritten(p), r.hash, 'remembered for this version of the file')
  t.equal((await hashPinned(p))?.sha256, r.hash!.sha256, 'hashPinned answers with it')

  // chmod and rename keep the version (inode, size, mtime); a write does not
  const moved = join(dir, 'final.iso')
  await chmod(p, 0o600)
  await rename(p, moved)
  t.same(await hashedWhileWritten(moved), r.hash, 'still known after chmod and rename')
  await new Promise((r) => setTimeout(r, 10))
  await appendFile(moved, 'x')
  t.equal(await hashedWhileWritten(moved), null, 'forgotten once the file is written to')
  t.equal((await hashPinned(moved))?.sha256, sha256sum(moved), 'and hashPinned reads it again')
})

t.test('hashWhileWritten: a wrong guess gives no hash; a failed writer rejects', async (t) => {
  const dir = t.testdir()
  const head = randomBytes(64 * 1024)
  const p = join(dir, 'other.iso')
  const r = await hashWhileWritten(p, isoLikeWriter(p, head, [randomBytes(2 * MiB)]), randomBytes(64 * 1024))
  t.equal(r.hash, null, 'the head the file got is not the guess: no hash')
  t.ok(r.head.equals(head), 'the head it got, for the next guess')
  t.equal(await hashedWhileWritten(p), null, 'nothing remembered')

  const q = join(dir, 'failed.iso')
  const failing = isoLikeWriter(q, head, [randomBytes(MiB)], { fail: true })
  await t.rejects(hashWhileWritten(q, failing, head), /its writer failed/)
  await t.rejects(failing, /writer failed/)
  await t.rejects(hashWhileWritten(join(dir, 'never'), Promise.resolve(), head), /not written/, 'a writer that wrote nothing')
})

// A rebuild into the same directory (issue 21, goal 1): the remastered ISO
// is hashed while xorriso writes it, from the head the first build left in
// the image cache, and SHA256SUMS still checks out with coreutils'
// sha256sum; the media are byte-identical to the first build's.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from './helpers/cli.js'
import { fixtureIso } from './helpers/fixture-iso.js'

t.test('build --iso twice into the same directory: the second takes the ISO sha256 made while writing', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'ma-rebuild-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  const base = await fixtureIso()
  const dist = join(d, 'dist')
  const env = { MIRROR_APPLIANCE_CACHE: join(d, 'cache'), SOURCE_DATE_EPOCH: '1700000000' }
  const args = ['build', '-o', dist, '--iso', base, '--no-oemdrv', '-q']
  const sums = () => spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: dist, encoding: 'utf8' })

  const first = await runCli(args, { env })
  t.equal(first.code, 0, `first build (${first.stderr.trim().split('\n').at(-1)})`)
  t.equal(sums().status, 0, 'first build: SHA256SUMS checks out (the ISO read back)')
  const iso1 = readFileSync(join(dist, 'appliance.iso'))
  const heads = join(d, 'cache', 'iso-heads')
  const [entry] = readdirSync(heads)
  t.ok(entry, "the output's head is kept in the image cache")
  t.ok(readFileSync(join(heads, entry!)).equals(iso1.subarray(0, 64 * 1024)), 'and it is the first 64 KiB of the ISO')
  const headStamp = statSync(join(heads, entry!)).mtimeMs

  const again = await runCli(args, { env })
  t.equal(again.code, 0, `rebuild (${again.stderr.trim().split('\n').at(-1)})`)
  const check = sums()
  t.equal(check.status, 0, 'rebuild: SHA256SUMS checks out')
  if (check.status !== 0) t.comment(check.stdout + check.stderr)
  t.match(check.stdout, /^appliance\.iso: OK$/m)
  t.ok(readFileSync(join(dist, 'appliance.iso')).equals(iso1), 'the same ISO, byte for byte')
  t.equal(statSync(join(heads, entry!)).mtimeMs, headStamp, 'the kept head was the right guess (not written again)')
})

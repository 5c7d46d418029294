// The output directory under stress, through the real CLI: a second build
// into the same output while one runs is refused (exit 2, naming the pid);
// the leftovers of a build killed hard (lock, temp dir with a half ISO, an
// earlier output moved aside) are recovered by the next build; a full disk
// gives a clear error and leaves the output's parent as it was.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { paddedFixtureIso } from './bench/iso.js'
import { runCli } from './helpers/cli.js'
import { fixtureIso } from './helpers/fixture-iso.js'
import { cmdline, findUnder, ls, spawnCli, verifyOutput, waitFor } from './helpers/proc.js'

const work = mkdtempSync(join(tmpdir(), 'fault-output-'))
t.teardown(() => {
  spawnSync('umount', [join(work, 'small')]) // the tmpfs of the full-disk test, if mounted
  rmSync(work, { recursive: true, force: true })
})
const cache = join(work, 'cache')
mkdirSync(cache)
const env = { SOURCE_DATE_EPOCH: '1700000000', MIRROR_APPLIANCE_CACHE: cache }

/** A pid that is certainly not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync('true')
  return r.pid!
}

t.test('a second build into the same output while one runs is refused, naming the pid', async (t) => {
  const parent = join(work, 'lock')
  const out = join(parent, 'out')
  mkdirSync(parent)
  const iso = await paddedFixtureIso(64 * 1024 * 1024)
  const first = spawnCli(['build', '-o', out, '--iso', iso, '--seed', 'lock'], { env })
  await waitFor(() => ls(parent).includes('.out.lock'), 'the first build to take the lock')
  const second = await runCli(['build', '-o', out, '--iso', iso, '--seed', 'lock'], { env })
  t.equal(second.code, 2, 'refused as a usage problem')
  t.match(second.stderr, new RegExp(`another mirror-appliance \\(pid ${first.pid}\\) is writing this output`))
  t.match(second.stderr, /hint: wait for it to finish, or remove .*\.out\.lock if it is gone/)
  const r = await first.done
  t.equal(r.code, 0, r.code === 0 ? 'the first build was not disturbed' : r.stderr)
  t.same(verifyOutput(out), [])
  t.same(ls(parent), ['out'], 'lock released')
})

t.test('a build killed hard leaves a lock and a half-written temp dir; the next build recovers both', async (t) => {
  const parent = join(work, 'stale')
  const out = join(parent, 'out')
  mkdirSync(parent)
  const iso = await paddedFixtureIso(64 * 1024 * 1024)
  const victim = spawnCli(['build', '-o', out, '--iso', iso, '--seed', 'stale'], { env, detached: true })
  await waitFor(() => findUnder(join(parent, `.out.tmp-${victim.pid}`), /^\.appliance\.iso\.tmp-/), 'xorriso to start writing')
  process.kill(-victim.pid, 'SIGKILL') // power loss: nothing gets to clean up
  await victim.done
  await waitFor(() => [...victim.seen].every((p) => cmdline(p) === null), 'the killed tree to be gone')
  t.same(ls(parent), ['.out.lock', `.out.tmp-${victim.pid}`], 'the dead build left its lock and temp dir')

  const r = await runCli(['build', '-o', out, '--iso', iso, '--seed', 'stale'], { env })
  t.equal(r.code, 0, r.code === 0 ? 'builds' : r.stderr)
  t.same(ls(parent), ['out'], 'stale lock and temp dir removed')
  t.same(verifyOutput(out), [])
})

t.test('an earlier output moved aside by a build that died between its two renames is put back', async (t) => {
  const parent = join(work, 'old')
  const out = join(parent, 'out')
  mkdirSync(parent)
  const r1 = await runCli(['build', '-o', out, '--no-oemdrv'], { env })
  t.equal(r1.code, 0, r1.code === 0 ? 'builds' : r1.stderr)
  const secrets = readFileSync(join(out, 'secrets', 'secrets.json'), 'utf8')
  // The state a SIGKILL between renameSync(dest, old) and renameSync(tmp, dest) leaves.
  const pid = deadPid()
  renameSync(out, join(parent, `.out.old-${pid}`))
  writeFileSync(join(parent, '.out.lock'), `${pid}\n`)

  // No --seed: new secrets would be random; the same ones prove the earlier output was read back.
  const r2 = await runCli(['build', '-o', out, '--no-oemdrv'], { env })
  t.equal(r2.code, 0, r2.code === 0 ? 'builds' : r2.stderr)
  t.same(ls(parent), ['out'])
  t.equal(
    readFileSync(join(out, 'secrets', 'secrets.json'), 'utf8'),
    secrets,
    'the earlier secrets (CA, passwords) were kept: the old output was restored, not dropped',
  )
})

// A 2 MiB tmpfs as the output's file system (root only; skipped otherwise).
const mnt = join(work, 'small')
mkdirSync(mnt)
let mountError: string | undefined
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt], { stdio: 'pipe' })
} catch (e) {
  mountError = `cannot mount a tmpfs here, needs root: ${(e as Error).message.split('\n')[0]}`
}

t.test('full disk: a small tmpfs as the output', { skip: mountError ?? false }, async (t) => {
  const out = join(mnt, 'out')

  // 1. Too small for the ISO: the media writer's space check refuses before writing it.
  const fixture = await fixtureIso()
  const r1 = await runCli(['build', '-o', out, '--iso', fixture], { env })
  t.equal(r1.code, 1, 'refused by the free-space check (exit 1: the machine, not the input)')
  t.match(r1.stderr, /not enough free space in .* need about \d+ MiB, \d+ MiB free/)
  t.notMatch(r1.stderr, /internal error|bug/)
  t.same(ls(mnt), [], 'nothing left on the small disk')

  // 2. Full while writing the text files: ENOSPC from the file system itself.
  writeFileSync(join(mnt, 'filler'), '')
  const free = () => {
    const s = execFileSync('df', ['-B1', '--output=avail', mnt], { encoding: 'utf8' }).trim().split('\n').pop()!
    return Number(s)
  }
  writeFileSync(join(mnt, 'filler'), Buffer.alloc(Math.max(0, free() - 48 * 1024)))
  const r2 = await runCli(['build', '-o', out, '--no-oemdrv'], { env })
  t.equal(r2.code, 1, 'a failure of the world, not of the user')
  t.match(r2.stderr, new RegExp(`cannot write ${out}: no space left on the device .*nothing was written`))
  t.match(r2.stderr, /hint: free some space or choose another output directory/)
  t.notMatch(r2.stderr, /internal error|bug/)
  t.same(ls(mnt), ['filler'], 'only what was there before')
})

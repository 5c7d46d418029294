// Inputs and host tools failing under a real `build`: a missing xorriso or
// mtools is reported by name with the Debian package that provides it (and
// `doctor` says the same); a base ISO that changes while it is being read is
// detected and nothing is written.
import { mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, symlinkSync, writeSync, closeSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { paddedFixtureIso } from './bench/iso.js'
import { runCli } from './helpers/cli.js'
import { fixtureIso } from './helpers/fixture-iso.js'
import { findUnder, ls, spawnCli, waitFor } from './helpers/proc.js'

const work = mkdtempSync(join(tmpdir(), 'fault-inputs-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const cache = join(work, 'cache')
mkdirSync(cache)
const env = { SOURCE_DATE_EPOCH: '1700000000', MIRROR_APPLIANCE_CACHE: cache }

/** A PATH directory with every program of the system's PATH except those matching `without`. */
function pathWithout(name: string, without: RegExp): string {
  const dir = join(work, `path-${name}`)
  mkdirSync(dir)
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    let names: string[]
    try {
      names = readdirSync(d)
    } catch {
      continue
    }
    for (const n of names) {
      if (without.test(n) || ls(dir).includes(n)) continue
      try {
        symlinkSync(join(d, n), join(dir, n))
      } catch {
        // already linked from an earlier directory of the PATH
      }
    }
  }
  return dir
}

t.test('no xorriso on the PATH', async (t) => {
  const PATH = pathWithout('noxorriso', /^(xorriso|xorrisofs|osirrox|xorrecord)$/)
  const parent = join(work, 'noxorriso')
  mkdirSync(parent)
  const iso = await fixtureIso()

  const r = await runCli(['build', '-o', join(parent, 'out'), '--iso', iso], { env: { ...env, PATH } })
  t.equal(r.code, 2, 'refused before any work')
  t.match(r.stderr, /xorriso is needed to write ISO media: apt-get install xorriso/)
  t.same(ls(parent), [], 'nothing written')

  const demo = await runCli(['build', '-o', join(parent, 'demo')], { env: { ...env, PATH } })
  t.equal(demo.code, 0, demo.code === 0 ? 'the demo builds what it can' : demo.stderr)
  t.match(demo.stderr, /skipped oemdrv\.iso: xorriso is not installed \(apt-get install xorriso\)/)
  t.notOk(ls(join(parent, 'demo')).includes('oemdrv.iso'))

  const doc = await runCli(['doctor', '--json'], { env: { PATH } })
  t.equal(doc.code, 0)
  const row = (JSON.parse(doc.stdout) as { tool: string; found: boolean; package: string }[]).find((x) => x.tool === 'xorriso')
  t.same(
    row && { found: row.found, package: row.package },
    { found: false, package: 'xorriso' },
    'doctor reports it missing, with the package',
  )
})

t.test('no mtools on the PATH: refused before any work, by name and package', async (t) => {
  const PATH = pathWithout(
    'nomtools',
    /^m(dir|type|copy|del|mkdir|md|attrib|format|label|info|tools|cd|rd|ren|showfat|badblocks|cat|partition|move|xdiskinfo|zip|du|toolstest)$|^mtools/,
  )
  const parent = join(work, 'nomtools')
  mkdirSync(parent)
  const r = await runCli(['build', '-o', join(parent, 'out'), '--iso', await fixtureIso()], { env: { ...env, PATH } })
  t.equal(r.code, 2)
  t.match(r.stderr, /mdir, mtype, mcopy \(mtools\) is needed to patch the ISO's EFI boot image: apt-get install mtools/)
  t.same(ls(parent), [], 'no output, no temp dir, no lock')
})

t.test('a base ISO that changes while it is being read is detected; nothing is written', async (t) => {
  const parent = join(work, 'changing')
  mkdirSync(parent)
  const base = join(work, 'base.iso')
  copyFileSync(await paddedFixtureIso(64 * 1024 * 1024), base)
  const size = statSync(base).size
  const tmp = join(work, 'changing-tmp')
  mkdirSync(tmp)
  const proc = spawnCli(['build', '-o', join(parent, 'out'), '--iso', base], { env: { ...env, TMPDIR: tmp } })
  await waitFor(() => findUnder(join(parent, `.out.tmp-${proc.pid}`), /^\.appliance\.iso\.tmp-/), 'xorriso to start reading the base')
  // A copy still in progress, or someone writing into it: same size, other bytes in the padding.
  const fd = openSync(base, 'r+')
  writeSync(fd, Buffer.from('changed!'), 0, 8, size - 64 * 1024)
  closeSync(fd)
  const r = await proc.done
  t.equal(r.code, 1, 'a failure, not a build')
  t.match(r.stderr, /base ISO .*base\.iso changed while it was being read .* nothing was written/)
  t.match(r.stderr, /hint: wait until the ISO is completely copied or downloaded, then build again/)
  t.same(ls(parent), [], 'no output, no temp dir, no lock')
})

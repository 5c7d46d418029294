// Inputs and host tools failing under a real `build`: a missing xorriso or
// mtools is reported by name with the package that provides it (and `doctor`
// says the same); for every output, each tool its writers declare, hidden
// from the PATH, is named by the build for that output and by `doctor`; a
// base ISO that changes while it is being read is detected and nothing is
// written.
import {
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeSync,
  closeSync,
  copyFileSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { paddedFixtureIso } from './bench/iso.js'
import { runCli } from './helpers/cli.js'
import { fixtureIso } from './helpers/fixture-iso.js'
import { findUnder, ls, spawnCli, waitFor } from './helpers/proc.js'
import { BUILD_TOOL_USES, type BuildPart } from '../builder/commands/tool-check.js'
import { installCommand, type ToolNeed } from '../builder/tool-needs.js'

const work = mkdtempSync(join(tmpdir(), 'fault-inputs-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const cache = join(work, 'cache')
mkdirSync(cache)
const env = { SOURCE_DATE_EPOCH: '1700000000', MIRROR_APPLIANCE_CACHE: cache }

/** A PATH directory with every program of the system's PATH except those matching `without`. */
function pathWithout(name: string, without: RegExp): string {
  const dir = join(work, `path-${name}`)
  mkdirSync(dir)
  const linked = new Set<string>()
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    let names: string[]
    try {
      names = readdirSync(d)
    } catch {
      continue
    }
    for (const n of names) {
      // The first directory of the PATH that has a name wins, as for the shell.
      if (without.test(n) || linked.has(n)) continue
      linked.add(n)
      symlinkSync(join(d, n), join(dir, n))
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
  t.match(
    r.stderr,
    /xorriso is needed to write the OEMDRV medium and to read and remaster the RHEL ISO: apt-get install xorriso or dnf install xorriso/,
  )
  t.same(ls(parent), [], 'nothing written')

  const demo = await runCli(['build', '-o', join(parent, 'demo')], { env: { ...env, PATH } })
  t.equal(demo.code, 0, demo.code === 0 ? 'the demo builds what it can' : demo.stderr)
  t.match(demo.stderr, /skipped oemdrv\.iso: xorriso is needed to write the OEMDRV medium: apt-get install xorriso or dnf install xorriso/)
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
  t.match(r.stderr, /mdir, mtype, mcopy are needed to patch the ISO's EFI boot image: apt-get install mtools or dnf install mtools/)
  t.same(ls(parent), [], 'no output, no temp dir, no lock')
})

/** The build flags that ask for each part of a build (a non-demo config: a demo leaves out what it lacks tools for). */
const PART_FLAGS = {
  payload: [],
  oemdrv: [],
  remaster: ['--no-oemdrv', '--iso', join(work, 'any.iso')],
  pxe: ['--no-oemdrv', '--iso', join(work, 'any.iso'), '--pxe', '--pxe-url', 'http://192.0.2.10:8080/pxe'],
  qcow2FromImage: ['--no-oemdrv', '--qcow2', '--base-image', join(work, 'any.qcow2')],
  qcow2ByInstall: ['--no-oemdrv', '--qcow2', '--iso', join(work, 'any.iso')],
  bundle: ['--no-oemdrv', '--bundle'],
} satisfies Record<BuildPart, string[]>

const CONFIG = fileURLToPath(new URL('fixtures/registry-quay/appliance.yaml', import.meta.url))
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const hiding = (needs: readonly ToolNeed[]) => new RegExp(`^(${needs.map((n) => escape(n.tool)).join('|')})$`)

t.test(
  "every tool an output's writers declare: hidden from the PATH, the build for that output names each at once and writes nothing",
  async (t) => {
    // The checks refuse before any file is read: empty stand-ins will do.
    writeFileSync(join(work, 'any.iso'), '')
    writeFileSync(join(work, 'any.qcow2'), '')
    const parts = (Object.keys(PART_FLAGS) as BuildPart[]).filter((p) => BUILD_TOOL_USES[p].needs.length > 0)
    t.ok(parts.length >= 5, `${parts.join(', ')} declare tools`)
    for (const part of parts) {
      const needs = BUILD_TOOL_USES[part].needs
      const PATH = pathWithout(`part-${part}`, hiding(needs))
      const parent = join(work, `part-${part}`, 'dest')
      mkdirSync(parent, { recursive: true })
      const r = await runCli(['build', '-c', CONFIG, '-o', join(parent, 'out'), ...PART_FLAGS[part]], { env: { ...env, PATH } })
      t.equal(r.code, 2, `${part}: refused with the usage exit code`)
      const lines = r.stderr.split('\n')
      for (const n of needs) {
        const line = lines.find((l) => new RegExp(`(^|[ ,])${escape(n.tool)}[ ,]`).test(l))
        t.ok(line?.includes(n.for) && line.includes(installCommand(n)), `${part}: names ${n.tool}, ${n.for}, ${installCommand(n)}`, {
          line,
          stderr: r.stderr,
        })
      }
      t.same(ls(parent), [], `${part}: nothing written`)
    }
  },
)

t.test('doctor names every tool the writers of a build declare, with its packages and the outputs it enables', async (t) => {
  const all = Object.values(BUILD_TOOL_USES).flatMap((u) => u.needs)
  const PATH = pathWithout('doctor-all', hiding(all))
  const json = await runCli(['doctor', '--json'], { env: { PATH } })
  t.equal(json.code, 0)
  const rows = JSON.parse(json.stdout) as { tool: string; found: boolean; package: string; rpm: string | null; enables: string }[]
  const text = await runCli(['doctor'], { env: { PATH } })
  for (const use of Object.values(BUILD_TOOL_USES)) {
    for (const n of use.needs) {
      const row = rows.find((x) => x.tool === n.tool)
      t.same(
        row && { found: row.found, package: row.package, rpm: row.rpm },
        { found: false, package: n.debian, rpm: n.rpm ?? null },
        `${n.tool}: missing, with its packages`,
      )
      t.ok(row?.enables.includes(use.label), `${n.tool}: enables ${use.label}`, { enables: row?.enables })
      t.match(
        text.stdout,
        new RegExp(`^missing\\s+${escape(n.tool)}\\s+${escape(installCommand(n))}\\s`, 'm'),
        `${n.tool}: a "missing" line`,
      )
    }
  }
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

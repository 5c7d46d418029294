// `mirror-appliance doctor`: every tool listed as found (with the version the
// tool itself reports) or missing (with the Debian package to install), what
// it enables, exit 0; --json parses to the same. Checked against the real
// PATH and against a PATH where every tool is missing.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { DOCTOR_TOOLS } from '../builder/commands/doctor.js'
import { TOOL_PACKAGES } from '../builder/exec.js'
import { runCli } from './helpers/cli.js'

interface Row {
  tool: string
  found: boolean
  version: string | null
  package: string
  enables: string
}

const onPath = (tool: string, PATH: string) => spawnSync('sh', ['-c', 'command -v "$0"', tool], { env: { PATH } }).status === 0

t.test('doctor on this machine: text and --json agree with the PATH', async (t) => {
  const PATH = process.env.PATH!
  const text = await runCli(['doctor'])
  t.equal(text.code, 0)
  const json = await runCli(['doctor', '--json'])
  t.equal(json.code, 0)
  const rows = JSON.parse(json.stdout) as Row[]
  t.same(
    rows.map((r) => r.tool),
    ['node', ...DOCTOR_TOOLS.map((d) => d.tool)],
    'every tool, node first',
  )
  for (const d of DOCTOR_TOOLS) {
    const r = rows.find((x) => x.tool === d.tool)!
    const present = onPath(d.tool, PATH)
    t.equal(r.found, present, `${d.tool}: found=${present}, as the shell sees it`)
    t.equal(r.package, TOOL_PACKAGES[d.tool] ?? d.tool, `${d.tool}: its Debian package`)
    t.ok(r.enables.length > 0, `${d.tool}: says what it enables`)
    const line = text.stdout.split('\n').find((l) => l.split(/\s+/)[1] === d.tool)
    t.ok(line, `${d.tool}: a line in the text report`)
    if (present) {
      const v = spawnSync(d.tool, [d.versionFlag ?? '--version'], { encoding: 'utf8', env: { ...process.env, LANG: 'C', LC_ALL: 'C' } })
      const first = ((v.stdout || v.stderr) ?? '').trim().split('\n')[0]!
      t.equal(r.version, first, `${d.tool}: the version line the tool prints`)
      t.match(line, new RegExp(`^ok\\s+${d.tool}\\s`), `${d.tool}: ok in the text report`)
    } else {
      t.equal(r.version, null)
      t.match(line, new RegExp(`^missing\\s+${d.tool}\\s+apt-get install ${r.package}`), `${d.tool}: missing, with the package`)
    }
  }
})

t.test('doctor with nothing on the PATH: every tool missing, with its package; still exit 0', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'doctor-path-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  const text = await runCli(['doctor'], { env: { PATH: empty } })
  t.equal(text.code, 0, 'a report, not a failure')
  const json = await runCli(['doctor', '--json'], { env: { PATH: empty } })
  t.equal(json.code, 0)
  const rows = JSON.parse(json.stdout) as Row[]
  for (const d of DOCTOR_TOOLS) {
    const r = rows.find((x) => x.tool === d.tool)!
    t.same({ found: r.found, version: r.version }, { found: false, version: null }, `${d.tool}: missing`)
    t.match(
      text.stdout,
      new RegExp(`^missing\\s+${d.tool}\\s+apt-get install ${r.package}\\s`, 'm'),
      `${d.tool}: "apt-get install ${r.package}"`,
    )
  }
  t.same(rows[0], { tool: 'node', found: true, version: process.version, package: 'nodejs', enables: 'everything' })
})

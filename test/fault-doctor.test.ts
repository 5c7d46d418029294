// `mirror-appliance doctor`: every tool the stages declare (builder/tool-needs.ts:
// each part of a build, `images fetch`, `vm`, the tests) listed once, as
// found (with the version the tool itself reports) or missing (with the
// Debian and Fedora/RHEL packages to install), with what it enables; exit 0;
// --json parses to the same. Checked against the real PATH and against a
// PATH where every tool is missing.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { DOCTOR_TOOL_USES, type DoctorRow as Row } from '../builder/commands/doctor.js'
import { demandsOf } from '../builder/commands/tool-check.js'
import { installCommand } from '../builder/tool-needs.js'
import { runCli } from './helpers/cli.js'

const onPath = (tool: string, PATH: string) => spawnSync('sh', ['-c', 'command -v "$0"', tool], { env: { PATH } }).status === 0
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const demands = demandsOf(DOCTOR_TOOL_USES)

t.test('the declarations doctor reads: each tool once, every use of it named', async (t) => {
  const tools = demands.map((d) => d.need.tool)
  t.same(tools, [...new Set(tools)], 'no tool twice')
  for (const use of DOCTOR_TOOL_USES)
    for (const n of use.needs)
      t.ok(demands.find((d) => d.need.tool === n.tool)?.labels.includes(use.label), `${n.tool} enables ${use.label}`)
  for (const want of ['xorriso', 'mcopy', 'qemu-img', 'guestfish', 'qemu-system-x86_64', 'skopeo'])
    t.ok((tools as string[]).includes(want), `${want} is declared`)
})

t.test('doctor on this machine: text and --json agree with the PATH', async (t) => {
  const PATH = process.env.PATH!
  const text = await runCli(['doctor'])
  t.equal(text.code, 0)
  const json = await runCli(['doctor', '--json'])
  t.equal(json.code, 0)
  const rows = JSON.parse(json.stdout) as Row[]
  t.same(
    rows.map((r) => r.tool),
    ['node', ...demands.map((d) => d.need.tool)],
    'every declared tool once, node first',
  )
  for (const { need, labels } of demands) {
    const r = rows.find((x) => x.tool === need.tool)!
    const present = onPath(need.tool, PATH)
    t.equal(r.found, present, `${need.tool}: found=${present}, as the shell sees it`)
    t.same(
      { package: r.package, rpm: r.rpm, minVersion: r.minVersion },
      { package: need.debian, rpm: need.rpm ?? null, minVersion: need.minVersion ?? null },
      `${need.tool}: its packages`,
    )
    t.equal(r.enables, labels.join(', '), `${need.tool}: says what it enables`)
    const line = text.stdout.split('\n').find((l) => l.split(/\s+/)[1] === need.tool)
    t.ok(line, `${need.tool}: a line in the text report`)
    if (present) {
      const v = spawnSync(need.tool, ['--version'], { encoding: 'utf8', env: { ...process.env, LANG: 'C', LC_ALL: 'C' } })
      const first = ((v.stdout || v.stderr) ?? '').trim().split('\n')[0]!
      t.equal(r.version, first, `${need.tool}: the version line the tool prints`)
      t.match(line, new RegExp(`^ok\\s+${escape(need.tool)}\\s`), `${need.tool}: ok in the text report`)
    } else {
      t.equal(r.version, null)
      t.match(
        line,
        new RegExp(`^missing\\s+${escape(need.tool)}\\s+${escape(installCommand(need))}`),
        `${need.tool}: missing, with the packages`,
      )
    }
  }
})

t.test('doctor with nothing on the PATH: every tool missing, with its packages; still exit 0', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'doctor-path-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  const text = await runCli(['doctor'], { env: { PATH: empty } })
  t.equal(text.code, 0, 'a report, not a failure')
  const json = await runCli(['doctor', '--json'], { env: { PATH: empty } })
  t.equal(json.code, 0)
  const rows = JSON.parse(json.stdout) as Row[]
  for (const { need } of demands) {
    const r = rows.find((x) => x.tool === need.tool)!
    t.same({ found: r.found, ok: r.ok, version: r.version }, { found: false, ok: false, version: null }, `${need.tool}: missing`)
    t.match(
      text.stdout,
      new RegExp(`^missing\\s+${escape(need.tool)}\\s+${escape(installCommand(need))}\\s`, 'm'),
      `${need.tool}: "${installCommand(need)}"`,
    )
  }
  t.same(rows[0], {
    tool: 'node',
    found: true,
    ok: true,
    version: process.version,
    package: 'nodejs',
    rpm: 'nodejs',
    minVersion: null,
    tooOld: null,
    enables: 'everything',
  })
})

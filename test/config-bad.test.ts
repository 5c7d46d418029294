// The invalid-config corpus: every test/fixtures/bad-config/<case>.yaml must be
// refused with exactly the diagnostics in <case>.expected (one
// `file:line:col field.path: sentence` line each, in order). The line and
// column are a user-visible contract, so besides the golden lines each
// diagnostic is checked against the file itself: the line shown is the file's
// line, the caret sits under the column, and an unknown key or a rejected
// value really starts at that column.
import t, { type Test } from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig, loadConfigText, MAX_CONFIG_BYTES } from '../builder/config/load.js'
import { ConfigError, formatDiagnostic, type Diagnostic } from '../builder/config/diagnostics.js'
import { UserError } from '../builder/errors.js'

const dir = fileURLToPath(new URL('./fixtures/bad-config/', import.meta.url))
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort()

function refused(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (e) {
    if (e instanceof ConfigError) return e
    throw e
  }
  throw new Error('the config was accepted')
}

const firstLines = (e: ConfigError) =>
  e.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic({ ...d, file: basename(d.file) }, { caret: false }))

/** What the file's bytes say is at line:col, independent of the loader. */
function checkPlace(t: Test, d: Diagnostic, fileText: string) {
  const lines = fileText.replace(/^\ufeff/, '').split(/\r?\n/)
  t.ok(d.line >= 1 && d.line <= lines.length, `line ${d.line} is in the file`)
  const src = lines[d.line - 1]!
  if (d.source !== undefined) t.equal(d.source, src, 'the line shown is the file line')
  t.ok(d.col >= 1 && d.col <= src.length + 1, `column ${d.col} is on the line`)
  const at = src.slice(d.col - 1)
  const unknown = /^unknown field "([^"]+)"/.exec(d.message)?.[1]
  if (unknown) t.ok(at.startsWith(unknown), `the unknown key starts at the column: ${JSON.stringify(at)}`)
  const value = /^("(?:[^"\\]|\\.)*") is not valid/.exec(d.message)?.[1]
  if (value) {
    const v = JSON.parse(value) as string
    t.ok(at.startsWith(v) || at.startsWith(`"${v}`) || at.startsWith(`'${v}`), `the value starts at the column: ${JSON.stringify(at)}`)
  }
  const full = formatDiagnostic(d)
  if (d.source !== undefined) {
    const [, shown, caret] = full.split('\n') as [string, string, string]
    t.equal(caret.indexOf('^') - shown.indexOf(' | ') - 3, d.col - 1, 'caret under the column')
  }
}

t.ok(cases.length >= 30, `at least 30 bad configs (${cases.length})`)

for (const name of cases) {
  t.test(name, async (t) => {
    const path = join(dir, name)
    const expected = readFileSync(path.replace(/\.yaml$/, '.expected'), 'utf8')
      .trimEnd()
      .split('\n')
    const e = refused(() => loadConfig(path))
    t.ok(e instanceof UserError, 'a user error')
    t.equal(e.exitCode, 2)
    t.same(firstLines(e), expected)
    t.notMatch(e.message, /^\s+at /m, 'no stack trace')
    t.match(e.message, new RegExp(`\\n${expected.length} errors? in `), 'ends with the error count')
    const text = readFileSync(path).toString('utf8')
    for (const d of e.diagnostics) if (d.line > 0) checkPlace(t, d, text)
  })
}

t.test('a 10 MB file is refused before it is parsed', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'config-bad-'))
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
  const big = join(tmp, 'big.yaml')
  const head = 'apiVersion: mirror-appliance/v1\nhost:\n  disk:\n    device: vda\n'
  const body = Buffer.alloc(10 * 1024 * 1024 - head.length, '# padding padding padding padding padding padding padding padding\n')
  writeFileSync(big, Buffer.concat([Buffer.from(head), body]))
  const e = refused(() => loadConfig(big))
  t.same(firstLines(e), [`big.yaml: the file is ${10 * 1024 * 1024} bytes; a config may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`])
  // The same limit holds for text handed over directly (e.g. from stdin).
  const e2 = refused(() => loadConfigText(readFileSync(big), 'big.yaml', { baseDir: tmp }))
  t.same(firstLines(e2), firstLines(e))
  // Just under the limit is parsed (and this one is valid).
  const ok = Buffer.concat([Buffer.from(head), Buffer.alloc(MAX_CONFIG_BYTES - head.length, '#\n')])
  t.equal(loadConfigText(ok, 'ok.yaml', { baseDir: tmp }).config.host.disk.device, 'vda')
})

t.test('alias bombs of any shape are cut off', async (t) => {
  // Wide instead of deep: one anchor of 200 items referenced 200 times.
  const items = Array.from({ length: 200 }, (_, i) => `x${i}`).join(', ')
  const refs = Array.from({ length: 200 }, () => '*a').join(', ')
  const text = `apiVersion: mirror-appliance/v1\nhost:\n  disk:\n    device: vda\nx: &a [${items}]\ny: [${refs}]\n`
  const e = refused(() => loadConfigText(text, 'wide.yaml', { baseDir: '/' }))
  t.match(firstLines(e)[0], /^wide\.yaml:6:5 YAML aliases/)
  // A few ordinary aliases are fine (they only fail later as unknown keys here).
  const few = 'apiVersion: mirror-appliance/v1\nhost:\n  ntpServers: &ntp [ntp1.example.internal]\n  disk:\n    device: vda\n'
  t.equal(loadConfigText(few, 'few.yaml', { baseDir: '/' }).config.host.ntpServers[0], 'ntp1.example.internal')
})

t.test('leading blank lines and spaces do not make the loader slow or wrong', async (t) => {
  // Regression: the empty-file check once backtracked exponentially here.
  const text = '\n'.repeat(5000) + ' '.repeat(5000) + '\napiVersion: mirror-appliance/v1\nregistry:\n  port: 0\n'
  const e = refused(() => loadConfigText(text, 'blank.yaml', { baseDir: '/' }))
  // Line 5001 holds the spaces; the schema error and the rule error both come out.
  t.same(firstLines(e), [
    'blank.yaml:5002:1 missing "host.disk.device": name the one disk to install on (e.g. vda); no disk the config does not name is ever wiped',
    'blank.yaml:5004:9 registry.port: must be >= 1',
  ])
})

t.test('all errors at once, in line order: schema and cross-field mistakes together', async (t) => {
  const text = [
    'apiVersion: mirror-appliance/v1', // 1
    'host:', // 2
    '  hostname: Mirror_1', // 3  schema: pattern
    '  network:', // 4
    '    mode: dhcp', // 5
    '    address: 192.0.2.10/24', // 6  rule: address needs static
    '  users:', // 7
    '    - name: root', // 8  rule: root is not a user
    '  disk:', // 9
    '    device: vda', // 10
    'registry:', // 11
    '  prot: 8443', // 12 schema: unknown key
    '  flavor: quya', // 13 schema: enum
    '',
  ].join('\n')
  const e = refused(() => loadConfigText(text, 'five.yaml', { baseDir: '/' }))
  const lines = firstLines(e)
  t.equal(lines.length, 5, lines.join('\n'))
  t.same(
    lines.map((l) => l.split(' ')[0]),
    ['five.yaml:3:13', 'five.yaml:6:14', 'five.yaml:8:13', 'five.yaml:12:3', 'five.yaml:13:11'],
  )
  t.same(
    lines.map((l) => l.split(' ')[1]),
    ['host.hostname:', 'host.network.address:', 'host.users[0].name:', 'registry.prot:', 'registry.flavor:'],
  )
  t.match(e.message, /\n5 errors in five\.yaml$/)
})

t.test('cross-field rules do not restate a schema error', async (t) => {
  // address fails the schema; the rule "static needs an address" must not fire too.
  const text = 'apiVersion: mirror-appliance/v1\nhost:\n  network:\n    mode: static\n    address: 10.0.0.1/33\n  disk:\n    device: vda\n'
  const e = refused(() => loadConfigText(text, 'c.yaml', { baseDir: '/' }))
  t.equal(firstLines(e).length, 1, firstLines(e).join('\n'))
  // A bad item in a list keeps the other rules running, but not list rules on that list.
  const users =
    'apiVersion: mirror-appliance/v1\nhost:\n  users:\n    - name: admin\n      sudo: maybe\n    - name: admin\n  disk:\n    firmware: uefi\n'
  const e2 = refused(() => loadConfigText(users, 'u.yaml', { baseDir: '/' }))
  t.same(firstLines(e2), [
    'u.yaml:5:13 host.users[0].sudo: must be true or false, not string "maybe"',
    'u.yaml:8:5 host.disk: missing "host.disk.device": name the one disk to install on (e.g. vda); no disk the config does not name is ever wiped',
  ])
})

t.test('warnings alone do not fail the load', async (t) => {
  const text = 'apiVersion: mirror-appliance/v1\nhost:\n  rhel: "8.6"\n  disk:\n    device: vda\n'
  const r = loadConfigText(text, 'w.yaml', { baseDir: '/' })
  t.equal(r.warnings.length, 1)
  t.equal(
    formatDiagnostic(r.warnings[0]!, { caret: false }),
    'w.yaml:3:9 warning: host.rhel: RHEL 8.6 has no quadlet (podman < 4.4): plain systemd units running podman are used',
  )
})

// test/run.js, the command behind `npm test`: its summary line counts
// passed, failed and skipped tests, it lists each skip with its reason, and
// under CI=true a skip that test/ci-allowed-skips.json does not allow fails
// the run (CI installs every tool the tests need).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const FIXTURE = 'test/fixtures/run-summary/needs-tool.ts'

/** The environment of a shell, without this tap run's own variables (they would make the inner tap a child of this one). */
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TAP|_TAPJS|NODE_OPTIONS$)/.test(k)))

function runSuite(env: Record<string, string>): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, ['test/run.js', FIXTURE], { cwd: ROOT, encoding: 'utf8', env: { ...baseEnv, CI: '', ...env } })
  return { code: r.status, out: r.stdout }
}
const lastLine = (out: string) => out.trimEnd().split('\n').pop()

// PATH without the tool: the system's directories only (frobnicate exists nowhere).
const plainPath = '/usr/local/bin:/usr/bin:/bin'
const withTool = mkdtempSync(join(tmpdir(), 'run-summary-'))
writeFileSync(join(withTool, 'frobnicate'), '#!/bin/sh\nexit 0\n')
chmodSync(join(withTool, 'frobnicate'), 0o755)

t.test('the tool present: nothing skipped', async (t) => {
  const r = runSuite({ PATH: `${withTool}:${plainPath}` })
  t.equal(r.code, 0)
  t.equal(lastLine(r.out), 'tests: 2 passed, 0 failed, 0 skipped')
  t.notMatch(r.out, /^skipped \(/m)
})

t.test('the tool hidden from PATH: the skip is counted and listed with its reason', async (t) => {
  const r = runSuite({ PATH: plainPath })
  t.equal(r.code, 0, 'a skip is not a failure outside CI')
  t.equal(lastLine(r.out), 'tests: 1 passed, 0 failed, 1 skipped')
  t.match(
    r.out,
    /^skipped \(1\):\n {2}test\/fixtures\/run-summary\/needs-tool\.ts > converts with frobnicate: frobnicate is not installed$/m,
  )
})

t.test('under CI=true the same skip fails the run', async (t) => {
  const r = runSuite({ PATH: plainPath, CI: 'true' })
  t.equal(r.code, 1)
  t.match(r.out, /not allowed to skip in CI/)
  t.match(r.out, /converts with frobnicate: frobnicate is not installed/)
  t.equal(lastLine(r.out), 'tests: 1 passed, 1 failed, 0 skipped')
})

t.test('the skips allowed in CI each say why', async (t) => {
  const allowed = JSON.parse(readFileSync(join(ROOT, 'test/ci-allowed-skips.json'), 'utf8')) as { test: string; reason: string }[]
  t.ok(Array.isArray(allowed))
  for (const a of allowed) {
    t.type(a.test, 'string')
    t.doesNotThrow(() => new RegExp(a.test), `${a.test} is a regular expression`)
    t.ok(typeof a.reason === 'string' && a.reason.length > 10, `${a.test}: has a reason`)
  }
})

t.test('UPDATE_GOLDEN=1 rewrites the goldens and is never a passing run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'golden-update-'))
  writeFileSync(join(dir, 'a.txt'), 'old text\n')
  writeFileSync(join(dir, 'b.txt'), 'same text\n')
  const r = spawnSync(process.execPath, ['test/run.js', 'test/fixtures/run-summary/golden-update.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...baseEnv, CI: '', UPDATE_GOLDEN: '1', GOLDEN_DIR: dir },
  })
  t.equal(r.status, 1, 'exit non-zero')
  t.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'new text\n', 'the changed golden is rewritten')
  t.match(r.stdout, /UPDATE_GOLDEN=1: rewrote a /)
  t.match(r.stdout, /UPDATE_GOLDEN=1: unchanged b /)
  t.match(r.stdout + r.stderr, /1 golden file\(s\) rewritten, 1 unchanged; not a test run/)
  t.equal(lastLine(r.stdout), 'tests: 0 passed, 2 failed, 0 skipped')
})

t.test('a failure is listed above the summary with its path and the start of its diagnostic (CI shows only the tail)', async (t) => {
  const r = spawnSync(process.execPath, ['test/run.js', 'test/fixtures/run-summary/fails.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...baseEnv, CI: '' },
  })
  t.equal(r.status, 1)
  const tail = r.stdout.slice(r.stdout.lastIndexOf('\nfailed ('))
  t.match(
    tail,
    /^\nfailed \(1\):\n {2}test\/fixtures\/run-summary\/fails\.ts > outer > inner > arithmetic holds\n/,
    'only the innermost failure, not its subtest and file',
  )
  t.match(tail, /^ {8}-5\n {8}\+4$/m, 'the diff is shown')
  t.notMatch(tail, /source: \|/, 'not the source excerpt')
  t.equal(lastLine(r.stdout), 'tests: 2 passed, 1 failed, 0 skipped')
})

t.test('without PYKICKSTART_DIR the ksvalidator check is a recorded skip with its reason, allowed in CI', async (t) => {
  const env: Record<string, string> = { ...baseEnv, CI: 'true' }
  delete env.PYKICKSTART_DIR
  const r = spawnSync(process.execPath, ['test/run.js', 'test/kickstart-golden.test.ts'], { cwd: ROOT, encoding: 'utf8', env })
  const listed = r.stdout.match(/^ {2}test\/kickstart-golden\.test\.ts > ks-[a-z0-9-]+ > ksvalidator -v RHEL8 accepts ks\.cfg: .*$/gm) ?? []
  t.equal(listed.length, 3, 'one skip per kickstart fixture, listed')
  for (const l of listed)
    t.match(l, /: PYKICKSTART_DIR is not set: pykickstart \(ksvalidator\) is not packaged for Debian 12/, 'with its reason')
  t.notMatch(r.stdout, /not allowed to skip in CI/, 'test/ci-allowed-skips.json allows it')
  // The golden comparisons in that file decide pass or fail; the skips stay counted as skips.
  t.match(lastLine(r.stdout), /^tests: \d+ passed, \d+ failed, 3 skipped$/)
})

t.test('the quadlet key reference list missing: a skip locally, a failure under CI=true', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'no-reference-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  const env = { ...baseEnv, REFERENCE_DIR: empty }
  const r = spawnSync(process.execPath, ['test/run.js', 'test/registry-units.test.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...env, CI: 'true' },
  })
  t.equal(r.status, 1, 'CI fails')
  t.match(
    r.stdout,
    /^ {2}test\/registry-units\.test\.ts > key table agrees with the reference list > \S+\/quadlet-keys-by-podman-version\.txt is not present .*CI must check the table against it/m,
    'the failure is listed, saying what is missing',
  )
  t.notMatch(r.stdout, /^skipped \(/m, 'not a skip')
  t.match(lastLine(r.stdout), /^tests: \d+ passed, 1 failed, 0 skipped$/)
})

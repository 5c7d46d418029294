#!/usr/bin/env node
// `npm test`: runs every tap test (the type check is one of them, in
// test/typecheck.test.ts) and ends with the plain summary line CI reads:
// "tests: N passed, N failed, N skipped", N being tap's own counts, after a
// list of every skipped test with its reason and of every failed test with
// the start of its diagnostic (CI shows only the tail of the output).
//
// Under CI=true a skip is a failure unless test/ci-allowed-skips.json allows
// it, with its reason: CI installs every tool the tests need, so a test that
// skips there for a missing tool means the install is broken.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

const ALLOWED = JSON.parse(readFileSync(new URL('./ci-allowed-skips.json', import.meta.url), 'utf8'))

const args = ['-R', 'tap', ...process.argv.slice(2)]
const child = spawn(process.execPath, ['node_modules/tap/dist/esm/run.mjs', ...args], {
  stdio: ['inherit', 'pipe', 'inherit'],
  env: process.env,
})

// Skipped tests, as "FILE: SUBTEST > … > NAME", and their reasons, read from the TAP stream.
const skips = []
// Failed tests, innermost only, with the first lines of tap's YAML diagnostic.
const failures = []
let diag = null // { indent, lines } while reading the diagnostic of the last failure
const names = [] // Subtest names by indent level
let buf = ''
let tail = ''
function readLine(line) {
  if (diag) {
    if (line.startsWith(diag.indent) && line.trim() !== '...') {
      if (diag.lines.length < 200) diag.lines.push(line.slice(diag.indent.length))
      return
    }
    diag = null
  }
  const f = /^( *)not ok \d+ - (.*?)(?: # (?:time=.*|TODO.*))?$/.exec(line)
  if (f) {
    const path = [...names.slice(0, f[1].length / 4), f[2]]
    const last = failures[failures.length - 1]
    // A failure inside a subtest fails the subtest and its file too: keep the innermost.
    const isParent = last && path.length < last.path.length && path.every((p, i) => p === last.path[i])
    if (!isParent) {
      failures.push({ path, lines: [] })
      diag = { indent: f[1] + '  ', lines: failures[failures.length - 1].lines }
    }
    return
  }
  const m = /^( *)# Subtest: (.*)$/.exec(line)
  if (m) {
    names.length = m[1].length / 4
    names.push(m[2])
    return
  }
  const s = /^( *)ok \d+ - (.*?) # SKIP ?(.*)$/.exec(line)
  if (s) {
    const path = [...names.slice(0, s[1].length / 4), s[2]]
    skips.push({ test: path.join(' > '), reason: s[3] || '(no reason given)' })
  }
}
/** tap's YAML diagnostic without the parts a reader has elsewhere (the source excerpt, the `at` object), stack cut to 3 lines, 30 lines at most. */
function briefDiagnostic(lines) {
  const out = []
  let key = ''
  let inKey = 0
  for (const l of lines) {
    if (l.trim() === '---') continue
    const top = /^(\w[\w-]*):/.exec(l)
    if (top) {
      key = top[1]
      inKey = 0
    } else inKey++
    if (key === 'source' || key === 'at') continue
    if (key === 'stack' && inKey > 3) continue
    out.push(l)
  }
  return out.length > 30 ? [...out.slice(0, 30), `… (${out.length - 30} more lines in the test's output above)`] : out
}

child.stdout.on('data', (d) => {
  process.stdout.write(d)
  tail = (tail + d.toString()).slice(-20000)
  buf += d.toString()
  const lines = buf.split('\n')
  buf = lines.pop()
  for (const l of lines) readLine(l)
})
child.on('close', (code) => {
  if (buf) readLine(buf)
  // tap -R tap ends with "# { total: N, pass: N, fail: N, skip: N, ... }"
  const m = [...tail.matchAll(/#\s*\{\s*total:\s*(\d+)([^}]*)\}/g)].pop()
  let passed = 0
  let failed = 0
  let skipped = 0
  if (m) {
    const field = (name) => Number((m[2].match(new RegExp(`${name}:\\s*(\\d+)`)) ?? [])[1] ?? 0)
    passed = field('pass')
    failed = field('fail')
    skipped = field('skip')
  } else if (code !== 0) {
    failed = 1
  }
  if (skips.length) {
    console.log(`\nskipped (${skips.length}):`)
    for (const s of skips) console.log(`  ${s.test}: ${s.reason}`)
  }
  if (failures.length) {
    console.log(`\nfailed (${failures.length}):`)
    for (const f of failures) {
      // a test named by a whole command output would drown the list: 300 characters a name
      console.log(`  ${f.path.map((n) => (n.length > 300 ? n.slice(0, 300) + '…' : n)).join(' > ')}`)
      for (const l of briefDiagnostic(f.lines)) console.log(`      ${l}`)
    }
  }
  let exit = code ?? 1
  if (process.env.CI === 'true') {
    const refused = skips.filter((s) => !ALLOWED.some((a) => new RegExp(a.test).test(s.test)))
    if (refused.length) {
      console.log(`\nnot allowed to skip in CI (.ci/run installs what they need; allowed skips: test/ci-allowed-skips.json):`)
      for (const s of refused) console.log(`  ${s.test}: ${s.reason}`)
      failed += refused.length
      skipped -= refused.length
      exit = 1
    }
  }
  if (exit !== 0 && failed === 0) failed = 1
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`)
  process.exit(exit)
})

#!/usr/bin/env node
// `npm test`: runs every tap test (the type check is one of them, in
// test/typecheck.test.ts) and ends with the plain summary line CI reads:
// "tests: N passed, N failed", N being tap's own counts.
import { spawn } from 'node:child_process'

const args = ['-R', process.stdout.isTTY && !process.env.NO_COLOR ? 'base' : 'tap', ...process.argv.slice(2)]
const child = spawn(process.execPath, ['node_modules/tap/dist/esm/run.mjs', ...args], {
  stdio: ['inherit', 'pipe', 'inherit'],
  env: process.env,
})
let tail = ''
child.stdout.on('data', (d) => {
  process.stdout.write(d)
  tail = (tail + d.toString()).slice(-20000)
})
child.on('close', (code) => {
  // tap -R tap ends with "# { total: N, pass: N, fail: N, ... }"; the base reporter with "# { total: ..."
  const m = [...tail.matchAll(/#\s*\{\s*total:\s*(\d+)([^}]*)\}/g)].pop()
  let passed = 0
  let failed = 0
  if (m) {
    const field = (name) => Number((m[2].match(new RegExp(`${name}:\\s*(\\d+)`)) ?? [])[1] ?? 0)
    passed = field('pass')
    failed = field('fail')
  } else if (code !== 0) {
    failed = 1
  }
  if (code !== 0 && failed === 0) failed = 1
  console.log(`tests: ${passed} passed, ${failed} failed`)
  process.exit(code ?? 1)
})

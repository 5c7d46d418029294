// The contract for scripts: `mirror-appliance validate -c FILE` on an invalid
// config exits 2, prints the same first diagnostic line as the loader's golden
// file on stderr, and never a stack trace. Runs the real CLI (one process per
// case, a few at a time) on every file of the bad-config corpus.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../builder/mirror-appliance.js', import.meta.url))
const dir = fileURLToPath(new URL('./fixtures/bad-config/', import.meta.url))
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort()

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

function validate(file: string, cwd: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
    delete env.FORCE_COLOR
    const p = spawn(process.execPath, [cli, 'validate', '-c', file], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => (stdout += d))
    p.stderr.on('data', (d) => (stderr += d))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Run fn over items with at most `limit` at a time, results in order. */
async function pool<T, R>(items: T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i]!)
      }
    }),
  )
  return out
}

t.test('validate exits 2 with the expected first line on every bad config', async (t) => {
  t.ok(cases.length >= 30)
  const results = await pool(cases, 4, (name) => validate(name, dir))
  cases.forEach((name, i) => {
    const r = results[i]!
    const expected = readFileSync(join(dir, name.replace(/\.yaml$/, '.expected')), 'utf8').split('\n')[0]
    t.equal(r.code, 2, `${name}: exit code 2\n${r.stderr}`)
    t.equal(r.stderr.split('\n')[0], expected, `${name}: first line`)
    t.notMatch(r.stderr + r.stdout, /^ {4}at /m, `${name}: no stack trace`)
    t.notMatch(r.stderr, /internal error|\u001b\[/, `${name}: not reported as a bug, no colour with NO_COLOR`)
  })
})

t.test('validate on a 10 MB file exits 2 without reading it as YAML', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'config-cli-'))
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
  writeFileSync(join(tmp, 'big.yaml'), Buffer.alloc(10 * 1024 * 1024, 'apiVersion: mirror-appliance/v1\n'))
  const r = await validate('big.yaml', tmp)
  t.equal(r.code, 2)
  t.equal(r.stderr.split('\n')[0], `big.yaml: the file is ${10 * 1024 * 1024} bytes; a config may be at most 1048576 bytes (1 MiB)`)
  t.notMatch(r.stderr, /^ {4}at /m)
})

t.test('validate accepts the good fixtures (exit 0), so exit 2 above means something', async (t) => {
  const good = fileURLToPath(new URL('./fixtures/good-config/', import.meta.url))
  for (const name of ['minimal.yaml', 'full.yaml']) {
    const r = await validate(name, good)
    t.equal(r.code, 0, `${name}\n${r.stderr}`)
  }
})

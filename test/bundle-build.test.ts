// buildBundle: extracted with GNU tar, its contents and modes are what install
// relies on (mirror-registryctl, files.tsv matching the host spec, files/ at
// host paths, payload intact by sha256sum -c, CA); two builds give the same
// bytes; an aborted build leaves nothing; `build --bundle` writes it.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildBundle, BUNDLE_NAME, BUNDLE_TOP } from '../builder/bundle/bundle.js'
import { tarHeader } from '../builder/bundle/tar-writer.js'
import { fakePayload, sha, testPlan } from './helpers/bundle-fixture.js'
import { runCli } from './helpers/cli.js'

const work = mkdtempSync(join(tmpdir(), 'bundle-build-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const plan = testPlan()
const payload = join(work, 'payload')
mkdirSync(payload)
fakePayload(payload, plan, 2, 3 * 1024 * 1024 + 17)

t.test('contents and modes, as GNU tar extracts them', async (t) => {
  const out = join(work, 'a.tar.gz')
  const r = await buildBundle({ plan, payloadDir: payload, outFile: out, epoch: 1_700_000_000 })
  t.equal(statSync(out).mode & 0o777, 0o600, 'the bundle holds keys and passwords: 0600')
  t.equal(r.sha256, sha(readFileSync(out)))
  t.equal(r.size, statSync(out).size)
  const x = join(work, 'x')
  mkdirSync(x)
  const tar = spawnSync('tar', ['-xzf', out, '-C', x], { encoding: 'utf8' })
  t.equal(tar.status, 0, tar.stderr)
  t.same(readdirSync(x), [BUNDLE_TOP], 'one top directory')
  const b = join(x, BUNDLE_TOP)
  t.equal(statSync(b).mode & 0o777, 0o700)
  t.same(readdirSync(b).sort(), ['README.md', 'bundle.env', 'ca.crt', 'files', 'files.tsv', 'mirror-registryctl', 'payload'])
  t.equal(statSync(join(b, 'mirror-registryctl')).mode & 0o777, 0o755)
  // the script sources the library the bundle carries under files/ (and the facts, which shellcheck is not given)
  const sc = spawnSync(
    'shellcheck',
    ['-s', 'bash', '-x', '-P', join(b, 'files/usr/local/libexec/mirror-appliance'), join(b, 'mirror-registryctl')],
    { encoding: 'utf8' },
  )
  t.equal(sc.status, 0, `shellcheck clean, with the library it sources: ${sc.stdout}`)
  t.equal(
    readFileSync(join(b, 'mirror-registryctl'), 'utf8'),
    readFileSync(join(b, 'files/usr/local/bin/mirror-registryctl'), 'utf8'),
    'the same script as the host gets',
  )
  t.equal(readFileSync(join(b, 'ca.crt'), 'utf8'), plan.pki.caCertPem)
  t.notOk(spawnSync('grep', ['-rl', plan.pki.caKeyPem!.split('\n')[1]!, b]).stdout.length, 'the CA key is not in the bundle')
  // every host file at its path with its mode; files.tsv agrees with the host spec
  const rows = readFileSync(join(b, 'files.tsv'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split('\t'))
  t.equal(rows.length, plan.host.dirs.length + plan.host.files.length)
  for (const f of plan.host.files) {
    const p = join(b, 'files', f.path)
    t.same(readFileSync(p), Buffer.from(f.contents), `${f.path} contents`)
    t.equal(statSync(p).mode & 0o777, f.mode, `${f.path} mode`)
    const row = rows.find((r) => r[4] === f.path)!
    t.same(row.slice(1, 4), [f.mode.toString(8).padStart(4, '0'), f.owner, f.group], `${f.path} in files.tsv`)
    t.equal(row[0], f.path.endsWith('.container') || f.path.endsWith('.network') ? 'unit' : 'file')
  }
  for (const d of plan.host.dirs)
    t.ok(
      rows.some((r) => r[0] === 'dir' && r[4] === d.path && r[1] === d.mode.toString(8).padStart(4, '0')),
      `dir ${d.path}`,
    )
  const sums = spawnSync('sha256sum', ['--strict', '-c', 'SHA256SUMS'], { cwd: join(b, 'payload'), encoding: 'utf8' })
  t.equal(sums.status, 0, `payload intact: ${sums.stdout}${sums.stderr}`)
  t.match(
    readFileSync(join(b, 'bundle.env'), 'utf8'),
    /^FLAVOR=quay\nHOSTNAME=registry\.lab\.example\nPORT=8443\nDATA_DIR=\/var\/lib\/mirror-registry\n/m,
  )
  // GNU tar's own view: owners and times
  const list = spawnSync('tar', ['--numeric-owner', '--full-time', '-tvzf', out], { encoding: 'utf8' }).stdout.trim().split('\n')
  t.ok(
    list.every((l) => / 0\/0 /.test(l) && l.includes('2023-11-14 22:13:20')),
    'uid/gid 0 and the epoch as mtime on every entry',
  )
  const names = spawnSync('tar', ['-tzf', out], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .map((n) => n.replace(/\/$/, ''))
  t.same(names, [...names].sort(), 'entries sorted')
  t.equal(readFileSync(out).subarray(4, 8).readUInt32LE(), 0, 'gzip header carries no timestamp')
})

t.test('reproducible: two builds, same bytes; another epoch differs', async (t) => {
  const a = await buildBundle({ plan, payloadDir: payload, outFile: join(work, 'r1.tar.gz'), epoch: 1_700_000_000 })
  const b = await buildBundle({ plan, payloadDir: payload, outFile: join(work, 'r2.tar.gz'), epoch: 1_700_000_000 })
  t.equal(a.sha256, b.sha256)
  const c = await buildBundle({ plan, payloadDir: payload, outFile: join(work, 'r3.tar.gz'), epoch: 1_700_000_001 })
  t.not(a.sha256, c.sha256)
})

t.test('long names go into PAX records that GNU tar reads back', async (t) => {
  const deep = join(payload, 'oci', 'x'.repeat(120), 'y'.repeat(120))
  mkdirSync(deep, { recursive: true })
  writeFileSync(join(deep, 'z'.repeat(90)), 'long')
  const out = join(work, 'long.tar.gz')
  await buildBundle({ plan, payloadDir: payload, outFile: out, epoch: 1 })
  const x = join(work, 'xl')
  mkdirSync(x)
  t.equal(spawnSync('tar', ['-xzf', out, '-C', x]).status, 0)
  t.equal(readFileSync(join(x, BUNDLE_TOP, 'payload/oci', 'x'.repeat(120), 'y'.repeat(120), 'z'.repeat(90)), 'utf8'), 'long')
  rmSync(join(payload, 'oci', 'x'.repeat(120)), { recursive: true })
  t.equal(
    tarHeader({ name: 'a', type: 'file', mode: 0o644, size: 9 * 1024 ** 3 }, 0).length,
    3 * 512,
    'a size past 8 GiB gets a PAX record',
  )
})

t.test('refusals and aborts leave nothing behind', async (t) => {
  const empty = join(work, 'empty')
  mkdirSync(empty)
  await t.rejects(
    buildBundle({ plan, payloadDir: empty, outFile: join(work, 'no.tar.gz'), epoch: 1 }),
    /not an assembled payload \(SHA256SUMS missing\)/,
  )
  const ac = new AbortController()
  ac.abort()
  await t.rejects(buildBundle({ plan, payloadDir: payload, outFile: join(work, 'ab.tar.gz'), epoch: 1, signal: ac.signal }))
  t.same(
    readdirSync(work).filter((n) => n.startsWith('no.') || n.startsWith('ab.')),
    [],
    'no output, no temp file',
  )
})

t.test('build --bundle writes dist/mirror-appliance-bundle.tar.gz', async (t) => {
  const out = join(work, 'dist')
  const r = await runCli(['build', '-o', out, '--bundle', '--no-oemdrv', '--seed', 'cli', '--cache', join(work, 'nocache')], {
    env: { SOURCE_DATE_EPOCH: '1700000000' },
  })
  t.equal(r.code, 0, r.stderr)
  t.ok(existsSync(join(out, BUNDLE_NAME)))
  const list = spawnSync('tar', ['-tzf', join(out, BUNDLE_NAME)], { encoding: 'utf8' }).stdout
  t.match(list, /^mirror-appliance-bundle\/mirror-registryctl$/m)
  t.match(list, /^mirror-appliance-bundle\/payload\/SHA256SUMS$/m)
  t.match(readFileSync(join(out, 'SHA256SUMS'), 'utf8'), new RegExp(`  ${BUNDLE_NAME.replace(/\./g, '\\.')}$`, 'm'), 'listed in SHA256SUMS')
})

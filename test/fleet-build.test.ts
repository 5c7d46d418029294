// `build` with a fleet config, through the real CLI: one payload.iso
// (label MAPAYLOAD, the payload once), per host an OEMDRV holding ONLY that
// host's ks.cfg (read back with xorriso), the summary table, secrets modes
// and a rebuild that keeps the fleet CA. Checked with xorriso, the consumer.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCli } from './helpers/cli.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/fleet-3/appliance.yaml', import.meta.url))
const HOSTS = ['mirror-a.lab.example', 'mirror-b.lab.example', 'mirror-c.lab.example']
const dir = mkdtempSync(join(tmpdir(), 'fleet-build-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const out = join(dir, 'dist')
const env = { SOURCE_DATE_EPOCH: '1700000000' }
const args = ['build', '-c', FIXTURE, '-o', out, '--allow-missing', '--cache', join(dir, 'empty-cache')]

const xorriso = (iso: string, ...cmd: string[]) => spawnSync('xorriso', ['-indev', iso, ...cmd], { encoding: 'utf8' })
const isoFiles = (iso: string) =>
  xorriso(iso, '-find', '/', '-type', 'f')
    .stdout.split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^'|'$/g, ''))

t.test('a 3-host fleet: one payload medium, a ks.cfg-only OEMDRV per host, a summary', async (t) => {
  const r = await runCli(args, { env })
  t.equal(r.code, 0, r.stderr)
  const text = r.stdout + r.stderr
  t.match(text, /HOST\s+ROLE\s+ADDRESS\s+MAC\s+DISK\s+BOOT WITH/, 'summary table printed')
  for (const h of HOSTS) t.match(text, new RegExp(`${h.replace(/\./g, '\\.')}\\s+\\S+\\s+[0-9./]+\\s+52:54:00:00:00:1\\d`))
  t.equal(readFileSync(join(out, 'fleet.txt'), 'utf8'), readFileSync(join(FIXTURE, '../expected/fleet.txt'), 'utf8'), 'fleet.txt is the golden table')

  const payload = join(out, 'payload.iso')
  t.match(xorriso(payload, '-pvd_info').stdout, /Volume Id\s*:\s*MAPAYLOAD/, 'payload medium labelled MAPAYLOAD')
  const payloadFiles = isoFiles(payload)
  t.ok(payloadFiles.includes('/appliance/SHA256SUMS'), 'payload under /appliance')

  for (const h of HOSTS) {
    const iso = join(out, 'hosts', h, 'oemdrv.iso')
    t.match(xorriso(iso, '-pvd_info').stdout, /Volume Id\s*:\s*OEMDRV/, `${h}: OEMDRV label`)
    t.same(isoFiles(iso), ['/ks.cfg'], `${h}: the OEMDRV holds only ks.cfg (the payload is stored once)`)
    const got = join(dir, `${h}.ks.cfg`)
    t.equal(spawnSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/ks.cfg', got]).status, 0, 'xorriso extracts ks.cfg')
    const ks = readFileSync(got, 'utf8')
    t.equal(ks, readFileSync(join(out, 'hosts', h, 'ks.cfg'), 'utf8'), `${h}: the medium's ks.cfg is hosts/${h}/ks.cfg`)
    t.match(ks, `--hostname=${h}`)
    t.ok(statSync(iso).size < 1024 * 1024, `${h}: OEMDRV is small (${statSync(iso).size} bytes)`)
    t.equal(statSync(join(out, 'secrets/hosts', h, 'secrets.json')).mode & 0o777, 0o600)
  }
  t.equal(statSync(join(out, 'secrets/ca.key')).mode & 0o777, 0o600, 'CA key 0600')
  t.equal(statSync(join(out, 'secrets')).mode & 0o777, 0o700)
  const sums = readFileSync(join(out, 'SHA256SUMS'), 'utf8')
  t.notMatch(sums, /secrets\//, 'secrets are not listed as outputs')
  t.match(sums, /payload\.iso/)

  const ca = readFileSync(join(out, 'secrets/ca.crt'), 'utf8')
  const again = await runCli(args, { env })
  t.equal(again.code, 0, again.stderr)
  t.equal(readFileSync(join(out, 'secrets/ca.crt'), 'utf8'), ca, 'a rebuild keeps the fleet CA')
})

t.test('fleet refuses what it does not build, before any work', async (t) => {
  const r = await runCli(['build', '-c', FIXTURE, '-o', join(dir, 'nope'), '--iso', FIXTURE, '--bundle'], { env })
  t.equal(r.code, 2)
  t.match(r.stderr, /--iso \(one remastered ISO per host\) is not available for fleets/)
  t.match(r.stderr, /bundle is not available for fleets/)
  t.match(r.stderr, /nothing was written/)
})

// A rebuild into the same output is byte-identical without --seed: the server
// certificate and key are kept in secrets/ (secrets.json, 0600) and reused
// while they fit, and reissued, with the reason in the summary, when the names
// they cover, the configured validity or the CA change, or they run out soon.
// Without a seed on purpose: with one, a reissued certificate would be the
// same bytes as a reused one and nothing here could fail.
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig, loadConfigText } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import { planSite } from '../builder/plan/site.js'
import { RENEW_BEFORE_DAYS, serverCertSummary } from '../builder/plan/pki.js'
import { SECRETS_FILE, writeStoredSecrets, type StoredSecrets } from '../builder/plan/secrets.js'
import { renderKickstart } from '../builder/render/kickstart.js'
import { runCli } from './helpers/cli.js'

const EPOCH = 1_700_000_000
const DAY = 86400
const base = mkdtempSync(join(tmpdir(), 'pki-reuse-'))
t.teardown(() => rmSync(base, { recursive: true, force: true }))

const config = (extra = '', validityDays = 365) =>
  loadConfigText(
    `apiVersion: mirror-appliance/v1
host:
  hostname: registry.lab.example
  disk: { device: vda }
  # a static install network: the CA's name constraints permit its subnet, so
  # an address added there later keeps the CA (see test/ca-constraints.test.ts)
  network: { mode: static, address: 192.0.2.10/24, gateway: 192.0.2.1, dns: [192.0.2.53] }
registry:
  tls: { validityDays: ${validityDays}${extra ? `, extraSANs: [${extra}]` : ''} }
`,
    'reuse.yaml',
    { baseDir: base },
  )

let n = 0
/** Plan once into a fresh secrets/ directory holding `stored` (none: a first build); returns the plan and what it stores. */
function planWith(stored: StoredSecrets | undefined, loaded = config(), epoch = EPOCH) {
  const dir = join(base, `secrets-${n++}`)
  if (stored) writeStoredSecrets(dir, stored)
  return planAppliance(loaded, { epoch, secretsDir: dir })
}

const first = planWith(undefined)
const second = planWith(first.stored)

t.test('a rebuild with the stored secrets reuses the server certificate and key: same kickstart', async (t) => {
  t.same(first.plan.pki.serverCertSource, { kind: 'new' })
  t.ok(first.stored.serverCertPem && first.stored.serverKeyPem, 'secrets.json keeps the certificate and key')
  t.same(second.plan.pki.serverCertSource, { kind: 'reused' })
  t.equal(second.plan.pki.serverCertPem, first.plan.pki.serverCertPem, 'same certificate, byte for byte')
  t.equal(second.plan.pki.serverKeyPem, first.plan.pki.serverKeyPem, 'same key')
  t.equal(second.plan.pki.caCertPem, first.plan.pki.caCertPem, 'same CA')
  t.equal(renderKickstart(second.plan, { source: 'cdrom' }), renderKickstart(first.plan, { source: 'cdrom' }), 'ks.cfg is byte-identical')
  t.same(second.stored, first.stored, 'and the same secrets are stored again')
  t.match(serverCertSummary(second.plan.pki), /^server certificate: reused from secrets\/ \(valid until 2024-11-13\)$/)
  t.match(serverCertSummary(first.plan.pki), /^server certificate: issued \(none in secrets\/ yet; valid until 2024-11-13\)$/)
})

t.test('a new name or address reissues it, signed by the same CA', async (t) => {
  const r = planWith(first.stored, config('mirror.lab.example, 192.0.2.7'))
  t.same(r.plan.pki.serverCertSource, { kind: 'reissued', reason: 'names changed (added mirror.lab.example, 192.0.2.7)' })
  t.not(r.plan.pki.serverKeyPem, first.plan.pki.serverKeyPem, 'a new key')
  t.equal(r.plan.pki.caCertPem, first.plan.pki.caCertPem, 'the same CA')
  const x = new X509Certificate(r.plan.pki.serverCertPem)
  t.ok(x.checkHost('mirror.lab.example') && x.checkIP('192.0.2.7'), 'the new certificate covers them')
  t.ok(x.verify(new X509Certificate(first.plan.pki.caCertPem).publicKey), 'signed by the stored CA')
  t.equal(r.stored.serverCertPem, r.plan.pki.serverCertPem, 'the new one is stored for the next build')
  t.match(serverCertSummary(r.plan.pki), /^server certificate: reissued: names changed \(added mirror\.lab\.example, 192\.0\.2\.7\)/)
  // The same names in another order: reused. A name dropped: reissued.
  t.same(
    planWith(r.stored, config('192.0.2.7, mirror.lab.example')).plan.pki.serverCertSource,
    { kind: 'reused' },
    'same names in another order',
  )
  t.same(planWith(r.stored, config('192.0.2.7')).plan.pki.serverCertSource, {
    kind: 'reissued',
    reason: 'names changed (removed mirror.lab.example)',
  })
})

t.test('another validity, another CA, a certificate near its end or a damaged key: reissued, and why', async (t) => {
  t.same(planWith(first.stored, config('', 90)).plan.pki.serverCertSource, {
    kind: 'reissued',
    reason: 'validity changed (365 -> 90 days)',
  })
  const { caCertPem: _c, caKeyPem: _k, ...noCa } = first.stored
  const newCa = planWith(noCa)
  t.same(newCa.plan.pki.serverCertSource, { kind: 'reissued', reason: 'the CA changed' })
  t.ok(
    new X509Certificate(newCa.plan.pki.serverCertPem).verify(new X509Certificate(newCa.plan.pki.caCertPem).publicKey),
    'signed by the new CA',
  )
  const end = first.plan.pki.notAfter.getTime() / 1000
  const late = planWith(first.stored, config(), end - (RENEW_BEFORE_DAYS - 1) * DAY)
  t.same(late.plan.pki.serverCertSource, { kind: 'reissued', reason: 'expires on 2024-11-13, too soon after this build' })
  t.same(
    planWith(first.stored, config(), end - (RENEW_BEFORE_DAYS + 1) * DAY).plan.pki.serverCertSource,
    { kind: 'reused' },
    `${RENEW_BEFORE_DAYS + 1} days left: still reused`,
  )
  t.same(planWith(first.stored, config(), end + DAY).plan.pki.serverCertSource, { kind: 'reissued', reason: 'expired on 2024-11-13' })
  t.same(
    planWith(first.stored, config(), EPOCH - 2 * 3600).plan.pki.serverCertSource,
    { kind: 'reissued', reason: 'not valid yet at build time (from Nov 14 21:13:20 2023 GMT)' },
    'SOURCE_DATE_EPOCH before its start',
  )
  const damaged = planWith({ ...first.stored, serverKeyPem: newCa.plan.pki.serverKeyPem })
  t.same(damaged.plan.pki.serverCertSource, { kind: 'reissued', reason: 'the stored key does not belong to the stored certificate' })
})

t.test('fleet: each host keeps its own certificate; a host whose address changes is reissued alone', async (t) => {
  const FIXTURE = fileURLToPath(new URL('./fixtures/fleet-3/', import.meta.url))
  const loaded = loadConfig(join(FIXTURE, 'appliance.yaml'))
  // secrets/ as the fleet build writes it: the CA once, each host's secrets under hosts/<hostname>/
  const store = (fleet: ReturnType<typeof planSite>) => {
    const dir = join(base, `fleet-${n++}`)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'fleet-ca.json'), JSON.stringify({ version: 1, ...fleet.sharedCa }))
    for (const m of fleet.hosts) writeStoredSecrets(join(dir, 'hosts', m.hostname), m.stored)
    return dir
  }
  const a = planSite(loaded, { epoch: EPOCH })
  const b = planSite(loaded, { epoch: EPOCH, secretsDir: store(a) })
  for (const [i, m] of b.hosts.entries()) {
    t.same(m.plan.pki.serverCertSource, { kind: 'reused' }, `${m.hostname}: reused`)
    t.equal(m.plan.pki.serverCertPem, a.hosts[i]!.plan.pki.serverCertPem)
  }
  const moved = loadConfigText(
    readFileSync(join(FIXTURE, 'appliance.yaml'), 'utf8').replace('192.0.2.12/24', '192.0.2.22/24'),
    join(FIXTURE, 'appliance.yaml'),
    { baseDir: FIXTURE },
  )
  const c = planSite(moved, { epoch: EPOCH, secretsDir: store(a) })
  t.same(
    c.hosts.map((m) => m.plan.pki.serverCertSource),
    [{ kind: 'reused' }, { kind: 'reissued', reason: 'names changed (added 192.0.2.22; removed 192.0.2.12)' }, { kind: 'reused' }],
  )
})

/** Every file under dir, relative path -> bytes. */
function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else out.set(relative(dir, p), readFileSync(p))
    }
  }
  walk(dir)
  return out
}

t.test('render twice into the same directory without --seed: every file byte-identical; a new SAN reissues', async (t) => {
  const dir = mkdtempSync(join(base, 'render-'))
  const cfg = join(dir, 'appliance.yaml')
  const text = 'apiVersion: mirror-appliance/v1\nhost: { hostname: registry.lab.example, disk: { device: vda } }\n'
  writeFileSync(cfg, text)
  const out = join(dir, 'out')
  const env = { SOURCE_DATE_EPOCH: String(EPOCH) }
  const r1 = await runCli(['render', '-c', cfg, '-o', out], { env })
  t.equal(r1.code, 0, r1.stderr)
  t.match(r1.stderr, /server certificate: issued \(none in secrets\/ yet/)
  const before = tree(out)
  const r2 = await runCli(['render', '-c', cfg, '-o', out], { env })
  t.equal(r2.code, 0, r2.stderr)
  t.match(r2.stderr, /server certificate: reused from secrets\//)
  const after = tree(out)
  t.same([...after.keys()].sort(), [...before.keys()].sort(), 'the same files')
  const differ = [...before].filter(([p, b]) => !after.get(p)?.equals(b)).map(([p]) => p)
  t.same(differ, [], 'no file differs (ks.cfg, the host files with the certificate and key, secrets/)')
  t.ok(before.has('ks.cfg'))
  t.equal(statSync(join(out, 'secrets', SECRETS_FILE)).mode & 0o777, 0o600, 'secrets.json, holding the server key, is 0600')
  t.match(readFileSync(join(out, 'secrets', SECRETS_FILE), 'utf8'), /"serverKeyPem": "-----BEGIN RSA PRIVATE KEY-----/)

  writeFileSync(cfg, text + 'registry: { tls: { extraSANs: [registry-alias.lab.example] } }\n')
  const r3 = await runCli(['render', '-c', cfg, '-o', out], { env })
  t.equal(r3.code, 0, r3.stderr)
  t.match(r3.stderr, /server certificate: reissued: names changed \(added registry-alias\.lab\.example\)/)
  t.not(readFileSync(join(out, 'ks.cfg'), 'utf8'), before.get('ks.cfg')!.toString(), 'the kickstart carries the new certificate')
})

t.test('build twice into the same directory without --seed: byte-identical media', async (t) => {
  const dir = mkdtempSync(join(base, 'build-'))
  const cfg = join(dir, 'appliance.yaml')
  writeFileSync(cfg, 'apiVersion: mirror-appliance/v1\nhost: { hostname: registry.lab.example, disk: { device: vda } }\n')
  const out = join(dir, 'dist')
  // The cheapest medium that carries the kickstart: oemdrv.iso, with an empty image cache.
  const args = ['build', '-c', cfg, '-o', out, '--oemdrv', '--allow-missing', '--cache', join(dir, 'cache')]
  const env = { SOURCE_DATE_EPOCH: String(EPOCH) }
  const b1 = await runCli(args, { env })
  t.equal(b1.code, 0, b1.stderr)
  const sums = readFileSync(join(out, 'SHA256SUMS'), 'utf8')
  const iso = readFileSync(join(out, 'oemdrv.iso'))
  const b2 = await runCli(args, { env })
  t.equal(b2.code, 0, b2.stderr)
  t.match(b2.stderr, /^ {2}server certificate: reused from secrets\//m, 'the summary says so')
  t.ok(readFileSync(join(out, 'oemdrv.iso')).equals(iso), 'oemdrv.iso is byte-identical')
  t.equal(readFileSync(join(out, 'SHA256SUMS'), 'utf8'), sums, 'and so is every output SHA256SUMS lists')
})

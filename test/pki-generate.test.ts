// The generated PKI, judged by openssl: the chain verifies, the server
// certificate carries every name and address clients use, the CA is a CA, and
// the same seed and epoch give the same bytes.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { loadConfigText } from '../builder/config/load.js'
import forge from 'node-forge'
import { caSigner, planPki, MAX_VALIDITY_DAYS } from '../builder/plan/pki.js'
import { seededRng, systemRng } from '../builder/plan/random.js'
import { UserError } from '../builder/errors.js'

const EPOCH = 1_700_000_000
const dir = mkdtempSync(join(tmpdir(), 'pki-gen-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function config(registryExtra = '', network = '') {
  return loadConfigText(
    `apiVersion: mirror-appliance/v1
host:
  hostname: registry.lab.example
  disk: { device: vda }
${network}
registry:
  flavor: distribution
${registryExtra}
`,
    'test.yaml',
    { baseDir: dir },
  ).config
}

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { encoding: 'utf8', input })
}
function write(name: string, text: string): string {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}

const staticNet = `  network:
    mode: static
    address: 192.0.2.10/24
    gateway: 192.0.2.1
    dns: [192.0.2.53]`
const cfg = config(
  `  tls:
    validityDays: 400
    extraSANs: [mirror.alias.example, 198.51.100.7]`,
  staticNet,
)
const pki = planPki({ config: cfg, rng: seededRng('pki-test'), epoch: EPOCH, configDir: dir })

t.test('openssl verifies the server certificate against the CA, for TLS servers', async (t) => {
  const ca = write('ca.crt', pki.caCertPem)
  const srv = write('srv.crt', pki.serverChainPem)
  const out = openssl(['verify', '-attime', String(EPOCH + 60), '-purpose', 'sslserver', '-CAfile', ca, srv])
  t.match(out, /srv\.crt: OK/)
  // and not against some other CA
  const other = planPki({ config: cfg, rng: seededRng('other'), epoch: EPOCH, configDir: dir })
  const r = spawnSync('openssl', ['verify', '-attime', String(EPOCH + 60), '-CAfile', write('other.crt', other.caCertPem), srv], {
    encoding: 'utf8',
  })
  t.not(r.status, 0, 'a different CA does not verify it')
})

t.test('server certificate: SANs, EKU, key usage, validity, key pair', async (t) => {
  const text = openssl(['x509', '-noout', '-text'], pki.serverCertPem)
  t.match(text, /DNS:registry\.lab\.example/)
  t.match(text, /DNS:registry(,|\n)/)
  t.match(text, /DNS:mirror\.alias\.example/)
  t.match(text, /IP Address:192\.0\.2\.10/)
  t.match(text, /IP Address:198\.51\.100\.7/)
  t.match(text, /Extended Key Usage:\s*\n\s*TLS Web Server Authentication/)
  t.match(text, /Subject Key Identifier/)
  t.match(text, /Authority Key Identifier/)
  t.match(text, /CA:FALSE/)
  t.same(pki.dnsNames, ['registry.lab.example', 'registry', 'mirror.alias.example'])
  t.same(pki.ipAddresses, ['192.0.2.10', '198.51.100.7'])
  const x = new X509Certificate(pki.serverCertPem)
  t.ok(x.checkHost('registry.lab.example'))
  t.ok(x.checkIP('192.0.2.10'))
  t.ok(x.checkPrivateKey(createPrivateKey(pki.serverKeyPem)), 'server key matches')
  const days = (new Date(x.validTo).getTime() - new Date(x.validFrom).getTime()) / 86400e3
  t.equal(days, 400)
  t.ok(new Date(x.validFrom).getTime() <= EPOCH * 1000, 'valid at the build epoch')
  t.equal(pki.notAfter.getTime(), new Date(x.validTo).getTime())
  t.match(openssl(['rsa', '-noout', '-text'], pki.serverKeyPem), /Private-Key: \(2048 bit/)
  t.equal(openssl(['rsa', '-check', '-noout'], pki.serverKeyPem).trim(), 'RSA key ok')
})

t.test('CA certificate: critical CA:TRUE, keyCertSign/cRLSign, 10 years, 3072-bit key', async (t) => {
  const text = openssl(['x509', '-noout', '-text'], pki.caCertPem)
  t.match(text, /X509v3 Basic Constraints: critical\s*\n\s*CA:TRUE/)
  t.match(text, /X509v3 Key Usage: critical\s*\n\s*Certificate Sign, CRL Sign/)
  t.match(text, /Public-Key: \(3072 bit\)/)
  const x = new X509Certificate(pki.caCertPem)
  t.equal((new Date(x.validTo).getTime() - new Date(x.validFrom).getTime()) / 86400e3, 3650)
  t.ok(x.checkPrivateKey(createPrivateKey(pki.caKeyPem!)))
  t.equal(openssl(['rsa', '-check', '-noout'], pki.caKeyPem!).trim(), 'RSA key ok')
})

t.test('deterministic for the same seed and epoch; different otherwise', async (t) => {
  const again = planPki({ config: cfg, rng: seededRng('pki-test'), epoch: EPOCH, configDir: dir })
  t.same(again, pki)
  const later = planPki({ config: cfg, rng: seededRng('pki-test'), epoch: EPOCH + 1, configDir: dir })
  t.not(later.serverCertPem, pki.serverCertPem)
  const other = planPki({ config: cfg, rng: seededRng('pki-test-2'), epoch: EPOCH, configDir: dir })
  t.not(other.caKeyPem, pki.caKeyPem)
  t.not(other.serverKeyPem, pki.serverKeyPem)
  const serial = (pem: string) => new X509Certificate(pem).serialNumber
  t.not(serial(other.serverCertPem), serial(pki.serverCertPem))
})

t.test('an existing CA is reused: same CA, new server cert still verifies', async (t) => {
  const next = planPki({
    config: cfg,
    rng: seededRng('second-build'),
    epoch: EPOCH + 86400,
    configDir: dir,
    existing: { caCertPem: pki.caCertPem, caKeyPem: pki.caKeyPem! },
  })
  t.equal(next.caCertPem, pki.caCertPem)
  t.equal(next.caKeyPem, pki.caKeyPem)
  t.not(next.serverKeyPem, pki.serverKeyPem)
  const out = openssl([
    'verify',
    '-attime',
    String(EPOCH + 86400 + 60),
    '-CAfile',
    write('ca-old.crt', pki.caCertPem),
    write('srv2.crt', next.serverCertPem),
  ])
  t.match(out, /OK/)
  const other = planPki({ config: cfg, rng: seededRng('other'), epoch: EPOCH, configDir: dir })
  t.throws(
    () =>
      planPki({
        config: cfg,
        rng: seededRng('x'),
        epoch: EPOCH,
        configDir: dir,
        existing: { caCertPem: pki.caCertPem, caKeyPem: other.caKeyPem! },
      }),
    { name: 'UserError', message: /key does not belong to the certificate/ },
  )
  t.throws(
    () =>
      planPki({
        config: cfg,
        rng: seededRng('x'),
        epoch: EPOCH + 3651 * 86400,
        configDir: dir,
        existing: { caCertPem: pki.caCertPem, caKeyPem: pki.caKeyPem! },
      }),
    { name: 'UserError', message: /expired/ },
  )
  t.throws(
    () =>
      planPki({ config: cfg, rng: seededRng('x'), epoch: EPOCH, configDir: dir, existing: { caCertPem: 'garbage', caKeyPem: 'garbage' } }),
    { name: 'UserError', message: /cannot be read/ },
  )
})

t.test('a server certificate never outlives its CA', async (t) => {
  const late = planPki({
    config: config('  tls: { validityDays: 825 }'),
    rng: seededRng('late'),
    epoch: EPOCH + 3600 * 86400,
    configDir: dir,
    existing: { caCertPem: pki.caCertPem, caKeyPem: pki.caKeyPem! },
  })
  t.equal(late.notAfter.getTime(), new Date(new X509Certificate(pki.caCertPem).validTo).getTime())
})

t.test('validity over 825 days is refused', async (t) => {
  const c = config()
  c.registry.tls.validityDays = MAX_VALIDITY_DAYS + 1
  t.throws(() => planPki({ config: c, rng: seededRng('x'), epoch: EPOCH, configDir: dir }), UserError)
  t.equal(config().registry.tls.validityDays, 730, 'default 730 days')
})

t.test('without a seed, native key generation makes valid, different keys', async (t) => {
  const c = config()
  const a = planPki({ config: c, rng: systemRng, epoch: EPOCH, configDir: dir })
  const b = planPki({ config: c, rng: systemRng, epoch: EPOCH, configDir: dir })
  t.not(a.caKeyPem, b.caKeyPem)
  t.match(
    openssl(['verify', '-attime', String(EPOCH + 60), '-CAfile', write('ca-n.crt', a.caCertPem), write('srv-n.crt', a.serverCertPem)]),
    /OK/,
  )
  t.match(openssl(['rsa', '-noout', '-text'], a.caKeyPem!), /Private-Key: \(3072 bit/)
})

t.test('OpenSSL signs certificates byte for byte as forge would (same seeded output as before)', async (t) => {
  // The same certificate signed by forge's own RSA code and by caSigner: PKCS#1 v1.5 is deterministic.
  const caKey = forge.pki.privateKeyFromPem(pki.caKeyPem!)
  const unsigned = () => {
    const c = forge.pki.certificateFromPem(pki.serverCertPem)
    c.setExtensions(c.extensions) // keep every field; sign() rebuilds the TBS from them
    return c
  }
  const byForge = unsigned()
  byForge.sign(caKey, forge.md.sha256.create())
  const byOpenssl = unsigned()
  byOpenssl.sign(caSigner(pki.caKeyPem!), forge.md.sha256.create())
  t.equal(forge.pki.certificateToPem(byOpenssl), forge.pki.certificateToPem(byForge))
  t.equal(forge.pki.certificateToPem(byOpenssl), pki.serverCertPem, 'and the same bytes the plan wrote')
  t.throws(() => unsigned().sign(caSigner(pki.caKeyPem!), forge.md.sha1.create()), /only sha256/)
})

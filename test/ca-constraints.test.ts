// Issue 18 point 6: a generated CA signs server certificates only (pathlen:0)
// and only for this appliance's names (nameConstraints), judged by OpenSSL:
// `openssl x509 -text` shows the profile, `openssl verify` refuses a
// certificate the CA signs for a name outside, or one signed by a CA it made.
// A CA kept from an older build stays as it is (no forced re-trust) and the
// summary says how to rotate it; a name outside a kept CA's scope stops the
// build instead of issuing a certificate clients refuse.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import forge from 'node-forge'
import { loadConfigText } from '../builder/config/load.js'
import { caScope, caSigner, caSummary, planPki } from '../builder/plan/pki.js'
import { seededRng } from '../builder/plan/random.js'

const EPOCH = 1_700_000_000
const dir = mkdtempSync(join(tmpdir(), 'ca-constraints-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function config(hostname: string, tls = '', network = '') {
  return loadConfigText(
    `apiVersion: mirror-appliance/v1\nhost:\n  hostname: ${hostname}\n  disk: { device: vda }\n${network}registry:\n  flavor: distribution\n${tls}`,
    'test.yaml',
    { baseDir: dir },
  ).config
}
const staticNet = '  network:\n    mode: static\n    address: 192.0.2.10/24\n    gateway: 192.0.2.1\n    dns: [192.0.2.53]\n'
const cfg = config('registry.lab.example', '  tls:\n    extraSANs: [localhost, 198.51.100.7]\n', staticNet)
const pki = planPki({ config: cfg, rng: seededRng('ca-constraints'), epoch: EPOCH, configDir: dir })

const write = (name: string, text: string) => {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}
const openssl = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
/** openssl verify at build time (the plan's certificates) or now (the ones openssl signs below, valid from now). */
const verifyAt = (at: 'build' | 'now', ...args: string[]) =>
  spawnSync('openssl', ['verify', ...(at === 'build' ? ['-attime', String(EPOCH + 60)] : []), ...args], { encoding: 'utf8', cwd: dir })
const verify = (...args: string[]) => verifyAt('build', ...args)
const verifyNow = (...args: string[]) => verifyAt('now', ...args)
const caCrt = write('ca.crt', pki.caCertPem)
const caKey = write('ca.key', pki.caKeyPem!)

/** A certificate the CA (or another issuer) signs with openssl, for these SANs; ca true makes an intermediate. */
function sign(name: string, sans: string, issuer: { crt: string; key: string }, ca = false): { crt: string; key: string } {
  const key = join(dir, `${name}.key`)
  openssl(['genrsa', '-out', key, '2048'])
  const csr = join(dir, `${name}.csr`)
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-out', csr])
  const ext = write(
    `${name}.cnf`,
    ca
      ? 'basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign\n'
      : `basicConstraints = CA:FALSE\nsubjectAltName = ${sans}\n`,
  )
  const crt = join(dir, `${name}.crt`)
  openssl([
    'x509',
    '-req',
    '-sha256',
    '-in',
    csr,
    '-CA',
    issuer.crt,
    '-CAkey',
    issuer.key,
    '-set_serial',
    '7',
    '-days',
    '30',
    '-extfile',
    ext,
    '-out',
    crt,
  ])
  return { crt, key }
}
const ca = { crt: caCrt, key: caKey }

t.test('the CA as openssl reads it: pathlen:0 and name constraints for its names', async (t) => {
  const text = openssl(['x509', '-in', caCrt, '-noout', '-text'])
  t.match(text, /X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0/)
  t.match(text, /X509v3 Name Constraints: critical/)
  const permitted = text.split('Permitted:')[1]?.split('X509v3')[0] ?? ''
  t.same(
    permitted
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
    ['DNS:lab.example', 'DNS:localhost', 'DNS:registry', 'IP:192.0.2.0/255.255.255.0', 'IP:198.51.100.7/255.255.255.255'],
    'the parent domain of the host name, the short name and localhost exactly, the install subnet, the extra address',
  )
  t.same(caScope([cfg]), { dnsDomains: ['lab.example', 'localhost', 'registry'], ipv4Ranges: ['192.0.2.0/24', '198.51.100.7/32'] })
  t.equal(pki.caProfile, 'constrained')
  t.equal(caSummary(pki), null, 'nothing to say about a new CA')
})

t.test('openssl verify: inside the constraints passes, outside fails', async (t) => {
  const srv = write('srv.crt', pki.serverCertPem)
  t.equal(verify('-CAfile', caCrt, srv).status, 0, 'the build’s own server certificate')
  const inside = sign('inside', 'DNS:other.lab.example, DNS:registry, IP:192.0.2.99', ca)
  const ok = verifyNow('-CAfile', caCrt, inside.crt)
  t.equal(ok.status, 0, `a new alias in the same domain and an address on the install network: ${ok.stdout}${ok.stderr}`)
  for (const [name, sans] of [
    ['foreign-dns', 'DNS:quay.io'],
    ['sibling-domain', 'DNS:registry.other.example'],
    ['foreign-ip', 'IP:203.0.113.5'],
    ['mixed', 'DNS:registry.lab.example, DNS:evil.example'],
  ] as const) {
    const c = sign(name, sans, ca)
    const r = verifyNow('-CAfile', caCrt, c.crt)
    t.not(r.status, 0, `${sans}: refused`)
    t.match(r.stdout + r.stderr, /name constraint|permitted subtree|excluded subtree/i, `${sans}: for its name constraints`)
  }
})

t.test('pathlen:0: a CA signed by the CA cannot issue a trusted certificate', async (t) => {
  const sub = sign('sub-ca', '', ca, true)
  const leaf = sign('leaf', 'DNS:registry.lab.example', sub)
  const r = verifyNow('-CAfile', caCrt, '-untrusted', sub.crt, leaf.crt)
  t.not(r.status, 0, 'refused')
  t.match(r.stdout + r.stderr, /path length constraint exceeded/)
})

t.test('no address configured: the CA may sign for no address at all', async (t) => {
  const c = config('mirror.example.internal')
  const p = planPki({ config: c, rng: seededRng('ca-no-ip'), epoch: EPOCH, configDir: dir })
  const crt = write('noip-ca.crt', p.caCertPem)
  t.match(openssl(['x509', '-in', crt, '-noout', '-text']), /Excluded:\s+IP:0\.0\.0\.0\/0\.0\.0\.0\s+IP:0:0:0:0:0:0:0:0\/0:0:0:0:0:0:0:0/)
  const ip = sign('noip-leaf', 'DNS:mirror.example.internal, IP:10.0.0.1', { crt, key: write('noip-ca.key', p.caKeyPem!) })
  t.not(verifyNow('-CAfile', crt, ip.crt).status, 0, 'a certificate with an address is refused')
  t.equal(verify('-CAfile', crt, write('noip-srv.crt', p.serverCertPem)).status, 0, 'its own server certificate is not')
})

t.test('the fleet CA covers every host', async (t) => {
  const hosts = [config('mirror-a.lab.example'), config('mirror-b.site2.example'), config('mirror-c.lab.example')]
  t.same(caScope(hosts).dnsDomains, ['lab.example', 'mirror-a', 'mirror-b', 'mirror-c', 'site2.example'])
})

t.test('a CA kept from an older build: unchanged, the summary says how to rotate', async (t) => {
  // an old-style CA: CA:TRUE, no pathlen, no name constraints
  const key = forge.pki.privateKeyFromPem(pki.caKeyPem!)
  const old = forge.pki.createCertificate()
  old.publicKey = forge.pki.setRsaPublicKey(key.n, key.e)
  old.serialNumber = '41'
  old.validity.notBefore = new Date((EPOCH - 3600) * 1000)
  old.validity.notAfter = new Date((EPOCH + 3650 * 86400) * 1000)
  old.setSubject([{ shortName: 'CN', value: 'old CA' }])
  old.setIssuer([{ shortName: 'CN', value: 'old CA' }])
  old.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, critical: true },
  ])
  old.sign(caSigner(pki.caKeyPem!), forge.md.sha256.create())
  const oldPem = forge.pki.certificateToPem(old)
  const p = planPki({
    config: cfg,
    rng: seededRng('ca-old'),
    epoch: EPOCH,
    configDir: dir,
    existing: { caCertPem: oldPem, caKeyPem: pki.caKeyPem! },
  })
  t.equal(p.caCertPem, oldPem, 'the same CA, byte for byte: nobody must trust a new one')
  t.equal(p.caProfile, 'legacy')
  t.match(
    caSummary(p),
    /predates|made before CAs got pathlen:0 and name constraints.*To rotate: remove secrets\/ca\.crt and secrets\/ca\.key, rebuild/,
  )
})

t.test('a kept CA and a new name outside its constraints: the build stops and says how to rotate', async (t) => {
  const more = config('registry.lab.example', '  tls:\n    extraSANs: [localhost, 198.51.100.7, mirror.elsewhere.example]\n', staticNet)
  t.throws(
    () =>
      planPki({
        config: more,
        rng: seededRng('ca-more'),
        epoch: EPOCH,
        configDir: dir,
        existing: { caCertPem: pki.caCertPem, caKeyPem: pki.caKeyPem! },
      }),
    {
      name: 'UserError',
      message: /mirror\.elsewhere\.example is outside the names the CA in secrets\/ may sign for/,
    },
  )
  const same = config('registry.lab.example', '  tls:\n    extraSANs: [localhost, 198.51.100.7, alias.lab.example]\n', staticNet)
  const p = planPki({
    config: same,
    rng: seededRng('ca-same'),
    epoch: EPOCH,
    configDir: dir,
    existing: { caCertPem: pki.caCertPem, caKeyPem: pki.caKeyPem! },
  })
  t.equal(p.caCertPem, pki.caCertPem, 'an alias in the same domain: the CA is kept')
  t.equal(verify('-CAfile', caCrt, write('alias.crt', p.serverCertPem)).status, 0, 'and its new server certificate verifies')
})

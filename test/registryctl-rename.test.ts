// Issue 19 point 6: `mirror-registryctl install --quayHostname HOST[:PORT]`
// with another name (and port) than the bundle was built for, as Red Hat's
// mirror-registry takes it, without a rebuild: the server certificate is
// issued for the new name by the bundle's CA when its key is given (--caKey)
// or on the host (/etc/mirror-appliance/ca.key), else by a new CA; facts,
// Quay's SERVER_HOSTNAME, pull secret, credentials, published port, firewall
// and status follow the new name, and upgrade carries the rename over.
//
// The distribution tests run the REAL curl of first boot's health check (and
// of status) against an HTTPS stand-in that serves, at each handshake, the
// certificate install has just put in place (so it passes only when that
// certificate names the new host and chains to the CA install placed), and
// the test does a real TLS handshake of its own. Everything else is the
// recording fakes of test/helpers/ctl-harness.ts. What cannot be proven
// here: Quay itself answering with the new SERVER_HOSTNAME in its token
// realm (no Quay image runs here); its config.yaml is checked as a file.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkServerIdentity, connect } from 'node:tls'
import { nextReleaseBundle, testPlan } from './helpers/bundle-fixture.js'
import { ctlHarness, type CtlHarness } from './helpers/ctl-harness.js'
import { httpsStandIn } from './helpers/https-standin.js'
import { freePort } from './helpers/net.js'
import { userCa } from './helpers/user-ca.js'
import { factsOf } from '../builder/registry/facts.js'
import type { Plan } from '../builder/plan/types.js'

const OLD = 'registry.lab.example:8443'
const NEW_HOST = 'mirror.lab.example' // inside the bundle CA's name constraints (lab.example)
const HEALTH = { MA_HEALTH_TIMEOUT: '5', MA_POLL_INTERVAL: '0.2' }
const CTL = 'usr/local/bin/mirror-registryctl'
// the refusal install gave before: "--quayHostname X: this bundle was built for Y (…); rebuild with host.hostname set to it"
const REFUSAL = /this bundle was built for|rebuild with host\.hostname set to it/

function scratch(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'rename-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

/** The bundle CA's key (the build's secrets/ca.key) in a 0600 file */
function caKeyFile(t: Test, plan: Plan): string {
  const f = join(scratch(t), 'ca.key')
  writeFileSync(f, plan.pki.caKeyPem!, { mode: 0o600 })
  return f
}

/** A distribution bundle built for registry.lab.example:8443, the real curl, and a stand-in on a free port serving what install places */
async function realHarness(t: Test): Promise<CtlHarness & { plan: Plan; port: number }> {
  const port = await freePort()
  const plan = testPlan({ flavor: 'distribution', epoch: Math.floor(Date.now() / 1000) - 120, seed: 'rename' })
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  rmSync(join(h.base, 'bin/curl'))
  const f = factsOf(plan.host)
  await httpsStandIn(t, join(h.root, f.certFiles[0]!), join(h.root, f.keyFiles[0]!), port)
  return Object.assign(h, { plan, port })
}

/** A real TLS handshake with the stand-in as a client that trusts only `caPem`; the peer certificate and whether it was authorized for NEW_HOST */
function handshake(port: number, caPem: string): Promise<{ authorized: boolean; error: string; subject: string; san: string }> {
  return new Promise((res, rej) => {
    const s = connect({ host: '127.0.0.1', port, servername: NEW_HOST, ca: caPem, rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate()
      // Node checks the chain here; the name as clients do (tls.checkServerIdentity)
      const nameError = s.authorized ? (checkServerIdentity(NEW_HOST, c)?.message ?? '') : ''
      res({
        authorized: s.authorized && !nameError,
        error: String(s.authorizationError ?? nameError),
        subject: [c.subject?.CN ?? ''].flat().join(','),
        san: c.subjectaltname ?? '',
      })
      s.end()
    })
    s.on('error', rej)
  })
}

/** host.env's facts as bash reads them */
function facts(h: CtlHarness, ...names: string[]): Record<string, string> {
  // each NAME as "${NAME[*]}" (a scalar is its own first element)
  const script = '. "$1"; shift; for n; do all="$n[*]"; printf "%s=%s\\n" "$n" "${!all-}"; done'
  const r = spawnSync('bash', ['-c', script, 'facts', join(h.root, 'etc/mirror-appliance/host.env'), ...names], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(r.stderr)
  return Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  )
}

const verifies = (caFile: string, cert: string) =>
  spawnSync('openssl', ['verify', '-CAfile', caFile, cert], { encoding: 'utf8' }).status === 0

/** Every file under dir (recursively) */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))
}

t.test(
  '--quayHostname NEW:PORT with --caKey: certificate from the bundle CA for the new name, served and checked by the real curl',
  async (t) => {
    const h = await realHarness(t)
    const address = `${NEW_HOST}:${h.port}`
    const key = caKeyFile(t, h.plan)
    const r = h.run(['install', '--quayHostname', address, '--caKey', key], HEALTH)
    t.equal(r.status, 0, r.out)
    t.notMatch(r.out, REFUSAL, 'the old refusal is gone')
    t.match(
      r.out,
      new RegExp(`healthy: https://${address.replaceAll('.', '\\.')}/v2/ answered 401`),
      "first boot's real health check reached the new name",
    )
    t.match(r.out, /signed by the bundle's CA with the key/)
    t.notMatch(r.out, /NEW CA/)

    // the certificate as served: the new name, chained to the bundle's CA
    const bundleCa = h.plan.pki.caCertPem
    const hs = await handshake(h.port, bundleCa)
    t.ok(hs.authorized, `a client trusting only the bundle's CA accepts the served certificate for ${NEW_HOST}: ${hs.error}`)
    t.equal(hs.subject, NEW_HOST)
    // the new short name "mirror" is outside the bundle CA's constraints (lab.example, registry): left out, and said
    t.equal(hs.san, `DNS:${NEW_HOST}`)
    t.match(r.out, /the certificate leaves out the name mirror: the bundle's CA may sign only for lab\.example registry/)
    const f = factsOf(h.plan.host)
    for (const c of f.caFiles.filter((p) => !p.includes('certs.d'))) t.equal(h.read(c.slice(1)), bundleCa, `${c}: still the bundle's CA`)

    // facts
    const got = facts(h, 'REGISTRY_HOST', 'SHORT_NAME', 'PORT', 'REGISTRY_ADDRESS', 'FIREWALL_PORTS', 'SAN_DNS', 'CA_FILES', 'RENAMED_FROM')
    t.same(
      { ...got, CA_FILES: undefined },
      {
        REGISTRY_HOST: NEW_HOST,
        SHORT_NAME: 'mirror',
        PORT: String(h.port),
        REGISTRY_ADDRESS: address,
        FIREWALL_PORTS: `${h.port}/tcp`,
        SAN_DNS: NEW_HOST,
        RENAMED_FROM: OLD,
        CA_FILES: undefined,
      },
    )
    t.match(got.CA_FILES, `/etc/containers/certs.d/${address}/ca.crt`)
    t.notMatch(got.CA_FILES, ':8443/')
    // podman's per-registry trust: the new host:port, the old one gone
    t.equal(h.read(`etc/containers/certs.d/${address}/ca.crt`), bundleCa)
    t.notOk(existsSync(join(h.root, `etc/containers/certs.d/${OLD}`)), 'no certs.d for the old address')

    // what clients are given
    const ps = JSON.parse(h.read('root/mirror-appliance/pull-secret.json'))
    t.same(Object.keys(ps.auths), [address], 'the pull secret names the new host:port')
    const creds = h.read('root/mirror-appliance/credentials.txt')
    t.match(creds, new RegExp(`^URL: +https://${address}$`, 'm'))
    t.match(creds, new RegExp(`^Log in: +podman login ${address}$`, 'm'))
    t.notMatch(creds, OLD)
    t.match(h.read('etc/motd.d/mirror-appliance'), `https://${address}`)
    t.match(h.read('var/lib/mirror-registry/registry/config.yml'), `realm: "${NEW_HOST} (mirror-appliance)"`)

    // the port: published, opened
    const unit = h.read('etc/containers/systemd/registry.container')
    t.match(unit, new RegExp(`^PublishPort=${h.port}:5000$`, 'm'))
    t.notMatch(unit, /PublishPort=8443/)
    t.ok(h.calls().includes(`firewall-cmd --quiet --permanent --add-port=${h.port}/tcp`), 'firewall opens the new port')
    t.notOk(h.calls().includes('firewall-cmd --quiet --permanent --add-port=8443/tcp'), 'and not the old one')
    t.ok(h.calls().includes(`ss -H -ltn sport = :${h.port}`), 'preflight checks the new port is free')
    t.ok(h.calls().includes(`getent hosts ${NEW_HOST}`), 'preflight checks the new name resolves')

    // the CA key reaches no file on the host
    const keyPem = h.plan.pki.caKeyPem!.trim()
    t.notOk(
      filesUnder(h.root).some((p) => statSync(p).size < 1_000_000 && readFileSync(p, 'utf8').includes(keyPem)),
      'the CA key is in no file install wrote',
    )

    // day 2: status (real curl) names the new address and finds it healthy
    const st = h.run(['status'], HEALTH, join(h.root, CTL))
    t.match(st.out, new RegExp(`^registry: +https://${address.replaceAll('.', '\\.')} \\(distribution`, 'm'))
    t.match(st.out, new RegExp(`^health: +ok \\(https://${address.replaceAll('.', '\\.')}/v2/`, 'm'))
  },
)

t.test('--quayHostname NEW:PORT without a CA key: a new CA signs it, install says loudly that clients must trust it', async (t) => {
  const h = await realHarness(t)
  const address = `${NEW_HOST}:${h.port}`
  const r = h.run(['install', `--quayHostname=${address}`], HEALTH)
  t.equal(r.status, 0, r.out)
  t.notMatch(r.out, REFUSAL)
  t.match(r.out, /warning: \*\*\* The registry was renamed to .* NEW CA\. Every client .* must trust \/root\/mirror-appliance\/ca\.crt/)
  t.match(r.out, new RegExp(`healthy: https://${address.replaceAll('.', '\\.')}/v2/ answered 401`))
  const newCa = h.read('root/mirror-appliance/ca.crt')
  t.not(newCa, h.plan.pki.caCertPem, 'the CA handed to clients is a new one')
  const byNew = await handshake(h.port, newCa)
  t.ok(byNew.authorized, `a client trusting the new CA accepts the served certificate for ${NEW_HOST}: ${byNew.error}`)
  const byBundle = await handshake(h.port, h.plan.pki.caCertPem)
  t.notOk(byBundle.authorized, "a client trusting only the bundle's CA refuses it")
  for (const c of factsOf(h.plan.host).caFiles.filter((p) => !p.includes('certs.d'))) t.equal(h.read(c.slice(1)), newCa, `${c}: the new CA`)
  t.notOk(existsSync(join(h.root, 'etc/mirror-appliance/ca.key')), 'the new CA key is not kept')
})

t.test('quay: the CA key on the host is used; SERVER_HOSTNAME, pull secret, both unit files and day 2 follow the new name', async (t) => {
  const plan = testPlan()
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  // the administrator opted in to renewals by copying the build's CA key
  mkdirSync(join(h.root, 'etc/mirror-appliance'), { recursive: true })
  writeFileSync(join(h.root, 'etc/mirror-appliance/ca.key'), plan.pki.caKeyPem!, { mode: 0o600 })
  const address = `${NEW_HOST}:5443`
  // upper case, as people type names: DNS names are case-insensitive
  const r = h.run(['install', '--quayHostname', address.toUpperCase()])
  t.equal(r.status, 0, r.out)
  t.notMatch(r.out, REFUSAL)
  t.match(r.out, /signed by the bundle's CA with the key \S*\/etc\/mirror-appliance\/ca\.key/)
  t.match(h.read('var/lib/mirror-registry/quay-config/config.yaml'), /^SERVER_HOSTNAME: "mirror\.lab\.example:5443"$/m)
  const cert = join(h.root, 'var/lib/mirror-registry/quay-config/ssl.cert')
  const bundleCa = join(h.bundleDir, 'ca.crt')
  t.ok(verifies(bundleCa, cert), "the new certificate chains to the bundle's CA")
  const names = spawnSync('openssl', ['x509', '-in', cert, '-noout', '-checkhost', NEW_HOST], { encoding: 'utf8' }).stdout
  t.match(names, 'does match', `it names ${NEW_HOST}`)
  t.same(Object.keys(JSON.parse(h.read('root/mirror-appliance/pull-secret.json')).auths), [address])
  // the live unit published on loopback until the init user existed, then the open one: both on the new port
  t.match(h.read('etc/containers/systemd/quay-app.container'), /^PublishPort=5443:8443$/m)
  t.match(h.read('etc/mirror-appliance/open-units/quay-app.container'), /^PublishPort=5443:8443$/m)
  t.ok(
    h
      .calls()
      .some((c) => c.startsWith('curl ') && c.includes(`--resolve ${NEW_HOST}:5443:127.0.0.1`) && c.includes('/api/v1/user/initialize')),
    'first boot makes the init user at the new address',
  )
  t.ok(
    h.calls().some((c) => c.startsWith('skopeo copy') && c.endsWith(`docker://${address}/ocp/release1:4.14.1`)),
    'content pushed to it',
  )
  const st = h.run(['status'], {}, join(h.root, CTL))
  t.match(st.out, /^registry: +https:\/\/mirror\.lab\.example:5443 \(quay/m)

  // rotate-cert afterwards: for the new name
  const rot = h.run(['rotate-cert'], {}, join(h.root, CTL))
  t.equal(rot.status, 0, rot.out)
  t.match(spawnSync('openssl', ['x509', '-in', cert, '-noout', '-checkhost', NEW_HOST], { encoding: 'utf8' }).stdout, 'does match')

  // upgrade with a bundle built for the old name (the same config): the rename is carried over
  const nb = await nextReleaseBundle(h.base)
  const up = h.run(['upgrade', nb.dir], {}, join(h.root, CTL))
  t.equal(up.status, 0, up.out)
  t.match(
    up.out,
    /was built for registry\.lab\.example:8443, which install renamed to mirror\.lab\.example:5443 here: the new release keeps/,
  )
  t.match(h.read('etc/containers/systemd/quay-app.container'), /^PublishPort=5443:8443$/m, 'the new units publish the renamed port')
  t.match(h.read('etc/containers/systemd/quay-app.container'), nb.refs.at(-1)!.split('@')[1]!, "and run the new release's image")
  t.same(facts(h, 'REGISTRY_ADDRESS', 'RENAMED_FROM'), { REGISTRY_ADDRESS: address, RENAMED_FROM: OLD }, "the new release's facts renamed")
  t.match(h.run(['status'], {}, join(h.root, CTL)).out, /^registry: +https:\/\/mirror\.lab\.example:5443 \(quay, mirror-appliance 0\.2/m)

  // uninstall follows the new name too: its certs.d directories and firewall port go
  const before = h.calls().length
  const un = h.run(['uninstall', '--yes'], {}, join(h.root, CTL))
  t.equal(un.status, 0, un.out)
  t.notOk(existsSync(join(h.root, `etc/containers/certs.d/${address}`)), 'the new certs.d directory removed')
  t.ok(h.calls().slice(before).includes('firewall-cmd --quiet --permanent --remove-port=5443/tcp'), 'the new port closed')
})

t.test('upgrade with a bundle built for a third name: refused, naming both and the fix', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  t.equal(h.run(['install', '--quayHostname', NEW_HOST]).status, 0)
  t.equal(facts(h, 'REGISTRY_ADDRESS').REGISTRY_ADDRESS, `${NEW_HOST}:8443`, 'without :PORT the bundle port stays')
  const nb = await nextReleaseBundle(h.base)
  // as if built for yet another name
  for (const p of ['bundle.env'])
    writeFileSync(join(nb.dir, p), readFileSync(join(nb.dir, p), 'utf8').replace(/^HOSTNAME=.*$/m, 'HOSTNAME=other.lab.example'))
  const up = h.run(['upgrade', nb.dir], {}, join(h.root, CTL))
  t.equal(up.status, 1, up.out)
  t.match(
    up.out,
    /was built for other\.lab\.example:8443, but this registry is mirror\.lab\.example:8443 \(renamed from registry\.lab\.example:8443 at install\).*rebuild the bundle with host\.hostname: mirror\.lab\.example.*or use one built for registry\.lab\.example:8443; nothing was changed/,
  )
})

t.test('--quayHostname with --sslCert: the certificate must name the NEW host (preflight)', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  const oldCa = userCa(scratch(t), 'registry.lab.example')
  const bad = h.run(['install', '--quayHostname', NEW_HOST, '--sslCert', oldCa.cert, '--sslKey', oldCa.key, '--sslCa', oldCa.ca])
  t.equal(bad.status, 1, bad.out)
  t.match(bad.out, new RegExp(`preflight: certificate \\S+ does not cover ${NEW_HOST.replaceAll('.', '\\.')}`))
  t.notOk(existsSync(join(h.root, 'etc/mirror-appliance/host.env')), 'nothing placed')
  const good = userCa(scratch(t), NEW_HOST)
  const r = h.run(['install', '--quayHostname', NEW_HOST, '--sslCert', good.cert, '--sslKey', good.key, '--sslCa', good.ca])
  t.equal(r.status, 0, r.out)
  t.equal(
    h.read(factsOf(testPlan({ flavor: 'distribution' }).host).certFiles[0]!.slice(1)),
    readFileSync(good.cert, 'utf8'),
    'the user certificate in place',
  )
  t.equal(h.read(`etc/containers/certs.d/${NEW_HOST}:8443/ca.crt`), readFileSync(good.ca, 'utf8'))
  t.notMatch(r.out, /NEW CA/)
})

t.test('a CA key that cannot sign for the name, or is not the bundle CA key: preflight problems, nothing changed', async (t) => {
  const plan = testPlan({ flavor: 'distribution' })
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  const outside = h.run(['install', '--quayHostname', 'quay.other.test', '--caKey', caKeyFile(t, plan)])
  t.equal(outside.status, 1, outside.out)
  t.match(
    outside.out,
    /preflight: --quayHostname quay\.other\.test:8443: this bundle's CA may not sign for quay\.other\.test \(.*Permitted.*DNS:lab\.example/,
  )
  t.match(outside.out, /give your own --sslCert\/--sslKey, or leave the CA key out to make a new CA/)
  const other = userCa(scratch(t))
  const wrong = h.run(['install', '--quayHostname', NEW_HOST, '--caKey', other.caKey])
  t.equal(wrong.status, 1, wrong.out)
  t.match(wrong.out, /preflight: CA key \S+ is not the key of this bundle's CA/)
  t.notOk(existsSync(join(h.root, 'etc/mirror-appliance/host.env')), 'nothing placed')
})

t.test('--quayHostname values that are not a DNS name and port: usage errors (exit 2)', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  for (const [v, msg] of [
    ['Bad_Name', /is not a DNS name/],
    ['10.0.0.5:8443', /an IP address needs a rebuild/],
    [`${NEW_HOST}:99999`, /the port must be a number from 1 to 65535/],
    [`${NEW_HOST}:x`, /the port must be a number/],
  ] as const) {
    const r = h.run(['install', '--quayHostname', v])
    t.equal(r.status, 2, `${v}: ${r.out}`)
    t.match(r.out, msg)
  }
  // the built name, with or without its port: no rename at all
  const same = h.run(['install', '--quayHostname', 'registry.lab.example:8443', '--caKey', '/nonexistent'])
  t.equal(same.status, 0, same.out)
  t.match(same.out, /--caKey has no effect here/)
  t.notMatch(same.out, /renaming/)
  t.notMatch(h.read('etc/mirror-appliance/host.env'), /RENAMED_FROM/)
})

t.test(
  'on a target (--target): --quayHostname and the CA key travel there, the key as a file in the 0700 copy, never on a command line',
  async (t) => {
    const plan = testPlan({ flavor: 'distribution' })
    const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
    const key = caKeyFile(t, plan)
    const r = h.run(['install', '--target', 'root@reg.example', '--quayHostname', `${NEW_HOST}:5443`, '--caKey', key])
    t.equal(r.status, 0, r.out)
    const calls = h.calls()
    t.ok(
      calls.some(
        (c) => c.startsWith('scp ') && c.includes(` ${key} root@reg.example:/var/tmp/mirror-appliance-bundle.`) && c.endsWith('/ca.key'),
      ),
      'the key is copied into the bundle copy on the target',
    )
    const install = calls.find((c) => c.startsWith('ssh ') && c.includes('mirror-registryctl install'))
    t.match(install, `--quayHostname ${NEW_HOST}:5443`)
    t.match(install, /--caKey \/var\/tmp\/mirror-appliance-bundle\.\d+\/ca\.key/)
    t.notOk(
      calls.some((c) => c.includes('BEGIN')),
      'no key material on any command line',
    )
    t.ok(
      calls.some((c) => c.startsWith('ssh ') && /rm -rf \/var\/tmp\/mirror-appliance-bundle\.\d+$/.test(c)),
      'the copy, key included, is removed',
    )
  },
)

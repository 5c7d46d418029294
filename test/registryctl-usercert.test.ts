// Issue 19 point 1: `install --sslCert C --sslKey K` without --sslCa, C issued
// by a CA that is not the build's (an enterprise CA, made here with openssl:
// root -> intermediate -> server). The first-boot health check runs with the
// REAL curl against an HTTPS stand-in serving C, so it passes only when
// install trusts the CA that vouches for C: the root at the end of C's own
// file, or the one this host's trust store holds. Preflight says, with the
// other problems at once, when neither has it. Everything else is the
// recording fakes of test/helpers/ctl-harness.ts. Distribution flavor: its
// health check is the same http_code as Quay's (no Quay image runs here).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { testPlan } from './helpers/bundle-fixture.js'
import { ctlHarness, type CtlHarness } from './helpers/ctl-harness.js'
import { httpsStandIn } from './helpers/https-standin.js'
import { freePort } from './helpers/net.js'
import { keyAndRequest, selfSignedCa, signRequest } from './helpers/openssl.js'
import { factsOf } from '../builder/registry/facts.js'
import type { Plan } from '../builder/plan/types.js'

const HOST = 'registry.lab.example'

/** A scratch directory for one test, removed after it */
function scratch(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'usercert-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

/** An enterprise-like PKI: a root, an intermediate it signs, a server certificate for HOST the intermediate signs. */
function enterprisePki(dir: string) {
  mkdirSync(dir, { recursive: true })
  selfSignedCa({
    cwd: dir,
    key: 'root.key',
    cert: 'root.crt',
    subject: '/O=Example Corp/CN=Example Corp Root CA',
    days: 30,
    ext: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign'],
  })
  keyAndRequest({ cwd: dir, key: 'int.key', csr: 'int.csr', subject: '/O=Example Corp/CN=Example Corp Issuing CA' })
  writeFileSync(join(dir, 'int.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n')
  signRequest({ cwd: dir, csr: 'int.csr', ca: 'root.crt', caKey: 'root.key', serial: 2, days: 30, extfile: 'int.ext', out: 'int.crt' })
  keyAndRequest({ cwd: dir, key: 'srv.key', csr: 'srv.csr', subject: `/CN=${HOST}` })
  writeFileSync(join(dir, 'srv.ext'), `subjectAltName=DNS:${HOST}\nextendedKeyUsage=serverAuth\n`)
  signRequest({ cwd: dir, csr: 'srv.csr', ca: 'int.crt', caKey: 'int.key', serial: 3, days: 20, extfile: 'srv.ext', out: 'srv.crt' })
  const pem = (n: string) => readFileSync(join(dir, n), 'utf8')
  const write = (n: string, text: string) => (writeFileSync(join(dir, n), text), join(dir, n))
  return {
    root: pem('root.crt'),
    key: join(dir, 'srv.key'),
    /** server + intermediate: what an enterprise CA hands out */
    chain: write('chain.crt', pem('srv.crt') + pem('int.crt')),
    /** server + intermediate + root */
    full: write('full.crt', pem('srv.crt') + pem('int.crt') + pem('root.crt')),
  }
}

/** A harness whose curl is the real one (the fakes answer every other tool). */
async function realCurlHarness(t: Test, port: number): Promise<CtlHarness & { plan: Plan }> {
  const plan = testPlan({ flavor: 'distribution', port, epoch: Math.floor(Date.now() / 1000) - 120, seed: 'usercert' })
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  rmSync(join(h.base, 'bin/curl'))
  return Object.assign(h, { plan })
}
const HEALTH = { MA_HEALTH_TIMEOUT: '5', MA_POLL_INTERVAL: '0.2' }

function checkTrusted(t: Test, h: CtlHarness & { plan: Plan }, rootPem: string, chain: string) {
  const facts = factsOf(h.plan.host)
  for (const f of facts.caFiles) t.equal(h.read(f.slice(1)), rootPem, `${f}: the enterprise root, not the build's CA`)
  const v = spawnSync('openssl', ['verify', '-CAfile', join(h.root, facts.caFiles[0]!), '-untrusted', chain, chain], { encoding: 'utf8' })
  t.equal(v.status, 0, `the installed CA verifies the certificate: ${v.stdout}${v.stderr}`)
}

t.test('--sslCert whose file carries its root (no --sslCa): install trusts that root, the real health check passes', async (t) => {
  const port = await freePort()
  const pki = enterprisePki(join(scratch(t), 'pki'))
  await httpsStandIn(t, pki.chain, pki.key, port)
  const h = await realCurlHarness(t, port)
  const r = h.run(['install', '--sslCert', pki.full, '--sslKey', pki.key], HEALTH)
  t.equal(r.status, 0, r.out)
  t.match(r.out, /--sslCert \S+full\.crt: its CA is the self-signed subject=.*Example Corp Root CA at the end of the file/)
  t.match(r.out, new RegExp(`healthy: https://${HOST}:${port}/v2/ answered 401`))
  checkTrusted(t, h, pki.root, pki.full)
})

t.test(
  "--sslCert (server + intermediate) whose root is in the host's trust store: found there, the real health check passes",
  async (t) => {
    const port = await freePort()
    const pki = enterprisePki(join(scratch(t), 'pki'))
    await httpsStandIn(t, pki.chain, pki.key, port)
    const h = await realCurlHarness(t, port)
    // the system bundle of an enterprise host: public roots and the company's
    const other = enterprisePki(join(scratch(t), 'other'))
    mkdirSync(join(h.root, 'etc/pki/tls/certs'), { recursive: true })
    writeFileSync(join(h.root, 'etc/pki/tls/certs/ca-bundle.crt'), other.root + pki.root)
    const r = h.run(['install', '--sslCert', pki.chain, '--sslKey', pki.key], HEALTH)
    t.equal(r.status, 0, r.out)
    t.match(r.out, /its CA subject=.*Example Corp Root CA is trusted by this host \(\/etc\/pki\/tls\/certs\/ca-bundle\.crt\)/)
    t.match(r.out, new RegExp(`healthy: https://${HOST}:${port}/v2/ answered 401`))
    checkTrusted(t, h, pki.root, pki.chain)
  },
)

t.test('an administrator-added anchor (/etc/pki/ca-trust/source/anchors) counts too', async (t) => {
  const port = await freePort()
  const pki = enterprisePki(join(scratch(t), 'pki'))
  await httpsStandIn(t, pki.chain, pki.key, port)
  const h = await realCurlHarness(t, port)
  mkdirSync(join(h.root, 'etc/pki/ca-trust/source/anchors'), { recursive: true })
  writeFileSync(join(h.root, 'etc/pki/ca-trust/source/anchors/example-corp.pem'), pki.root)
  const r = h.run(['install', '--sslCert', pki.chain, '--sslKey', pki.key], HEALTH)
  t.equal(r.status, 0, r.out)
  t.match(r.out, /trusted by this host \(\/etc\/pki\/ca-trust\/source\/anchors\/example-corp\.pem\)/)
  checkTrusted(t, h, pki.root, pki.chain)
})

t.test('a CA found nowhere: preflight says so with the other problems, nothing changes', async (t) => {
  const port = await freePort()
  const pki = enterprisePki(join(scratch(t), 'pki'))
  const h = await realCurlHarness(t, port)
  const before = h.snapshot()
  const r = h.run(['install', '--sslCert', pki.chain, '--sslKey', pki.key], { ...HEALTH, FAKE_PORT_BUSY: '1' })
  t.equal(r.status, 1, r.out)
  t.match(
    r.out,
    /preflight: certificate \S+chain\.crt: its issuer \(issuer=.*Example Corp Root CA\) is neither in the file nor in this host's trust store \(\/etc\/pki\/ca-trust\/source\/anchors \/etc\/pki\/tls\/certs\/ca-bundle\.crt\): pass --sslCa FILE with that CA's certificate, or append the CA to the certificate file/,
  )
  t.match(r.out, /preflight: port \d+\/tcp is in use/, 'with the other problems')
  t.match(r.out, /preflight failed \(2 problem\(s\)\); nothing was changed/)
  t.same(h.snapshot(), before)
  t.notOk(existsSync(join(h.root, 'etc/mirror-appliance')), 'nothing installed')
})

t.test('a certificate that verifies but may not serve TLS (no serverAuth): refused in preflight', async (t) => {
  const dir = join(scratch(t), 'client')
  const pki = enterprisePki(dir)
  writeFileSync(join(dir, 'cli.ext'), `subjectAltName=DNS:${HOST}\nextendedKeyUsage=clientAuth\n`)
  signRequest({ cwd: dir, csr: 'srv.csr', ca: 'int.crt', caKey: 'int.key', serial: 9, days: 20, extfile: 'cli.ext', out: 'cli.crt' })
  writeFileSync(
    join(dir, 'cli-full.crt'),
    readFileSync(join(dir, 'cli.crt'), 'utf8') + readFileSync(join(dir, 'int.crt'), 'utf8') + pki.root,
  )
  const h = await realCurlHarness(t, await freePort())
  const r = h.run(['install', '--sslCert', join(dir, 'cli-full.crt'), '--sslKey', pki.key], HEALTH)
  t.equal(r.status, 1, r.out)
  t.match(r.out, /preflight: certificate \S+cli-full\.crt does not verify against the CA/)
})

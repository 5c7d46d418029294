// Issue 19 points 7 and 8: the registry watchdog (a registry that answers no
// more while its container shows "Up", mirror-registry #144) and the daily
// certificate renewal (self-signed certificates that expire unnoticed,
// mirror-registry #8, #31).
//
// - the timers and services the host spec adds, for every RHEL minor and both
//   flavors, checked by the real `systemd-analyze verify` (Debian 12's systemd
//   252; RHEL 8 runs 239, which knows every key used: OnBootSec,
//   OnUnitInactiveSec, AccuracySec, OnCalendar, RandomizedDelaySec,
//   Persistent, ConditionPathExists, TimeoutStartSec);
// - `mirror-registryctl health-check` under the fakes harness: restarts after
//   HEALTH_RESTART_AFTER failed probes in a row, not before, never a stopped
//   unit, and `status` reports the restart;
// - `mirror-registryctl renew-cert` with a real openssl-made CA: renews a
//   certificate with 10 days left (verifies against the CA, same names, key
//   replaced by rename, 0600), leaves one with 60 days alone, and without the
//   CA key on the host only warns (journal and motd).
// What cannot be proven here: the timers firing on a booted RHEL host (the
// e2e guest is Debian's systemd), and Quay itself (no image offline).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { loadConfigText } from '../builder/config/load.js'
import type { RhelMinor } from '../builder/config/types.js'
import { planAppliance } from '../builder/plan/plan.js'
import type { Plan } from '../builder/plan/types.js'
import { factsOf } from '../builder/registry/facts.js'
import * as L from '../builder/registry/layout.js'
import { testPlan } from './helpers/bundle-fixture.js'
import { ctlHarness, type CtlHarness } from './helpers/ctl-harness.js'
import { keyAndRequest, openssl, selfSignedCa } from './helpers/openssl.js'

const MINORS: RhelMinor[] = ['8.4', '8.5', '8.6', '8.7', '8.8', '8.9', '8.10']
const TIMER_FILES = [L.HEALTH_UNIT, L.HEALTH_TIMER, L.RENEW_UNIT, L.RENEW_TIMER].map((u) => `${L.SYSTEMD_DIR}/${u}`)

function hostSpec(flavor: string, rhel: RhelMinor, tls = '') {
  const loaded = loadConfigText(
    `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, rhel: "${rhel}", disk: { device: vda } }
registry: { flavor: ${flavor}, port: 8443${tls ? `, tls: ${tls}` : ''} }
`,
    'watchdog.yaml',
    { baseDir: '/tmp' },
  )
  return planAppliance(loaded, { epoch: 1_700_000_000, seed: 'watchdog' }).plan.host
}

/** A scratch root holding systemd's own units (for the targets timers hang off) and a stand-in ctl, for `systemd-analyze verify --root`. */
function verifyRoot(t: Test): string {
  const root = mkdtempSync(join(tmpdir(), 'watchdog-units-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, dereference: false, verbatimSymlinks: true })
  mkdirSync(join(root, dirname(L.REGISTRYCTL_PATH)), { recursive: true })
  writeFileSync(join(root, L.REGISTRYCTL_PATH), '#!/bin/sh\n', { mode: 0o755 })
  mkdirSync(join(root, L.SYSTEMD_DIR), { recursive: true })
  return root
}

const haveAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0

t.test(
  'watchdog and renewal units: on every RHEL minor, both flavors, valid for systemd, enabled',
  { skip: haveAnalyze ? false : 'no systemd-analyze' },
  async (t) => {
    const root = verifyRoot(t)
    for (const flavor of ['quay', 'distribution']) {
      for (const rhel of MINORS) {
        const spec = hostSpec(flavor, rhel)
        const units = TIMER_FILES.map((p) => spec.files.find((f) => f.path === p))
        t.ok(units.every(Boolean), `${flavor} ${rhel}: ${TIMER_FILES.join(', ')} in the host spec`)
        for (const u of units) writeFileSync(join(root, u!.path), String(u!.contents))
        const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...TIMER_FILES], { encoding: 'utf8' })
        t.equal(r.status, 0, `${flavor} ${rhel}: systemd-analyze verify: ${r.stderr}`)
        t.equal(r.stderr.trim(), '', `${flavor} ${rhel}: no warning (an unknown key is only a warning)`)
        t.ok(spec.enableUnits.includes(L.HEALTH_TIMER) && spec.enableUnits.includes(L.RENEW_TIMER), 'both timers enabled')
        const facts = factsOf(spec)
        t.ok(facts.enableUnits.includes(L.HEALTH_TIMER), 'a bundle install enables them too (ENABLE_UNITS)')
        t.same(facts.healthWatch, { restartAfter: 3, grace: flavor === 'quay' ? 900 : 300 }, "grace: the slowest container's start timeout")
        const svc = String(units[0]!.contents)
        t.match(svc, new RegExp(`^ExecStart=${L.REGISTRYCTL_PATH} health-check$`, 'm'))
        t.match(
          svc,
          new RegExp(`https://registry\\.lab\\.example:8443${flavor === 'quay' ? '/health/instance' : '/v2/'}`),
          'probes the health URL of the facts',
        )
      }
    }
  },
)

t.test('registry.tls.autoRenew: false: no renewal timer or service, AUTO_RENEW=0; the watchdog stays', async (t) => {
  const off = hostSpec('distribution', '8.10', '{ autoRenew: false }')
  t.notOk(
    off.files.some((f) => f.path.includes('renew-cert')),
    'no renew-cert unit',
  )
  t.notOk(off.enableUnits.includes(L.RENEW_TIMER))
  t.ok(off.files.some((f) => f.path === `${L.SYSTEMD_DIR}/${L.HEALTH_TIMER}`))
  t.equal(factsOf(off).autoRenew, false)
  t.match(String(off.files.find((f) => f.path === L.HOST_FACTS)!.contents), /^AUTO_RENEW=0$/m)
  t.match(String(hostSpec('distribution', '8.10').files.find((f) => f.path === L.HOST_FACTS)!.contents), /^AUTO_RENEW=1$/m, 'on by default')
})

const installed = async (t: Test, plan: Plan): Promise<CtlHarness & { ctl: string }> => {
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install'])
  if (r.status !== 0) throw new Error(r.out)
  return Object.assign(h, { ctl: join(h.root, L.REGISTRYCTL_PATH.slice(1)) })
}

const restarts = (calls: string[]) => calls.filter((c) => c === 'systemctl start registry.service').length

t.test('health-check restarts the registry after 3 failed probes in a row, not before; status says when', async (t) => {
  const plan = testPlan({ flavor: 'distribution' })
  const h = await installed(t, plan)
  const before = h.run(['status'], {}, h.ctl)
  t.match(before.out, /^watchdog: +has not restarted the registry$/m)
  const sick = { FAKE_HEALTH_CODE: '503' }
  const n0 = h.calls().length
  for (const probe of [1, 2]) {
    const r = h.run(['health-check'], sick, h.ctl)
    t.equal(r.status, 0, r.out)
    t.match(r.out, new RegExp(`failed probe ${probe} of 3 before a restart`))
  }
  t.equal(restarts(h.calls().slice(n0)), 0, 'two failures: no restart yet')
  t.match(h.run(['status'], sick, h.ctl).out, /^watchdog: +has not restarted the registry; 2 failed probe\(s\) in a row now$/m)
  // a healthy answer in between starts the count again
  t.equal(h.run(['health-check'], {}, h.ctl).status, 0)
  for (const _ of [1, 2]) h.run(['health-check'], sick, h.ctl)
  t.equal(restarts(h.calls().slice(n0)), 0, 'the count restarts after a healthy probe')
  const n1 = h.calls().length
  const third = h.run(['health-check'], sick, h.ctl)
  t.equal(third.status, 0, third.out)
  t.match(third.out, /answered 503 \(expected 401\) 3 times in a row while registry\.service ran: restarting them/)
  t.equal(restarts(h.calls().slice(n1)), 1, 'the third failure in a row restarts the registry')
  const status = h.run(['status'], {}, h.ctl)
  const today = new Date().toISOString().slice(0, 10)
  t.match(
    status.out,
    new RegExp(
      `^watchdog: +last restarted the registry on ${today} \\d\\d:\\d\\d:\\d\\d UTC \\(health answered 503; 1 restart\\(s\\) in all\\)$`,
      'm',
    ),
  )
  // the next failures count from zero again
  const n2 = h.calls().length
  for (const _ of [1, 2]) h.run(['health-check'], sick, h.ctl)
  t.equal(restarts(h.calls().slice(n2)), 0, 'counted from zero after a restart')
})

t.test('health-check leaves a stopped registry alone; install starts the timers, uninstall stops them first', async (t) => {
  const h = await installed(t, testPlan({ flavor: 'distribution' }))
  const timers = `${L.HEALTH_TIMER} ${L.RENEW_TIMER}`
  t.ok(h.calls().includes(`systemctl start ${timers}`), 'install starts both timers (they run before the next boot)')
  const n0 = h.calls().length
  for (const _ of [1, 2, 3, 4]) {
    const r = h.run(['health-check'], { FAKE_HEALTH_CODE: '503', FAKE_INACTIVE: '1' }, h.ctl)
    t.equal(r.status, 0, r.out)
    t.match(r.out, /registry\.service is not active: not probed/)
  }
  t.equal(restarts(h.calls().slice(n0)), 0)
  t.notOk(
    h
      .calls()
      .slice(n0)
      .some((c) => c.startsWith('curl ')),
    'not even probed',
  )
  const n1 = h.calls().length
  t.equal(h.run(['uninstall', '--yes'], {}, h.ctl).status, 0)
  const calls = h.calls().slice(n1)
  const stopTimers = calls.indexOf(`systemctl stop ${timers}`)
  t.ok(
    stopTimers >= 0 && stopTimers < calls.findIndex((c) => c.startsWith('systemctl stop registry.service')),
    'uninstall stops the timers before the registry',
  )
  t.ok(
    calls.some((c) => c.startsWith('systemctl disable') && c.includes(L.HEALTH_TIMER) && c.includes(L.RENEW_TIMER)),
    'and disables them',
  )
  for (const u of TIMER_FILES) t.notOk(existsSync(join(h.root, u)), `${u} removed`)
})

// ---- renewal ---------------------------------------------------------------

const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'

/**
 * A CA made by openssl (ten years), and a server certificate it issued for
 * `validity` days of which `left` remain (openssl ca -startdate/-enddate), for
 * the host's names.
 */
function caAndCert(dir: string, dns: string[], ips: string[], validity: number, left: number) {
  mkdirSync(dir, { recursive: true })
  selfSignedCa({
    cwd: dir,
    key: 'ca.key',
    cert: 'ca.crt',
    subject: '/CN=Site CA',
    days: 3650,
    ext: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
  })
  keyAndRequest({ cwd: dir, key: 'srv.key', csr: 'srv.csr', subject: `/CN=${dns[0]}` })
  const san = [...dns.map((n) => `DNS:${n}`), ...ips.map((n) => `IP:${n}`)].join(',')
  writeFileSync(join(dir, 'ext'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`)
  writeFileSync(join(dir, 'index.txt'), '')
  writeFileSync(join(dir, 'serial'), '1000\n')
  writeFileSync(
    join(dir, 'ca.cnf'),
    '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n',
  )
  const now = Date.now()
  openssl(
    [
      'ca',
      '-batch',
      '-config',
      'ca.cnf',
      '-cert',
      'ca.crt',
      '-keyfile',
      'ca.key',
      '-in',
      'srv.csr',
      '-out',
      'srv.crt',
      '-notext',
      '-startdate',
      stamp(new Date(now - (validity - left) * 86400e3)),
      '-enddate',
      stamp(new Date(now + left * 86400e3)),
      '-extfile',
      'ext',
    ],
    dir,
  )
  return { ca: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), cert: join(dir, 'srv.crt'), key: join(dir, 'srv.key') }
}

const sans = (cert: string) => openssl(['x509', '-in', cert, '-noout', '-ext', 'subjectAltName']).split('\n').slice(1).join('').trim()
const daysLeft = (cert: string) => (Date.parse(openssl(['x509', '-in', cert, '-noout', '-enddate']).trim().slice(9)) - Date.now()) / 86400e3

/** An installed distribution host whose CA and server certificate are `pki`'s (the CA in every place the host keeps it). */
async function hostWith(t: Test, validity: number, left: number, caKeyOnHost: boolean) {
  const plan = testPlan({ flavor: 'distribution' })
  const h = await installed(t, plan)
  const f = factsOf(plan.host)
  const pki = caAndCert(join(h.base, 'site-ca'), f.sanDns, f.sanIp, validity, left)
  for (const p of f.caFiles) writeFileSync(join(h.root, p), readFileSync(pki.ca))
  for (const p of f.certFiles) writeFileSync(join(h.root, p), readFileSync(pki.cert))
  for (const p of f.keyFiles) writeFileSync(join(h.root, p), readFileSync(pki.key))
  if (caKeyOnHost) {
    writeFileSync(join(h.root, L.CA_KEY_ON_HOST), readFileSync(pki.caKey), { mode: 0o600 })
    chmodSync(join(h.root, L.CA_KEY_ON_HOST), 0o600)
  }
  return { h, f, pki, cert: join(h.root, f.certFiles[0]!), key: join(h.root, f.keyFiles[0]!) }
}

t.test('renew-cert: 10 days left, CA key on the host: renewed by the same CA, same names, key replaced by rename, 0600', async (t) => {
  const { h, f, pki, cert, key } = await hostWith(t, 730, 10, true)
  const oldSans = sans(cert)
  const oldKeyInode = statSync(key).ino
  const n0 = h.calls().length
  const r = h.run(['renew-cert'], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.match(r.out, /expires on .* \((9|10) days\): renewing it for 730 days with the CA key \/etc\/mirror-appliance\/ca\.key/)
  t.match(r.out, /certificate renewed: valid until /)
  t.notSame(readFileSync(cert), readFileSync(pki.cert), 'a new certificate')
  const v = spawnSync('openssl', ['verify', '-CAfile', pki.ca, cert], { encoding: 'utf8' })
  t.equal(v.status, 0, `verifies against the CA: ${v.stdout}${v.stderr}`)
  t.equal(sans(cert), oldSans, `covers the same names (${oldSans})`)
  for (const n of f.sanDns) t.match(oldSans, `DNS:${n}`)
  t.ok(daysLeft(cert) > 729, 'issued for as long as the old one was')
  t.equal(statSync(key).mode & 0o777, 0o600, 'key 0600')
  t.not(statSync(key).ino, oldKeyInode, 'key replaced by a rename, not rewritten in place')
  t.equal(openssl(['x509', '-in', cert, '-noout', '-pubkey']), openssl(['pkey', '-in', key, '-pubout']), "the key is the certificate's")
  t.same(readdirSync(dirname(key)).sort(), ['server.crt', 'server.key'], 'no temp file left beside them')
  for (const p of f.caFiles) t.same(readFileSync(join(h.root, p)), readFileSync(pki.ca), `${p}: still the same CA`)
  t.equal(restarts(h.calls().slice(n0)), 1, 'registry restarted')
  t.ok(
    h
      .calls()
      .slice(n0)
      .some((c) => c.endsWith('/v2/')),
    'and its health checked',
  )
  t.match(
    h.read(L.CERT_MOTD.slice(1)),
    /^The registry certificate was renewed automatically on \d{4}-\d\d-\d\d; valid until /,
    'the motd says so',
  )
  t.equal(statSync(join(h.root, L.CERT_MOTD)).mode & 0o777, 0o644)
  t.same(
    readdirSync(h.base).filter((n) => n.startsWith('mirror-registryctl.') || n.startsWith('tmp.')),
    [],
    'the temp copy of the CA key is gone',
  )
  const again = h.run(['renew-cert'], {}, h.ctl)
  t.match(again.out, /nothing to renew/, 'a second run changes nothing')
  t.match(h.run(['status'], {}, h.ctl).out, /^renewal: +automatic, 30 days before expiry \(CA key in \/etc\/mirror-appliance\/ca\.key\)$/m)
})

t.test('renew-cert: 60 days left: nothing renewed, nothing restarted', async (t) => {
  const { h, pki, cert, key } = await hostWith(t, 730, 60, true)
  const n0 = h.calls().length
  const r = h.run(['renew-cert'], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.match(r.out, /valid until .* \((59|60) days\): nothing to renew before 30 days remain/)
  t.same(readFileSync(cert), readFileSync(pki.cert))
  t.same(readFileSync(key), readFileSync(pki.key))
  t.same(
    h
      .calls()
      .slice(n0)
      .filter((c) => c.startsWith('systemctl')),
    [],
  )
  t.notOk(existsSync(join(h.root, L.CERT_MOTD)))
})

t.test('renew-cert: 10 days left, no CA key on the host: warns in the journal and the motd, changes nothing', async (t) => {
  const { h, pki, cert } = await hostWith(t, 730, 10, false)
  const n0 = h.calls().length
  const r = h.run(['renew-cert'], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.match(
    r.out,
    /warning: the registry certificate expires on .* \((9|10) days\) and is not renewed automatically: the CA key is not on this host/,
  )
  t.same(readFileSync(cert), readFileSync(pki.cert))
  t.same(
    h
      .calls()
      .slice(n0)
      .filter((c) => c.startsWith('systemctl')),
    [],
  )
  const motd = h.read(L.CERT_MOTD.slice(1))
  t.match(motd, /^WARNING: the registry certificate of https:\/\/registry\.lab\.example:8443 expires on .* \((9|10) days\)\./)
  t.match(motd, /rotate-cert --ca-cert CA\.crt --ca-key CA\.key/)
  t.match(
    h.run(['status'], {}, h.ctl).out,
    /^renewal: +warns only, 30 days before expiry \(no CA key in \/etc\/mirror-appliance\/ca\.key\)$/m,
  )
  // a key readable by others is refused, as is a key of another CA
  writeFileSync(join(h.root, L.CA_KEY_ON_HOST), readFileSync(pki.caKey), { mode: 0o644 })
  chmodSync(join(h.root, L.CA_KEY_ON_HOST), 0o644)
  t.match(h.run(['renew-cert'], {}, h.ctl).out, /may be read by others than root: chmod 0600/)
  writeFileSync(join(h.root, L.CA_KEY_ON_HOST), readFileSync(pki.key))
  chmodSync(join(h.root, L.CA_KEY_ON_HOST), 0o600)
  t.match(h.run(['renew-cert'], {}, h.ctl).out, /is not the key of the CA this host trusts/)
  t.same(readFileSync(cert), readFileSync(pki.cert), 'still the old certificate')
  t.equal(h.run(['uninstall', '--yes'], {}, h.ctl).status, 0)
  t.notOk(existsSync(join(h.root, L.CERT_MOTD)), 'uninstall removes the notice')
  t.notOk(existsSync(join(h.root, L.CA_KEY_ON_HOST)), 'and the CA key with the configuration')
})

t.test('renew-cert whose new certificate leaves the registry unhealthy: the old one comes back, exit 1, the motd says so', async (t) => {
  const { h, pki, cert, key } = await hostWith(t, 730, 10, true)
  const r = h.run(['renew-cert'], { FAKE_HEALTH_CODE: '503' }, h.ctl)
  t.equal(r.status, 1, r.out)
  t.match(r.out, /renew-cert failed; the previous certificate is back in place/)
  t.same(readFileSync(cert), readFileSync(pki.cert))
  t.same(readFileSync(key), readFileSync(pki.key))
  t.match(h.read(L.CERT_MOTD.slice(1)), /automatic renewal on \d{4}-\d\d-\d\d did not complete: journalctl -u mirror-appliance-renew-cert/)
})

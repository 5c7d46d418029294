// A 3-host fleet (test/fixtures/fleet-3): per-host kickstart golden files
// (ks.cfg as it goes on the host's OEMDRV) and a listing of each host's
// files, plus the summary table. And what the goldens alone do not show:
// one CA signs every host's certificate, each for its own names; hosts do
// not share keys or passwords; adding a host changes no other host; the
// fleet rules (duplicates, provided certificates).
// Refresh after a reviewed change:
//   UPDATE_GOLDEN=1 npx tap test/fleet-golden.test.ts
import t, { type Test } from 'tap'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../builder/config/diagnostics.js'
import { loadConfig, loadConfigText } from '../builder/config/load.js'
import { fleetTable } from '../builder/commands/fleet-summary.js'
import { PAYLOAD_LABEL } from '../builder/media/oemdrv.js'
import { FLEET_CA_FILE } from '../builder/plan/secrets.js'
import { planSite } from '../builder/plan/site.js'
import { renderKickstart } from '../builder/render/kickstart.js'
import { golden as checkGolden } from './helpers/golden.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/fleet-3/', import.meta.url))
const EPOCH = 1_700_000_000
const loaded = loadConfig(join(FIXTURE, 'appliance.yaml'))
const fleet = planSite(loaded, { epoch: EPOCH, seed: 'golden' })

const golden = (t: Test, rel: string, text: string) => checkGolden(t, join(FIXTURE, 'expected', rel), text, rel)

t.test('per-host golden files', async (t) => {
  t.equal(fleet.hosts.length, 3)
  for (const m of fleet.hosts) {
    const h = m.hostname
    golden(t, `${h}/ks.cfg`, renderKickstart(m.plan, { source: 'oemdrv', payloadLabel: PAYLOAD_LABEL }))
    const host = m.plan.host
    const listing =
      [
        ...host.dirs.map((d) => `d ${d.mode.toString(8).padStart(4, '0')} ${d.owner}:${d.group} ${d.path}`),
        ...host.files.map((f) => `f ${f.mode.toString(8).padStart(4, '0')} ${f.owner}:${f.group} ${f.path}${f.secret ? ' (secret)' : ''}`),
        `enable ${host.enableUnits.join(' ')}`,
        `firewall ${host.firewallPorts.join(' ')}`,
      ].join('\n') + '\n'
    golden(t, `${h}/LISTING`, listing)
  }
  golden(
    t,
    'fleet.txt',
    fleetTable(
      fleet.hosts.map((m) => ({
        hostname: m.hostname,
        role: m.fleet!.role,
        address: `${m.fleet!.address}/${m.fleet!.prefix}`,
        mac: m.fleet!.mac,
        disk: m.plan.config.host.disk.device,
        medium: `hosts/${m.hostname}/oemdrv.iso + payload.iso`,
      })),
    ),
  )
})

t.test("each kickstart is this host's: name, MAC-bound static address, disk, payload from MAPAYLOAD", async (t) => {
  const [a, b, c] = fleet.hosts.map((m) => renderKickstart(m.plan, { source: 'oemdrv', payloadLabel: PAYLOAD_LABEL }))
  t.match(
    a,
    /^network --device='?52:54:00:00:00:11'? --bootproto=static --ip='?192\.0\.2\.11'? --netmask='?255\.255\.255\.0'? --gateway='?192\.0\.2\.1'? --nameserver='?192\.0\.2\.53'? --hostname='?mirror-a\.lab\.example'?/m,
  )
  t.match(b!, /^network --device='?ens3'? .*--ip='?192\.0\.2\.12'?/m, 'an explicit interface name wins over the MAC')
  t.match(c!, /--ip='?198\.51\.100\.13'? .*--gateway='?198\.51\.100\.1'?/, 'own subnet and gateway')
  t.match(c!, /disk\/by-path\/pci-0000:00:05\.0/, 'own disk')
  t.notMatch(c!, /ignoredisk --only-use='?vda'?/, 'not the template disk')
  for (const ks of [a, b, c]) {
    t.match(ks!, 'mount -o ro /dev/disk/by-label/MAPAYLOAD "$medium"', 'payload from the shared medium')
    t.notMatch(ks!, '/dev/disk/by-label/OEMDRV', 'not from its own OEMDRV')
  }
})

t.test('one CA; a certificate per host for its own names; nothing secret shared', async (t) => {
  const ca = new X509Certificate(fleet.sharedCa!.caCertPem)
  const serverKeys = new Set<string>()
  const passwords = new Set<string>()
  for (const m of fleet.hosts) {
    t.equal(m.plan.pki.caCertPem, fleet.sharedCa!.caCertPem, `${m.hostname}: the fleet CA`)
    const cert = new X509Certificate(m.plan.pki.serverCertPem)
    t.ok(cert.verify(ca.publicKey), `${m.hostname}: signed by the fleet CA`)
    t.ok(cert.checkHost(m.hostname), `${m.hostname}: covers its hostname`)
    t.ok(cert.checkIP(m.fleet!.address), `${m.hostname}: covers its address`)
    for (const other of fleet.hosts.filter((o) => o !== m)) t.notOk(cert.checkHost(other.hostname), `does not cover ${other.hostname}`)
    serverKeys.add(m.plan.pki.serverKeyPem)
    passwords.add(m.plan.secrets.initPassword)
    t.notOk('caKeyPem' in m.stored, "the CA key is not in the host's stored secrets")
    const anchor = m.plan.host.files.find((f) => f.path === '/etc/pki/ca-trust/source/anchors/mirror-appliance-ca.crt')
    t.equal(anchor?.contents, fleet.sharedCa!.caCertPem, 'each host trusts the fleet CA')
    t.notOk(
      m.plan.host.files.some((f) => String(f.contents).includes('PRIVATE KEY') && f.contents === fleet.sharedCa!.caKeyPem),
      'the CA key is on no host',
    )
  }
  t.equal(serverKeys.size, 3, 'three different server keys')
  t.equal(passwords.size, 3, 'three different registry passwords')
})

t.test('a fourth host: the stored fleet CA was constrained to the first three; the build stops and says how to rotate', async (t) => {
  const text =
    readFileSync(join(FIXTURE, 'appliance.yaml'), 'utf8') +
    '    - { hostname: mirror-d.lab.example, address: 192.0.2.14/24, mac: "52:54:00:00:00:14" }\n'
  // The fleet CA stored by the first build, as `build` writes it. Its name
  // constraints (issue 18 point 6) permit lab.example and the install
  // subnets, but a host's short name is a single label that only itself can
  // permit: mirror-d is outside, and a certificate naming it would be refused
  // by every client. So adding a host means a new fleet CA (README, "The CA").
  const secretsDir = mkdtempSync(join(tmpdir(), 'fleet-golden-'))
  t.teardown(() => rmSync(secretsDir, { recursive: true, force: true }))
  writeFileSync(join(secretsDir, FLEET_CA_FILE), JSON.stringify({ version: 1, ...fleet.sharedCa }))
  const load = () => loadConfigText(text, join(FIXTURE, 'appliance.yaml'), { baseDir: FIXTURE })
  t.throws(() => planSite(load(), { epoch: EPOCH, seed: 'golden', secretsDir }), {
    name: 'UserError',
    message: /mirror-d is outside the names the CA in secrets\/ may sign for/,
  })
  // the three hosts alone with the stored CA: kept, same certificates
  const three = planSite(
    loadConfigText(readFileSync(join(FIXTURE, 'appliance.yaml'), 'utf8'), join(FIXTURE, 'appliance.yaml'), { baseDir: FIXTURE }),
    { epoch: EPOCH, seed: 'golden', secretsDir },
  )
  t.equal(three.sharedCa!.caCertPem, fleet.sharedCa!.caCertPem, 'a rebuild with the stored CA keeps it')
  for (let i = 0; i < 3; i++)
    t.equal(three.hosts[i]!.plan.pki.serverCertPem, fleet.hosts[i]!.plan.pki.serverCertPem, `${fleet.hosts[i]!.hostname}: same certificate`)
  // without a stored CA: a new one, constrained to all four
  const four = planSite(load(), { epoch: EPOCH, seed: 'golden' })
  t.not(four.sharedCa!.caCertPem, fleet.sharedCa!.caCertPem, 'a new CA for four hosts')
  t.equal(four.hosts[0]!.plan.secrets.initPassword, fleet.hosts[0]!.plan.secrets.initPassword, 'passwords do not depend on the CA')
})

t.test('fleet rules', async (t) => {
  const base = readFileSync(join(FIXTURE, 'appliance.yaml'), 'utf8')
  const refuse = (text: string): string => {
    try {
      loadConfigText(text, 'fleet.yaml', { baseDir: FIXTURE })
    } catch (e) {
      if (e instanceof ConfigError) return e.message
      throw e
    }
    return 'accepted'
  }
  t.match(
    refuse(base.replace('mac: 52:54:00:00:00:12', 'mac: 52:54:00:00:00:11')),
    /fleet\.hosts\[1\]\.mac: 52:54:00:00:00:11 is already used by fleet\.hosts\[0\]/,
  )
  t.match(
    refuse(base.replace('mirror-b.lab.example', 'mirror-a.lab.example')),
    /fleet\.hosts\[1\]\.hostname: mirror-a\.lab\.example is already used by fleet\.hosts\[0\]/,
  )
  t.match(refuse(base.replace('192.0.2.12/24', '192.0.2.11/24')), /fleet\.hosts\[1\]\.address: 192\.0\.2\.11 is already used/)
  t.match(
    refuse(base.replace('gateway: 198.51.100.1', 'gateway: 192.0.2.1')),
    /fleet\.hosts\[2\]\.gateway: 192\.0\.2\.1 is not inside 198\.51\.100\.13\/24/,
  )
  t.match(
    refuse(base.replace('  flavor: quay', '  flavor: quay\n  tls: { certFile: a.crt, keyFile: a.key }')),
    /registry\.tls: a fleet gets one generated CA/,
  )
  t.match(refuse(base.replace('fleet:\n  hosts:', 'fleet:\n  hosts: []\n  x:')), /fleet/)
  t.match(refuse(base.replace('      mac: 52:54:00:00:00:13\n', '')), /fleet\.hosts\[2\].*mac/)
})

// The first-boot script as each host gets it (the static file, its facts
// quoted for bash: a hostile value stays one word), and its two units are
// ordered around the registry units: the preparing oneshot
// runs after the network is up and before the registry units (they need the
// images it loads and the files it writes), the finishing one after them (it
// creates the init user and pushes content through the running registry).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigText } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import { REPO_ROOT } from '../builder/render/templates.js'

const dir = mkdtempSync(join(tmpdir(), 'fb-units-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

for (const [flavor, rhel, units] of [
  ['quay', '8.10', 'quay-redis.service quay-app.service'],
  ['distribution', '8.6', 'registry.service'],
] as const) {
  t.test(`${flavor} / RHEL ${rhel}`, async (t) => {
    const loaded = loadConfigText(
      `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, rhel: "${rhel}", disk: { device: vda } }
registry: { flavor: ${flavor} }
`,
      'u.yaml',
      { baseDir: dir },
    )
    // the schema allows no quote in a user name; the script must stay safe anyway
    loaded.config.registry.initUser.name = "o'brien"
    const host = planAppliance(loaded, { epoch: 1_700_000_000, seed: 'u' }).plan.host
    const file = (p: string) => host.files.find((f) => f.path === p)!
    const script = file('/usr/local/libexec/mirror-appliance/firstboot')
    t.equal(script.mode, 0o755)
    t.equal(String(script.contents), readFileSync(join(REPO_ROOT, 'templates/host/firstboot'), 'utf8'), 'the static script, as it is')
    t.equal(file('/usr/local/libexec/mirror-appliance/lib.sh').mode, 0o644, 'its library beside it')
    const facts = file('/etc/mirror-appliance/host.env')
    t.equal(facts.mode, 0o644)
    t.match(String(facts.contents), /^INIT_USER='o'\\''brien'$/m, 'values quoted by shq')
    const path = join(dir, `host-${flavor}.env`)
    writeFileSync(path, facts.contents)
    const sourced = spawnSync('bash', ['-c', 'set -eu; . "$1"; printf "%s\\n" "$INIT_USER" "${UNITS[*]}"', 'bash', path], {
      encoding: 'utf8',
    })
    t.equal(sourced.stdout, `o'brien\n${units}\n`, 'bash reads the facts back exactly')
    const prep = String(file('/etc/systemd/system/mirror-appliance-firstboot.service').contents)
    t.match(prep, new RegExp(`\nBefore=${units}\n`))
    t.match(prep, /\nAfter=network-online.target\n/)
    t.match(prep, /\nWants=network-online.target\n/)
    t.match(prep, /\nConditionPathExists=!\/var\/lib\/mirror-appliance\/firstboot\/done\n/)
    t.match(prep, /\nType=oneshot\nRemainAfterExit=yes\n/)
    t.match(prep, /\nStandardOutput=journal\+console\n/)
    t.match(prep, /\nExecStart=\/usr\/local\/libexec\/mirror-appliance\/firstboot prepare\n/)
    const fin = String(file('/etc/systemd/system/mirror-appliance-firstboot-finish.service').contents)
    t.match(fin, new RegExp(`\nAfter=network-online.target mirror-appliance-firstboot.service ${units}\n`))
    t.match(fin, /\nRequires=mirror-appliance-firstboot.service\n/)
    t.match(fin, /\nExecStart=\/usr\/local\/libexec\/mirror-appliance\/firstboot finish\n/)
    t.ok(host.enableUnits.includes('mirror-appliance-firstboot.service'))
    t.ok(host.enableUnits.includes('mirror-appliance-firstboot-finish.service'))
    t.same(host.firewallPorts, ['8443/tcp'])
    t.equal(file('/etc/pki/ca-trust/source/anchors/mirror-appliance-ca.crt').mode, 0o644)
    t.ok(file('/etc/containers/certs.d/registry.lab.example:8443/ca.crt'))
    t.ok(file('/etc/containers/certs.d/registry:8443/ca.crt'))
    const ps = JSON.parse(String(file('/root/mirror-appliance/pull-secret.json').contents))
    t.same(Object.keys(ps.auths), ['registry.lab.example:8443'])
    t.equal(Buffer.from(ps.auths['registry.lab.example:8443'].auth, 'base64').toString().split(':')[0], "o'brien")
    for (const d of host.dirs.filter((d) =>
      ['/root/mirror-appliance', '/etc/mirror-appliance', '/var/lib/mirror-appliance/firstboot'].includes(d.path),
    ))
      t.equal(d.mode, 0o700, `${d.path} 0700`)
  })
}

// The three renderings of the host spec describe the same host: the kickstart's
// %post (run with bash under a temp root, byte for byte), the Butane YAML and
// the Ignition JSON (parsed back) lay down the same directories, files
// (path, mode, owner, contents) and enabled/disabled units as the model.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import YAML from 'yaml'
import { renderButane } from '../builder/render/butane.js'
import { hostModel } from '../builder/render/host-model.js'
import { renderIgnition } from '../builder/render/ignition.js'
import { renderKickstart } from '../builder/render/kickstart.js'
import { laidFromIgnitionLike, laidFromKickstart, laidFromModel, loadFixture } from './hostspec-fixture.js'

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname

for (const name of ['ks-dhcp-auto', 'ks-static-uefi-fips', 'ks-bios-custom']) {
  t.test(name, async (t) => {
    const tmp = mkdtempSync(join(tmpdir(), 'hostspec-agree-'))
    t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
    const { plan } = loadFixture(join(FIXTURES, name, 'appliance.yaml'))
    const model = laidFromModel(hostModel(plan))
    const { calls, ...fromKs } = await laidFromKickstart(renderKickstart(plan, { source: 'cdrom' }), tmp)
    const fromIgn = laidFromIgnitionLike(JSON.parse(renderIgnition(plan)), false)
    const fromBu = laidFromIgnitionLike(YAML.parse(renderButane(plan)), true)
    t.ok(model.files.length > 0 && model.dirs.length > 0, 'the model has files and dirs to compare')
    t.same(fromKs, model, 'kickstart %post lays down the model')
    t.same(fromIgn, model, 'Ignition describes the model')
    t.same(fromBu, model, 'Butane describes the model')

    const semanage = calls.filter((c) => c[0] === 'semanage').map((c) => c.slice(1))
    const selinux = [
      ...plan.host.dirs.filter((d) => d.selinuxType).map((d) => ['fcontext', '-a', '-t', d.selinuxType!, `${d.path}(/.*)?`]),
      ...plan.host.files.filter((f) => f.selinuxType).map((f) => ['fcontext', '-a', '-t', f.selinuxType!, f.path.replace(/\./g, '\\.')]),
    ]
    t.same(semanage, selinux, 'every selinuxType becomes a semanage fcontext rule')
    t.same(
      calls.filter((c) => c[0] === 'firewall-offline-cmd').map((c) => c[1]),
      plan.host.firewallPorts.map((p) => `--add-port=${p}`),
      'firewall ports opened offline',
    )

    const ign = JSON.parse(renderIgnition(plan))
    const bu = YAML.parse(renderButane(plan))
    const users = (xs: any[], hashKey: string, keysKey: string) =>
      xs.map((u) => ({ name: u.name, gecos: u.gecos ?? '', groups: u.groups ?? [], hash: u[hashKey] ?? null, keys: u[keysKey] ?? [] }))
    const expectUsers = [
      ...(plan.secrets.rootPasswordHash ? [{ name: 'root', gecos: '', groups: [], hash: plan.secrets.rootPasswordHash, keys: [] }] : []),
      ...plan.config.host.users.map((u) => ({
        name: u.name,
        gecos: u.gecos,
        groups: u.sudo ? ['wheel'] : [],
        hash: plan.secrets.userPasswordHashes[u.name] ?? null,
        keys: u.sshKeys,
      })),
    ]
    t.same(users(ign.passwd.users, 'passwordHash', 'sshAuthorizedKeys'), expectUsers, 'Ignition users')
    t.same(users(bu.passwd.users, 'password_hash', 'ssh_authorized_keys'), expectUsers, 'Butane users')
    t.equal(bu.variant, 'fcos')
    t.equal(bu.version, '1.4.0')
    t.equal(ign.ignition.version, '3.3.0')
    // the secret file is 0600 on the host whichever way it gets there
    const key = fromKs.files.find((f) => f.path.endsWith('.key'))
    if (key) t.equal(key.mode, 0o600, 'private key 0600')
  })
}

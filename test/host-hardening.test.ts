// The installed host's SSH server and firewall (issue 18, points 8 and 12).
//
// sshd: RHEL 8 ships PermitRootLogin yes and password logins, and its sshd
// reads no /etc/ssh/sshd_config.d/ (test/fixtures/rhel8-sshd/README.md), so the
// host's settings go at the top of sshd_config. Proved on RHEL 8's own
// sshd_config: the rendered kickstart applied by the Anaconda emulation
// (test/helpers/kickstart-apply.ts) to a root that has it, then the result
// read by a real sshd (`sshd -t`, and `sshd -T` for what sshd will do).
//
// firewall: RHEL's default zone also opens cockpit and dhcpv6-client; the
// kickstart's firewall command removes them unless host.firewall keeps them.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfigText } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import { hostModel } from '../builder/render/host-model.js'
import { renderIgnition } from '../builder/render/ignition.js'
import { renderKickstart } from '../builder/render/kickstart.js'
import { SSHD_SETTINGS_DONE, SSHD_SETTINGS_SCRIPT, SSHD_SETTINGS_UNIT } from '../builder/registry/layout.js'
import { parseKickstart } from './helpers/kickstart-apply.js'
import { applyKickstartWithHostUsr } from './helpers/kickstart-apply-userland.js'

const RHEL8_SSHD_CONFIG = fileURLToPath(new URL('./fixtures/rhel8-sshd/sshd_config', import.meta.url))
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@laptop'
const SSHD = ['/usr/sbin/sshd', '/sbin/sshd'].find((p) => existsSync(p))
const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0
/** Why the tests that run the real sshd cannot run here, if they cannot. */
const NO_SSHD_CHECK = !SSHD
  ? 'no sshd here (apt-get install openssh-server, as .ci/run does)'
  : !canUnshare
    ? 'unshare -m is not permitted here'
    : false

function planOf(host: string) {
  const yaml = `apiVersion: mirror-appliance/v1\nhost:\n  hostname: hardening.example.internal\n  disk: {device: vda}\n${host}registry:\n  flavor: distribution\n`
  return planAppliance(loadConfigText(yaml, 'appliance.yaml', { baseDir: '/' }), { epoch: 1700000000, seed: 'hardening' }).plan
}
const withKey = `  users:\n    - name: admin\n      sshKeys:\n        - ${KEY}\n`

/** `sshd -T` of a config file: the settings sshd would run with (lower-case keyword -> value). Needs a private /run for /run/sshd. */
function sshdEffective(conf: string, hostKey: string): { ok: boolean; out: string; settings: Map<string, string> } {
  const r = spawnSync(
    'unshare',
    [
      '-m',
      'bash',
      '-c',
      'mount -t tmpfs none /run && mkdir -m 0755 /run/sshd && "$0" -t -f "$1" -h "$2" && "$0" -T -f "$1" -h "$2"',
      SSHD!,
      conf,
      hostKey,
    ],
    { encoding: 'utf8' },
  )
  const settings = new Map<string, string>()
  for (const l of r.stdout.split('\n')) {
    const i = l.indexOf(' ')
    if (i > 0) settings.set(l.slice(0, i), l.slice(i + 1))
  }
  return { ok: r.status === 0, out: r.stdout + r.stderr, settings }
}

function hostKey(dir: string): string {
  const k = join(dir, 'host_key')
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', k])
  if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`)
  return k
}

t.test("firewall: RHEL's cockpit and dhcpv6-client are removed from the zone unless host.firewall keeps them", async (t) => {
  const firewallOf = (host: string) => {
    const ks = renderKickstart(planOf(host), { source: 'cdrom' })
    const cmds = parseKickstart(ks).commands.filter((c) => c.name === 'firewall')
    t.equal(cmds.length, 1, 'one firewall command')
    return cmds[0]!.args
  }
  t.same(
    firewallOf(''),
    ['--enabled', '--service=ssh', '--port=8443:tcp', '--remove-service=cockpit,dhcpv6-client'],
    'default: only ssh and the registry port stay open',
  )
  t.same(
    firewallOf('  firewall:\n    keepServices: [cockpit]\n'),
    ['--enabled', '--service=ssh', '--port=8443:tcp', '--remove-service=dhcpv6-client'],
    'cockpit kept',
  )
  t.same(
    firewallOf('  firewall:\n    keepServices: [dhcpv6-client, cockpit]\n'),
    ['--enabled', '--service=ssh', '--port=8443:tcp'],
    'both kept: nothing removed',
  )
  t.throws(
    () =>
      loadConfigText(
        'apiVersion: mirror-appliance/v1\nhost:\n  disk: {device: vda}\n  firewall:\n    keepServices: [http]\n',
        'appliance.yaml',
        { baseDir: '/' },
      ),
    /host\.firewall\.keepServices\[0\]: must be one of cockpit, dhcpv6-client/,
    'only the services RHEL adds can be kept',
  )
})

t.test('sshd settings: defaults from the users, overrides from host.ssh, in every rendering', async (t) => {
  const settingsOf = (host: string) => {
    const m = hostModel(planOf(host))
    const script = m.files.find((f) => f.path === SSHD_SETTINGS_SCRIPT)!.contents.toString()
    return [/^permit_root_login='([^']*)'$/m.exec(script)?.[1], /^password_authentication='([^']*)'$/m.exec(script)?.[1]]
  }
  t.same(settingsOf(''), ['prohibit-password', 'yes'], 'no SSH key anywhere: passwords stay (root never by password)')
  t.same(settingsOf(withKey), ['prohibit-password', 'no'], 'a user with a key: password logins off')
  t.same(settingsOf(withKey + '  ssh:\n    passwordAuthentication: true\n    permitRootLogin: "no"\n'), ['no', 'yes'], 'the config decides')

  const plan = planOf(withKey)
  const ign = JSON.parse(renderIgnition(plan))
  t.ok(
    ign.systemd.units.some((u: { name: string; enabled: boolean }) => u.name === SSHD_SETTINGS_UNIT && u.enabled),
    'Ignition enables the unit',
  )
  t.ok(
    ign.storage.files.some((f: { path: string; mode: number }) => f.path === SSHD_SETTINGS_SCRIPT && f.mode === 0o755),
    'and lays down the script',
  )
  const unit = hostModel(plan)
    .files.find((f) => f.path.endsWith(SSHD_SETTINGS_UNIT))!
    .contents.toString()
  t.match(unit, /^Before=sshd\.service$/m, 'the unit runs before sshd')
  t.match(unit, new RegExp(`^ConditionPathExists=!${SSHD_SETTINGS_DONE}$`, 'm'), 'and only until the settings are in')
  const ks = renderKickstart(plan, { source: 'cdrom' })
  t.match(ks, new RegExp(`^'${SSHD_SETTINGS_SCRIPT}'$`, 'm'), 'the kickstart runs the script in %post')
  t.notMatch(ks, /sshd_config\.d/, 'no drop-in: RHEL 8 would ignore it')
})

t.test(
  "sshd settings script on RHEL 8's sshd_config: first values win, RHEL's lines commented, run twice = run once, Match blocks left alone",
  {
    skip: NO_SSHD_CHECK,
  },
  async (t) => {
    const d = mkdtempSync(join(tmpdir(), 'sshd-settings-'))
    t.teardown(() => rmSync(d, { recursive: true, force: true }))
    const key = hostKey(d)
    const m = hostModel(planOf(withKey + '  ssh:\n    permitRootLogin: "no"\n'))
    const script = join(d, 'sshd-settings')
    writeFileSync(script, m.files.find((f) => f.path === SSHD_SETTINGS_SCRIPT)!.contents)
    const root = join(d, 'root')
    mkdirSync(join(root, 'etc/ssh'), { recursive: true })
    const conf = join(root, 'etc/ssh/sshd_config')
    // RHEL 8's file plus a Match block an administrator wrote
    writeFileSync(conf, readFileSync(RHEL8_SSHD_CONFIG, 'utf8') + 'Match Address 192.0.2.0/24\n\tPasswordAuthentication yes\n')
    chmodSync(conf, 0o600)
    const before = sshdEffective(conf, key)
    t.ok(before.ok, before.out)
    t.equal(before.settings.get('permitrootlogin'), 'yes', "RHEL 8's file as shipped: root may log in with a password")

    const runScript = () => spawnSync('bash', [script], { encoding: 'utf8', env: { ...process.env, MA_ROOT: root } })
    const r1 = runScript()
    t.equal(r1.status, 0, r1.stderr)
    const once = readFileSync(conf, 'utf8')
    t.equal(runScript().status, 0)
    t.equal(readFileSync(conf, 'utf8'), once, 'a second run changes nothing')
    t.equal(lstatSync(conf).mode & 0o777, 0o600, 'the mode of the file it replaced')
    t.ok(existsSync(join(root, SSHD_SETTINGS_DONE)), 'the done file the unit checks')
    t.match(once, /^#PermitRootLogin yes {4}# mirror-appliance: set at the top of this file$/m, "RHEL's line commented, saying why")
    t.match(once, /^\tPasswordAuthentication yes$/m, 'the Match block is the administrator’s and stays')
    t.equal(once.match(/^[^#\s]*PermitRootLogin/gim)?.length, 1, 'one active PermitRootLogin line')

    const after = sshdEffective(conf, key)
    t.ok(after.ok, `sshd -t accepts the file: ${after.out}`)
    t.equal(after.settings.get('permitrootlogin'), 'no')
    t.equal(after.settings.get('passwordauthentication'), 'no')

    rmSync(conf)
    const r3 = runScript()
    t.equal(r3.status, 0, 'no sshd_config (no openssh-server): nothing to do, not a failure')
    t.match(r3.stderr, /does not exist/)
  },
)

/** A root with this machine's userland: /usr (bind-mounted read-only by the caller) and the few /etc files useradd and the dynamic linker read. */
function minimalRoot(d: string): string {
  const root = join(d, 'root')
  for (const x of [
    'etc/ssh',
    'etc/skel',
    'etc/systemd/system',
    'root',
    'home',
    'tmp',
    'var/tmp',
    'var/lib',
    'proc',
    'sys',
    'dev',
    'run',
    'usr',
    'mnt',
  ])
    mkdirSync(join(root, x), { recursive: true })
  for (const l of ['bin', 'sbin', 'lib', 'lib64']) {
    const st = lstatSync(`/${l}`, { throwIfNoEntry: false })
    if (st?.isSymbolicLink()) symlinkSync(readlinkSync(`/${l}`), join(root, l))
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n')
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n')
  writeFileSync(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o600 })
  writeFileSync(join(root, 'etc/gshadow'), 'root:*::\n', { mode: 0o600 })
  for (const f of ['login.defs', 'ld.so.cache', 'nsswitch.conf'])
    if (existsSync(`/etc/${f}`)) copyFileSync(`/etc/${f}`, join(root, 'etc', f))
  // the programs /usr/bin/awk and friends point at through /etc/alternatives
  if (existsSync('/etc/alternatives'))
    cpSync('/etc/alternatives', join(root, 'etc/alternatives'), { recursive: true, verbatimSymlinks: true })
  // Debian's openssh-server makes sshd.service an alias of ssh.service, as on the stand-in guest
  if (existsSync('/lib/systemd/system/ssh.service'))
    symlinkSync('/lib/systemd/system/ssh.service', join(root, 'etc/systemd/system/sshd.service'))
  copyFileSync(RHEL8_SSHD_CONFIG, join(root, 'etc/ssh/sshd_config'))
  chmodSync(join(root, 'etc/ssh/sshd_config'), 0o600)
  return root
}

t.test(
  "the rendered kickstart, applied as Anaconda would to a root with RHEL 8's sshd_config: sshd refuses root passwords and, with a user's key, all passwords",
  {
    skip: NO_SSHD_CHECK,
  },
  async (t) => {
    const d = mkdtempSync(join(tmpdir(), 'ks-sshd-'))
    t.teardown(() => rmSync(d, { recursive: true, force: true }))
    const plan = planOf(withKey)
    const ksFile = join(d, 'ks.cfg')
    writeFileSync(ksFile, renderKickstart(plan, { source: 'cdrom' }))
    const root = minimalRoot(d)
    const r = applyKickstartWithHostUsr(ksFile, root, d)
    t.equal(r.status, 0, `kickstart applied: ${r.stderr}`)
    if (r.status !== 0) return
    const report = JSON.parse(r.stdout) as { scripts: { header: string; rc: number; output: string }[] }
    t.same(
      report.scripts.map((s) => s.rc),
      [0, 0],
      'both %post scripts succeed',
    )
    t.match(
      report.scripts[1]!.output,
      /sshd_config: PermitRootLogin prohibit-password, PasswordAuthentication no/,
      'the %post says what it set',
    )

    const conf = join(root, 'etc/ssh/sshd_config')
    t.equal(lstatSync(conf).mode & 0o777, 0o600, 'sshd_config keeps its mode')
    t.ok(existsSync(join(root, SSHD_SETTINGS_DONE)), 'done: the unit will not run it again')
    const wants = join(root, 'etc/systemd/system/multi-user.target.wants', SSHD_SETTINGS_UNIT)
    t.equal(
      lstatSync(wants, { throwIfNoEntry: false })?.isSymbolicLink() && readlinkSync(wants),
      `/etc/systemd/system/${SSHD_SETTINGS_UNIT}`,
      'the unit is enabled (for hosts set up without the %post)',
    )
    t.notOk(existsSync(join(root, 'etc/ssh/sshd_config.d')), 'no drop-in directory RHEL 8 would ignore')
    const s = sshdEffective(conf, hostKey(d))
    t.ok(s.ok, `sshd -t accepts the installed sshd_config: ${s.out}`)
    t.equal(
      s.settings.get('permitrootlogin'),
      'without-password',
      'root logs in by key only (sshd -T prints prohibit-password by its old name)',
    )
    t.equal(s.settings.get('passwordauthentication'), 'no', 'no password logins: the admin has a key')
    t.equal(
      s.settings.get('kbdinteractiveauthentication'),
      'no',
      "RHEL's ChallengeResponseAuthentication no still holds (no other password path)",
    )
    t.match(readFileSync(join(root, 'home/admin/.ssh/authorized_keys'), 'utf8'), KEY, 'and the key that makes that safe is in place')
  },
)

// The qcow2's NoCloud user-data read by cloud-init itself: Debian's cloud-init
// (22.4.2 in Debian 12) checks each seed with `cloud-init schema
// --config-file`. Root's password goes in the form the target minor's
// cloud-init reads (builder/media/cloud-init-forms.ts): chpasswd.users from
// cloud-init 22.3 on (RHEL 8.9, 8.10), which passes the check with no
// deprecation; chpasswd.list before (RHEL 8.4-8.8, whose cloud-init has no
// `users`), which the check accepts and flags as deprecated, and nothing else.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import YAML from 'yaml'
import type { RhelMinor } from '../builder/config/types.js'
import { findTool, run } from '../builder/exec.js'
import { CHPASSWD_USERS_SINCE, chpasswdForm, RHEL_CLOUD_INIT } from '../builder/media/cloud-init-forms.js'
import { enableLinks, noCloudSeedFromPlan, parseInstallSection, qcow2HostSpec, renderNoCloud } from '../builder/media/qcow2-host.js'
import { loadConfigText } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import { SSHD_SETTINGS_SCRIPT, SSHD_SETTINGS_UNIT } from '../builder/registry/layout.js'
import { loadFixture } from './hostspec-fixture.js'

const CI = process.env.CI === 'true'
const FIXTURES = new URL('./fixtures/', import.meta.url).pathname
const MINORS = Object.keys(RHEL_CLOUD_INIT) as RhelMinor[]
/** Written out, not derived: what each minor must get. */
const EXPECTED_FORM: Record<RhelMinor, 'list' | 'users'> = {
  '8.4': 'list',
  '8.5': 'list',
  '8.6': 'list',
  '8.7': 'list',
  '8.8': 'list',
  '8.9': 'users',
  '8.10': 'users',
}

const tmp = mkdtempSync(join(tmpdir(), 'nocloud-seed-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

const cloudInit = await findTool('cloud-init')
const noCloudInit = cloudInit ? null : 'cloud-init is not installed (apt-get install cloud-init; .ci/run does)'
if (noCloudInit && CI) t.fail(`${noCloudInit}: under CI=true this test must run`)

/** `cloud-init schema --config-file`: exit code, the keys it calls deprecated, and its whole output. */
async function schemaCheck(userData: string, name: string) {
  const file = join(tmp, name)
  writeFileSync(file, userData)
  const r = await run('cloud-init', ['schema', '--config-file', file], {
    nothrow: true,
    why: 'to check the NoCloud seed with cloud-init’s own schema',
  })
  const out = r.stdout + r.stderr
  return { code: r.code, out, deprecated: [...out.matchAll(/([\w.-]+): DEPRECATED/g)].map((m) => m[1]!) }
}

t.test('the per-minor table: chpasswd.users from cloud-init 22.3 on, list before', async (t) => {
  t.equal(CHPASSWD_USERS_SINCE, '22.3')
  for (const m of MINORS) t.equal(chpasswdForm(m), EXPECTED_FORM[m], `RHEL ${m} (cloud-init ${RHEL_CLOUD_INIT[m]}): ${EXPECTED_FORM[m]}`)
  t.equal(RHEL_CLOUD_INIT['8.4'], '20.3', 'RHEL 8.4 ships cloud-init 20.3')
  t.equal(RHEL_CLOUD_INIT['8.10'], '23.4', 'RHEL 8.10 ships cloud-init 23.4')
})

// static network, a user with password and keys, a key-only user, root with a password
const { plan } = loadFixture(join(FIXTURES, 'ks-static-uefi-fips', 'appliance.yaml'))
const base = noCloudSeedFromPlan(plan)

t.test('each minor gets its form, root’s hash unchanged in it', async (t) => {
  t.equal(base.rhel, plan.config.host.rhel, 'the seed carries the config’s RHEL minor')
  for (const m of MINORS) {
    const y = YAML.parse(renderNoCloud({ ...base, rhel: m })['user-data'])
    if (EXPECTED_FORM[m] === 'users') {
      t.same(
        y.chpasswd,
        { expire: false, users: [{ name: 'root', password: base.rootPasswordHash, type: 'hash' }] },
        `${m}: chpasswd.users`,
      )
    } else {
      t.same(y.chpasswd, { expire: false, list: [`root:${base.rootPasswordHash}`] }, `${m}: chpasswd.list as a YAML list`)
    }
  }
  const locked = YAML.parse(renderNoCloud({ ...base, rootPasswordHash: null, rhel: '8.10' })['user-data'])
  t.equal(locked.chpasswd, undefined, 'root locked: no chpasswd at all')
})

t.test('Debian’s cloud-init schema check on each minor’s seed', { skip: noCloudInit ?? false }, async (t) => {
  const version = (await run('cloud-init', ['--version'], { nothrow: true })).stdout + ''
  t.comment(`checker: ${version.trim()}`)
  // one check per distinct seed (minors with the same form render the same text; each run costs ~1 s)
  const byText = new Map<string, RhelMinor[]>()
  for (const m of MINORS) {
    const text = renderNoCloud({ ...base, rhel: m })['user-data']
    byText.set(text, [...(byText.get(text) ?? []), m])
  }
  t.equal(byText.size, 2, 'two distinct seeds: the list form and the users form')
  for (const [text, minors] of byText) {
    const label = `RHEL ${minors.join(', ')}`
    t.same([...new Set(minors.map((m) => EXPECTED_FORM[m]))], [EXPECTED_FORM[minors[0]!]], `${label}: one form for all of them`)
    const r = await schemaCheck(text, `user-data-${minors[0]}`)
    t.equal(r.code, 0, `${label}: valid cloud-config\n${r.out}`)
    t.match(r.out, 'Valid cloud-config', `${label}: cloud-init says valid`)
    // the list form is what 8.4-8.8 read; a checker that knows users flags it, and must flag nothing else
    t.same(
      r.deprecated,
      EXPECTED_FORM[minors[0]!] === 'users' ? [] : ['chpasswd.list'],
      `${label}: deprecations ${JSON.stringify(r.deprecated)}`,
    )
  }
  const locked = await schemaCheck(
    renderNoCloud({ ...base, rootPasswordHash: null, users: [], rhel: '8.10' })['user-data'],
    'user-data-default',
  )
  t.same([locked.code, locked.deprecated], [0, []], `no users, root locked: valid, nothing deprecated\n${locked.out}`)
})

t.test('the check can fail: a seed cloud-init rejects', { skip: noCloudInit ?? false }, async (t) => {
  const bad = renderNoCloud({ ...base, rhel: '8.10' })['user-data'].replace('expire: false', 'expire: "no"')
  const r = await schemaCheck(bad, 'user-data-bad')
  t.equal(r.code, 1, 'exit 1')
  t.match(r.out, /chpasswd\.expire: 'no' is not of type 'boolean'/, 'names the key and the problem')
})

// ---- sshd settings on the qcow2 route (issue 18, point 8) --------------------

const RHEL8_SSHD_CONFIG = join(FIXTURES, 'rhel8-sshd', 'sshd_config')
const SSHD = ['/usr/sbin/sshd', '/sbin/sshd'].find((p) => existsSync(p))
const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0
const noSshdCheck = !SSHD ? 'no sshd here (apt-get install openssh-server)' : !canUnshare ? 'unshare -m is not permitted here' : false
if (noSshdCheck && CI) t.fail(`${noSshdCheck}: under CI=true the sshd check must run`)
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@laptop'

function sshPlan(ssh: string) {
  const yaml =
    'apiVersion: mirror-appliance/v1\nhost:\n  hostname: q.example.internal\n  disk: {device: vda}\n' +
    `  users:\n    - name: admin\n      password: {plain: "a-Password-1"}\n      sshKeys:\n        - ${KEY}\n${ssh}registry:\n  flavor: distribution\n`
  return planAppliance(loadConfigText(yaml, 'appliance.yaml', { baseDir: '/' }), { epoch: 1700000000, seed: 'qcow2-ssh' }).plan
}

t.test('the qcow2 lays down the sshd settings script and enables its unit', async (t) => {
  const plan = sshPlan('')
  const spec = qcow2HostSpec(plan)
  const script = spec.files.find((f) => f.path === SSHD_SETTINGS_SCRIPT)
  const unit = spec.files.find((f) => f.path.endsWith(`/${SSHD_SETTINGS_UNIT}`))
  t.equal(script?.mode, 0o755, 'the script, executable')
  t.ok(unit, 'its unit')
  t.ok(spec.enableUnits.includes(SSHD_SETTINGS_UNIT), 'enabled')
  // the links qcow2.ts makes for an enabled unit: what systemctl enable would
  const links = enableLinks(SSHD_SETTINGS_UNIT, unit!.path, parseInstallSection(unit!.contents.toString()))
  t.same(
    links.map((l) => l.link),
    [`/etc/systemd/system/multi-user.target.wants/${SSHD_SETTINGS_UNIT}`],
  )
})

t.test('ssh_pwauth says what host.ssh.passwordAuthentication says, whoever has a password', async (t) => {
  const pwauth = (ssh: string) => YAML.parse(renderNoCloud(noCloudSeedFromPlan(sshPlan(ssh)))['user-data']).ssh_pwauth
  t.equal(pwauth(''), false, 'a user with keys: password login off, although that user has a password too')
  t.equal(pwauth('  ssh:\n    passwordAuthentication: true\n'), true, 'the config asks for password login')
})

/**
 * On RHEL 8's sshd_config: the unit's script (as the first boot runs it,
 * before sshd), then cloud-init's own set_passwords edit with the seed's
 * ssh_pwauth (cloudinit.ssh_util.update_ssh_config, the installed cloud-init),
 * then what a real sshd makes of the result (`sshd -T`).
 */
t.test('the booted qcow2’s sshd: script, then cloud-init, then sshd -T', { skip: noCloudInit ?? noSshdCheck }, async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'qcow2-sshd-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  const effective = (ssh: string) => {
    const plan = sshPlan(ssh)
    const root = join(d, ssh ? 'with-pw' : 'default')
    mkdirSync(join(root, 'etc/ssh'), { recursive: true })
    const conf = join(root, 'etc/ssh/sshd_config')
    writeFileSync(conf, readFileSync(RHEL8_SSHD_CONFIG, 'utf8'), { mode: 0o600 })
    const script = join(root, 'sshd-settings')
    writeFileSync(script, qcow2HostSpec(plan).files.find((f) => f.path === SSHD_SETTINGS_SCRIPT)!.contents)
    const s = spawnSync('bash', [script], { encoding: 'utf8', env: { ...process.env, MA_ROOT: root } })
    t.equal(s.status, 0, s.stderr)
    const pw = YAML.parse(renderNoCloud(noCloudSeedFromPlan(plan))['user-data']).ssh_pwauth
    // the interpreter cloud-init itself runs with (its #! line), not whatever python3 is first on PATH
    const python = readFileSync(cloudInit!, 'utf8')
      .split('\n')[0]!
      .replace(/^#!\s*/, '')
      .split(/\s+/)[0]!
    const ci = spawnSync(
      python,
      [
        '-c',
        'import sys\nfrom cloudinit import ssh_util\nssh_util.update_ssh_config({"PasswordAuthentication": sys.argv[1]}, sys.argv[2])',
        pw ? 'yes' : 'no',
        conf,
      ],
      { encoding: 'utf8' },
    )
    t.equal(ci.status, 0, ci.stderr)
    const key = join(root, 'host_key')
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
    const r = spawnSync(
      'unshare',
      ['-m', 'bash', '-c', 'mount -t tmpfs none /run && mkdir -m 0755 /run/sshd && "$0" -T -f "$1" -h "$2"', SSHD!, conf, key],
      { encoding: 'utf8' },
    )
    t.equal(r.status, 0, r.stderr)
    return Object.fromEntries(
      r.stdout
        .split('\n')
        .filter((l) => /^(permitrootlogin|passwordauthentication) /.test(l))
        .map((l) => l.split(' ')),
    )
  }
  t.same(
    effective(''),
    { permitrootlogin: 'without-password', passwordauthentication: 'no' },
    'default with a key: root by key only, no passwords',
  )
  t.same(
    effective('  ssh:\n    passwordAuthentication: true\n'),
    { permitrootlogin: 'without-password', passwordauthentication: 'yes' },
    'the config asks for passwords',
  )
})

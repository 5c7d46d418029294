// mirror-registryctl install / uninstall from an extracted bundle, run for
// real under bash against a scratch root with recording fakes for podman,
// systemctl, firewall-cmd, skopeo, curl, ss, getenforce, timedatectl, getent,
// ssh and scp (test/helpers/ctl-harness.ts). openssl, tar, htpasswd, df are real.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { testPlan } from './helpers/bundle-fixture.js'
import { ctlHarness } from './helpers/ctl-harness.js'
import { userCa } from './helpers/user-ca.js'

const mode = (p: string) => statSync(p).mode & 0o777
const MUTATING =
  /^(systemctl (start|stop|enable|disable|daemon-reload|restart)|firewall-cmd --quiet|skopeo copy --quiet|update-ca-trust|podman (rmi|network rm))/

t.test(
  'install (quay) on an existing host: the init user is made while Quay publishes on loopback only, then its port opens (issue 18 point 4)',
  async (t) => {
    // the order on the host, against recording fakes (no Quay image can run here)
    const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
    const live = join(h.root, 'etc/containers/systemd/quay-app.container')
    t.match(
      readFileSync(join(h.bundleDir, 'files/etc/containers/systemd/quay-app.container'), 'utf8'),
      /^PublishPort=127\.0\.0\.1:8443:8443$/m,
      'the bundle places it on loopback',
    )
    const r = h.run(['install'], { FAKE_WATCH: live })
    t.equal(r.status, 0, r.out)
    const watch = readFileSync(`${h.log}.watch`, 'utf8').split('\n').filter(Boolean)
    const find = (re: RegExp, after = -1) => watch.findIndex((l, i) => i > after && re.test(l))
    const start = find(/^systemctl start quay-redis\.service quay-app\.service \|/)
    const init = find(
      /^curl .* --resolve registry\.lab\.example:8443:127\.0\.0\.1 .*\/api\/v1\/user\/initialize \| PublishPort=127\.0\.0\.1:8443:8443 $/,
    )
    const restart = find(/^systemctl restart quay-app\.service \| PublishPort=8443:8443 $/)
    const health = find(/^curl .*\/health\/instance \| PublishPort=8443:8443 $/, restart)
    const push = find(/^skopeo copy --quiet --all /)
    t.ok(
      start >= 0 && start < init && init < restart && restart < health && health < push,
      `start ${start} < initialize on loopback ${init} < restart open ${restart} < health ${health} < push ${push}`,
    )
    t.match(readFileSync(live, 'utf8'), /^PublishPort=8443:8443$/m, 'installed: Quay published on every address')
    t.match(r.out, /installed: https:\/\/registry\.lab\.example:8443/)
    // again after uninstall (data kept, Quay initialized already): the same flow, the port opens again
    t.equal(h.run(['uninstall', '--yes'], {}, join(h.root, 'usr/local/bin/mirror-registryctl')).status, 0)
    const n = h.calls().length
    const again = h.run(['install'], { FAKE_INIT_CODE: '400' })
    t.equal(again.status, 0, again.out)
    t.match(again.out, /exists already and can log in/)
    t.ok(h.calls().slice(n).includes('systemctl restart quay-app.service'), 'reopened')
    t.match(readFileSync(live, 'utf8'), /^PublishPort=8443:8443$/m)
  },
)

t.test(
  'install (quay): preflight, files with their modes and owners, firewall, first-boot steps; state and day-2 script in place',
  async (t) => {
    const plan = testPlan()
    const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
    const r = h.run(['install'])
    t.equal(r.status, 0, r.out)
    t.match(r.out, /preflight passed/)
    const calls = h.calls()
    const firstChange = calls.findIndex((c) => MUTATING.test(c))
    for (const check of [
      /^ss -H -ltn sport = :8443$/,
      /^getenforce/,
      /^timedatectl show -p NTPSynchronized/,
      /^getent hosts registry\.lab\.example$/,
      /^firewall-cmd --state$/,
      /^podman version/,
    ]) {
      const i = calls.findIndex((c) => check.test(c))
      t.ok(i >= 0 && i < firstChange, `preflight ${check} runs before anything changes`)
    }
    t.ok(calls.includes('firewall-cmd --quiet --permanent --add-port=8443/tcp'))
    t.ok(calls.includes('systemctl start quay-redis.service quay-app.service'))
    t.ok(
      calls.some((c) => c.startsWith('skopeo copy --quiet --all') && c.endsWith('docker://registry.lab.example:8443/ocp/release1:4.14.1')),
      'content pushed',
    )
    // the watchdog's and the renewal's timers are the only units to enable (issue 19 points 7, 8)
    t.same(
      calls.filter((c) => c.startsWith('systemctl enable')),
      ['systemctl enable mirror-appliance-health.timer mirror-appliance-renew-cert.timer'],
      'quadlet units need no enable',
    )
    // every file of files.tsv at its place with its mode and owner
    const rows = readFileSync(join(h.bundleDir, 'files.tsv'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('\t'))
    t.ok(rows.length > 20)
    for (const [kind, m, owner, group, path] of rows) {
      const p = join(h.root, path!)
      if (path === '/etc/mirror-appliance/quay-initialize.json') {
        t.notOk(existsSync(p), `${path}: placed, used by first boot, deleted (it holds the init password)`)
        continue
      }
      const st = statSync(p)
      if (path!.startsWith('/root/mirror-appliance') && kind !== 'dir') continue // first boot rewrites these (tested there)
      t.equal((st.mode & 0o7777).toString(8).padStart(4, '0'), m, `${path} mode ${m}`)
      t.equal(String(st.uid), owner === 'root' ? '0' : owner, `${path} owner`)
      t.equal(String(st.gid), group === 'root' ? '0' : group, `${path} group`)
      // Quay's live unit: placed publishing on loopback, replaced by its open twin once the init user exists
      const source = path === '/etc/containers/systemd/quay-app.container' ? '/etc/mirror-appliance/open-units/quay-app.container' : path!
      if (kind !== 'dir' && !path!.startsWith('/etc/motd.d'))
        t.equal(readFileSync(p, 'utf8'), readFileSync(join(h.bundleDir, 'files', source), 'utf8'), `${path} contents`)
    }
    t.ok(existsSync(join(h.root, 'var/lib/mirror-appliance/firstboot/done')), 'first boot steps finished')
    t.equal(mode(join(h.root, 'usr/local/bin/mirror-registryctl')), 0o755)
    t.equal(
      readFileSync(join(h.root, 'usr/local/bin/mirror-registryctl'), 'utf8'),
      readFileSync(join(h.bundleDir, 'mirror-registryctl'), 'utf8'),
    )
    t.match(h.read('etc/mirror-appliance/registryctl.conf'), /^STATE=installed$/m)
    t.equal(mode(join(h.root, 'etc/mirror-appliance/registryctl.conf')), 0o600)
    // first boot checks the copy (sha256sum -c), then removes it once the content is pushed (content.keepPayload unset)
    t.match(r.out, /payload verified/, 'payload copied intact')
    t.ok(
      r.out.includes(`payload removed (${join(h.root, 'var/lib/mirror-registry/.payload')})`),
      'stored on the data volume, linked from the state dir; removed after the push',
    )
    t.notOk(existsSync(join(h.root, 'var/lib/mirror-appliance/payload')), 'the link goes with it')

    const again = h.run(['install'])
    t.equal(again.status, 1)
    t.match(again.out, /installed here already .*use 'mirror-registryctl upgrade BUNDLE', or 'mirror-registryctl uninstall' first/)
  },
)

// Each preflight failure: the message, and not one byte of the root changed, no mutating call.
const failures: { name: string; env?: Record<string, string>; args?: string[]; prep?: (root: string) => void; msg: RegExp }[] = [
  {
    name: 'RHEL 9',
    prep: (r) => writeFileSync(join(r, 'etc/os-release'), 'ID="rhel"\nVERSION_ID="9.4"\n'),
    msg: /VERSION_ID=9\.4 in \/etc\/os-release; this bundle is for RHEL 8/,
  },
  {
    name: 'Debian',
    prep: (r) => writeFileSync(join(r, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'),
    msg: /Debian GNU\/Linux 12 \(bookworm\) \(ID=debian in \/etc\/os-release\) is not RHEL 8/,
  },
  {
    name: 'podman 4.2 with quadlet units',
    env: { FAKE_PODMAN_VERSION: '4.2.0' },
    msg: /podman 4\.2\.0 is older than 4\.4: this bundle's units are quadlets/,
  },
  {
    name: 'disk',
    env: { MA_MIN_FREE_KB: String(2 ** 40) },
    msg: /disk: \d+ MiB free at .* \(for the data directory \/var\/lib\/mirror-registry\); needs \d+ MiB/,
  },
  { name: 'port in use', env: { FAKE_PORT_BUSY: '1' }, msg: /port 8443\/tcp is in use: LISTEN 0 128 0\.0\.0\.0:8443/ },
  {
    name: 'hostname does not resolve',
    env: { FAKE_RESOLVE: 'no' },
    msg: /registry\.lab\.example does not resolve on this host; add it to DNS or to \/etc\/hosts/,
  },
  {
    // another name is installed under it (issue 19 point 6, test/registryctl-rename.test.ts); a CA key that cannot sign stops it
    name: 'another hostname, unreadable --caKey',
    args: ['--quayHostname', 'other.example', '--caKey', '/nonexistent'],
    msg: /preflight: CA key \/nonexistent: cannot read it/,
  },
  { name: 'short password', args: ['--initPassword', 'short'], msg: /--initPassword: must be at least 8 characters/ },
  { name: 'relative data dir', args: ['--quayRoot', 'data'], msg: /--quayRoot data: must be an absolute path/ },
  { name: 'key without cert', args: ['--sslKey', '/nonexistent'], msg: /--sslCert and --sslKey go together/ },
]
for (const f of failures) {
  t.test(`preflight fails (${f.name}): clear message, nothing changed`, async (t) => {
    const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
    f.prep?.(h.root)
    const before = h.snapshot()
    const r = h.run(['install', ...(f.args ?? [])], f.env)
    t.equal(r.status, 1, r.out)
    t.match(r.out, f.msg)
    t.match(r.out, /preflight failed \(\d+ problem\(s\)\); nothing was changed/)
    t.same(h.snapshot(), before, 'the root is byte for byte as before')
    t.same(
      h.calls().filter((c) => MUTATING.test(c)),
      [],
      'no mutating tool call',
    )
  })
}

t.test('preflight reports every problem at once; warnings do not stop it', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install'], { FAKE_PORT_BUSY: '1', FAKE_RESOLVE: 'no', FAKE_PODMAN_VERSION: '4.3.1' })
  t.match(r.out, /preflight failed \(3 problem\(s\)\)/)
  const w = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const ok = w.run(['install'], { FAKE_SELINUX: 'Permissive', FAKE_NTP: 'no', FAKE_FIREWALLD: 'not running' })
  t.equal(ok.status, 0, ok.out)
  t.match(ok.out, /warning: SELinux is Permissive/)
  t.match(ok.out, /warning: the clock is not synchronized \(timedatectl NTPSynchronized=no\)/)
  t.match(ok.out, /warning: firewalld is not running: port\(s\) 8443\/tcp are not opened/)
  t.notOk(
    w.calls().some((c) => c.startsWith('firewall-cmd --quiet')),
    'no firewall-cmd changes without firewalld',
  )
})

t.test('plain units (RHEL 8.6, podman 4.0): older podman is fine, units are enabled', async (t) => {
  const h = await ctlHarness(testPlan({ rhel: '8.6', flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install'], { FAKE_PODMAN_VERSION: '4.0.2' })
  t.equal(r.status, 0, r.out)
  t.ok(
    h
      .calls()
      .includes(
        'systemctl enable mirror-appliance-network.service registry.service mirror-appliance-health.timer mirror-appliance-renew-cert.timer',
      ),
  )
  t.ok(existsSync(join(h.root, 'etc/systemd/system/registry.service')))
})

t.test('--quayRoot moves the data directory: files there, unit volumes rewritten, day 2 follows it', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install', '--quayRoot', '/srv/registry data/'])
  t.equal(r.status, 0, r.out)
  t.ok(existsSync(join(h.root, 'srv/registry data/registry/config.yml')))
  t.notOk(existsSync(join(h.root, 'var/lib/mirror-registry')), 'nothing at the built data dir')
  const unit = h.read('etc/containers/systemd/registry.container')
  t.match(unit, /^Volume=\/srv\/registry data\/registry\/storage:\/var\/lib\/registry:Z$/m)
  t.notMatch(unit, /\/var\/lib\/mirror-registry/)
  t.match(h.read('etc/mirror-appliance/registryctl.conf'), /^DATA_DIR=\/srv\/registry data$/m)
  const st = h.run(['status'], {}, join(h.root, 'usr/local/bin/mirror-registryctl'))
  t.match(st.out, /disk: .* used in \/srv\/registry data;/)
})

t.test('--initPassword: pull secret, curl config and bcrypt htpasswd (checked by Apache htpasswd) carry it', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install', '--initPassword', 'n3w-Passw0rd!'])
  t.equal(r.status, 0, r.out)
  const ps = JSON.parse(h.read('root/mirror-appliance/pull-secret.json'))
  t.equal(Buffer.from(ps.auths['registry.lab.example:8443'].auth, 'base64').toString(), 'init:n3w-Passw0rd!')
  t.match(h.read('etc/mirror-appliance/registry-auth.curl'), /^user = "init:n3w-Passw0rd!"$/m)
  t.match(h.read('root/mirror-appliance/credentials.txt'), /^Password:  n3w-Passw0rd!$/m)
  const htp = join(h.root, 'var/lib/mirror-registry/registry/auth/htpasswd')
  t.equal(mode(htp), 0o600)
  t.equal(spawnSync('htpasswd', ['-vb', htp, 'init', 'n3w-Passw0rd!']).status, 0, 'new password verifies')
  t.not(spawnSync('htpasswd', ['-vb', htp, 'init', plan().secrets.initPassword]).status, 0, 'old one does not')
  function plan() {
    return testPlan({ flavor: 'distribution' })
  }
})

t.test(
  '--initPassword with & and | (sed replacement characters): the install finishes and credentials.txt carries it exactly',
  async (t) => {
    const pw = 'R&D|ops&&x|y/z'
    const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
    const r = h.run(['install', '--initPassword', pw])
    t.equal(r.status, 0, r.out)
    const creds = h.read('root/mirror-appliance/credentials.txt')
    t.equal(creds.match(/^Password:.*$/gm)?.join('\n'), `Password:  ${pw}`, 'one Password line, the password verbatim')
    t.match(creds, /^User: {6}init$/m, 'the rest of the file is as it was')
    t.equal(
      Buffer.from(
        JSON.parse(h.read('root/mirror-appliance/pull-secret.json')).auths['registry.lab.example:8443'].auth,
        'base64',
      ).toString(),
      `init:${pw}`,
    )
    t.equal(
      spawnSync('htpasswd', ['-vb', join(h.root, 'var/lib/mirror-registry/registry/auth/htpasswd'), 'init', pw]).status,
      0,
      'htpasswd verifies it',
    )
    t.match(h.read('var/lib/mirror-registry/registry/auth/htpasswd'), /^init:\$2y\$12\$/, 'bcrypt cost 12: a password a person chose')
    t.ok(existsSync(join(h.root, 'var/lib/mirror-appliance/firstboot/done')), 'first boot steps finished')
  },
)

t.test('--initPassword (quay): the initialize call gets it, and the request is deleted once used', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const kept = join(h.base, 'kept')
  mkdirSync(kept)
  t.equal(h.run(['install', '--initPassword', 'Quay-Init-1234'], { FAKE_KEEP_DATA: kept }).status, 0)
  t.same(JSON.parse(readFileSync(join(kept, 'quay-initialize.json'), 'utf8')), {
    username: 'init',
    password: 'Quay-Init-1234',
    email: 'init@registry.lab.example',
    access_token: true,
  })
  t.notOk(
    existsSync(join(h.root, 'etc/mirror-appliance/quay-initialize.json')),
    'no copy of the password left in /etc/mirror-appliance (issue 18 point 5)',
  )
})

t.test("install (quay) reserves uid 1001 for Quay's container with a locked account, and refuses when 1001 is a person's", async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  writeFileSync(join(h.root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n')
  writeFileSync(join(h.root, 'etc/group'), 'root:x:0:\nalice:x:1000:\n')
  const r = h.run(['install'])
  t.equal(r.status, 0, r.out)
  const calls = h.calls()
  t.ok(calls.includes('groupadd -g 1001 quay-container'), 'its group, gid 1001')
  t.ok(
    calls.includes(
      "useradd -u 1001 -g 1001 -c Quay's container user (mirror-appliance) -d /home/quay-container -M -s /sbin/nologin quay-container",
    ),
    'the account: no password (useradd leaves it locked), no home, no login shell',
  )
  t.ok(
    calls.indexOf('groupadd -g 1001 quay-container') < calls.findIndex((c) => c.startsWith('systemctl start')),
    'before the registry starts',
  )
  t.match(h.read('etc/passwd'), /^quay-container:x:1001:1001:/m)
  t.equal(statSync(join(h.root, 'var/lib/mirror-registry/quay-config/ssl.key')).uid, 1001, "Quay's key belongs to the account's uid")

  const dist = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  t.equal(dist.run(['install']).status, 0)
  t.notOk(
    dist.calls().some((c) => c.startsWith('useradd')),
    'distribution: no account (its files are root’s)',
  )

  // an existing host where 1001 is a person: refused before anything changes
  const taken = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  writeFileSync(
    join(taken.root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\n',
  )
  const before = taken.snapshot()
  const no = taken.run(['install'])
  t.equal(no.status, 1, no.out)
  t.match(
    no.out,
    /preflight: uid 1001 belongs to the account 'bob'; Quay's container runs as uid 1001 and its TLS key, config\.yaml and database would belong to 'bob'\. Give 'bob' another uid \(usermod -u NEW_UID bob, then chown its files\) or install on another host/,
  )
  t.match(no.out, /nothing was changed/)
  t.same(taken.snapshot(), before, 'the root is byte for byte as before')
  t.notOk(
    taken.calls().some((c) => c.startsWith('useradd') || MUTATING.test(c)),
    'no account made, no mutating call',
  )

  // the account from an earlier install: fine, not made twice
  const again = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  writeFileSync(
    join(again.root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/bash\nquay-container:x:1001:1001::/home/quay-container:/sbin/nologin\n',
  )
  t.equal(again.run(['install']).status, 0)
  t.notOk(
    again.calls().some((c) => c.startsWith('useradd')),
    'an existing quay-container account is kept',
  )
})

t.test('--sslCert/--sslKey/--sslCa: the user certificate goes everywhere the built one was', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const u = userCa(h.base)
  const r = h.run(['install', '--sslCert', u.cert, '--sslKey', u.key, '--sslCa', u.ca])
  t.equal(r.status, 0, r.out)
  t.equal(h.read('var/lib/mirror-registry/quay-config/ssl.cert'), readFileSync(u.cert, 'utf8'))
  t.equal(h.read('var/lib/mirror-registry/quay-config/ssl.key'), readFileSync(u.key, 'utf8'))
  t.equal(mode(join(h.root, 'var/lib/mirror-registry/quay-config/ssl.key')), 0o640, 'key keeps the mode of the file it replaces')
  for (const p of [
    'etc/pki/ca-trust/source/anchors/mirror-appliance-ca.crt',
    'etc/containers/certs.d/registry.lab.example:8443/ca.crt',
    'var/lib/mirror-registry/quay-config/extra_ca_certs/mirror-appliance-ca.crt',
  ])
    t.equal(h.read(p), readFileSync(u.ca, 'utf8'), `${p} is the user CA`)
})

t.test('--sslKey of another certificate, or a certificate for another name: refused in preflight', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const u = userCa(h.base)
  mkdirSync(join(h.base, 'other'))
  const o = userCa(join(h.base, 'other'), 'other.example')
  let r = h.run(['install', '--sslCert', u.cert, '--sslKey', o.key])
  t.match(r.out, /key .*other\/srv\.key does not belong to the certificate/)
  r = h.run(['install', '--sslCert', o.cert, '--sslKey', o.key])
  t.match(r.out, /certificate .*other\/srv\.crt does not cover registry\.lab\.example/)
  r = h.run(['install', '--sslCert', u.cert, '--sslKey', u.key, '--sslCa', o.ca])
  t.match(r.out, /does not verify against the CA/)
  t.notOk(existsSync(join(h.root, 'etc/mirror-appliance')), 'nothing installed')
})

t.test('--target user@host: the bundle goes over scp, install runs over ssh with sudo and quoted arguments', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const r = h.run([
    'install',
    '--target',
    'admin@reg.example',
    '-k',
    '/keys/id',
    '--quayRoot',
    "/srv/it's data",
    '--initPassword',
    'Secret12$x',
  ])
  t.equal(r.status, 0, r.out)
  const calls = h.calls()
  t.equal(calls.filter((c) => /^(ssh|scp) /.test(c)).length, calls.length, 'only ssh and scp run locally')
  t.match(calls[0]!, /^ssh -o BatchMode=yes -i \/keys\/id admin@reg\.example mkdir -m 0700 \/var\/tmp\/mirror-appliance-bundle\.\d+$/)
  t.match(
    calls[1]!,
    new RegExp(
      `^scp -o BatchMode=yes -i /keys/id -q -r ${h.bundleDir.replace(/[.]/g, '\\.')}/\\. admin@reg\\.example:/var/tmp/mirror-appliance-bundle\\.\\d+/$`,
    ),
  )
  t.match(
    calls[2]!,
    /^scp -o BatchMode=yes -i \/keys\/id -q \S+\/init-password admin@reg\.example:\/var\/tmp\/mirror-appliance-bundle\.\d+\/init-password$/,
    'the password goes as a file (test/secrets-cmdline.test.ts)',
  )
  const remote = calls[3]!.replace(/^ssh -o BatchMode=yes -i \/keys\/id admin@reg\.example /, '')
  t.match(remote, /^sudo bash /)
  // what the remote shell runs: the same words we were given, but the password is a file
  const words = spawnSync('bash', ['-c', `set -- ${remote.replace(/^sudo /, '')}; printf '%s\\n' "$@"`], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
  t.match(words.slice(2), [
    'install',
    '--quayRoot',
    "/srv/it's data",
    '--initPassword-file',
    /^\/var\/tmp\/mirror-appliance-bundle\.\d+\/init-password$/,
  ])
  t.match(calls[4]!, /sudo rm -rf \/var\/tmp\/mirror-appliance-bundle\.\d+$/, 'remote copy removed')
  t.notOk(existsSync(join(h.root, 'etc/mirror-appliance')), 'nothing installed locally')
})

t.test('an install interrupted during the first-boot steps resumes when run again', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install'], { FAKE_FAIL: '^systemctl start' })
  t.equal(r.status, 1)
  t.match(r.out, /install stopped during the first-boot steps .* run 'mirror-registryctl install' again to resume/)
  t.match(h.read('etc/mirror-appliance/registryctl.conf'), /^STATE=placed$/m)
  const n = h.calls().length
  const again = h.run(['install'])
  t.equal(again.status, 0, again.out)
  t.match(again.out, /resuming an unfinished install/)
  t.notOk(
    h
      .calls()
      .slice(n)
      .some((c) => /^(ss|getent hosts|firewall-cmd)/.test(c) && !c.startsWith('getent hosts')),
    'no second preflight',
  )
  t.notOk(
    h
      .calls()
      .slice(n)
      .some((c) => c.includes('containers-storage:')),
    'images not loaded again',
  )
  t.match(h.read('etc/mirror-appliance/registryctl.conf'), /^STATE=installed$/m)
})

t.test('uninstall: refuses without --yes and a terminal; keeps data; --purge removes it', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  t.equal(h.run(['install']).status, 0)
  const ctl = join(h.root, 'usr/local/bin/mirror-registryctl')
  const before = h.snapshot()
  const n = h.calls().length
  const refused = h.run(['uninstall'], {}, ctl)
  t.equal(refused.status, 1)
  t.match(refused.out, /refusing without a terminal to ask on; pass --yes to confirm/)
  t.same(h.snapshot(), before, 'nothing changed')
  t.same(h.calls().slice(n), [], 'no tool called')

  // data written by the registry
  writeFileSync(join(h.root, 'var/lib/mirror-registry/quay-storage/blob'), 'data')
  const r = h.run(['uninstall', '--yes'], {}, join(h.root, 'usr/local/bin/mirror-registryctl'))
  t.equal(r.status, 0, r.out)
  const calls = h.calls().slice(n)
  t.ok(calls.includes('systemctl stop quay-redis.service quay-app.service mirror-appliance-network.service'))
  t.ok(calls.includes('firewall-cmd --quiet --permanent --remove-port=8443/tcp'))
  t.ok(calls.some((c) => c.startsWith('podman rmi --ignore quay.io/projectquay/quay@sha256:')))
  for (const gone of [
    'var/lib/mirror-registry/.payload',
    'etc/containers/systemd/quay-app.container',
    'etc/mirror-appliance',
    'etc/pki/ca-trust/source/anchors/mirror-appliance-ca.crt',
    'etc/containers/certs.d/registry.lab.example:8443',
    'var/lib/mirror-appliance/payload',
    'usr/local/bin/mirror-registryctl',
  ])
    t.notOk(existsSync(join(h.root, gone)), `${gone} removed`)
  t.equal(h.read('var/lib/mirror-registry/quay-storage/blob'), 'data', 'data kept')
  t.ok(existsSync(join(h.root, 'var/lib/mirror-registry/quay-config/config.yaml')), 'data dir config kept')

  // reinstall over the kept data, then purge
  t.equal(h.run(['install']).status, 0, 'reinstall over kept data')
  const p = h.run(['uninstall', '--purge', '--yes'], {}, ctl)
  t.equal(p.status, 0, p.out)
  for (const gone of ['var/lib/mirror-registry', 'var/lib/mirror-appliance', 'root/mirror-appliance'])
    t.notOk(existsSync(join(h.root, gone)), `${gone} purged`)
  t.ok(existsSync(join(h.root, 'etc/os-release')), 'the rest of the host untouched')
})

for (const [name, dataDir, msg] of [
  ['a path that climbs out of MA_ROOT', '/../outside', /refusing to delete .*outside(\/\.payload)?: outside MA_ROOT/],
  ['a system directory', '/var/lib/../../etc', /refusing to delete .*: a system directory/],
] as const) {
  t.test(`destroy() refuses ${name}`, async (t) => {
    const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
    t.equal(h.run(['install']).status, 0)
    // a state file pointing the data dir somewhere bad: purge must refuse, not delete
    mkdirSync(join(h.base, 'outside'))
    writeFileSync(join(h.base, 'outside/keep'), 'x')
    const conf = join(h.root, 'etc/mirror-appliance/registryctl.conf')
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^DATA_DIR=.*$/m, `DATA_DIR=${dataDir}`))
    chmodSync(conf, 0o600)
    const r = h.run(['uninstall', '--purge', '--yes'])
    t.equal(r.status, 1)
    t.match(r.out, msg)
    t.ok(existsSync(join(h.base, 'outside/keep')), 'file outside the root still there')
    t.ok(existsSync(join(h.root, 'etc/os-release')), '/etc still there')
  })
}

// Secrets never reach a command line (issue 18, point 7): `ps` and sudo's log
// show those to every user of the host. mirror-registryctl and first boot run
// for real under bash (test/helpers/ctl-harness.ts); the recording fakes log
// the argv of every host tool they stand for, and a watcher reads every
// process's /proc/PID/cmdline while the command runs, which catches the real
// tools (htpasswd, base64, sed …) too.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { testPlan } from './helpers/bundle-fixture.js'
import { ctlHarness, type CtlHarness } from './helpers/ctl-harness.js'
import { watchCmdlines } from './helpers/cmdline-watch.js'

const fresh = (what: string) => `${what}-${randomBytes(6).toString('hex')}`
const HTPASSWD = 'var/lib/mirror-registry/registry/auth/htpasswd'

/** calls the fakes recorded that hold any of the secrets */
const leaks = (h: CtlHarness, secrets: string[]) => h.calls().filter((c) => secrets.some((s) => c.includes(s)))

t.test('install --initPassword-file (distribution): no process shows the password, the real htpasswd gets it on stdin', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  const pw = fresh('Init-Pw')
  const file = join(h.base, 'init-password')
  writeFileSync(file, pw + '\n', { mode: 0o600 })
  const watch = await watchCmdlines([pw], /htpasswd/)
  const r = h.run(['install', '--initPassword-file', file])
  const seen = await watch.stop()
  t.equal(r.status, 0, r.out)
  t.same(seen.hits, [], 'no command line held the password')
  t.ok(
    seen.seen.some((c) => / htpasswd -niB -C 12 init$/.test(c)),
    `the watcher saw htpasswd run (${seen.scans} scans): ${seen.seen.join('; ')}`,
  )
  t.same(leaks(h, [pw]), [], 'no faked tool was given the password')
  t.notMatch(r.out, /visible to other users/, 'no warning for a password read from a file')
  // checked after the watch: htpasswd -vb takes the password on its command line
  t.equal(spawnSync('htpasswd', ['-vb', join(h.root, HTPASSWD), 'init', pw]).status, 0, 'the bcrypt entry verifies with Apache htpasswd')
  t.match(h.read('etc/mirror-appliance/registry-auth.curl'), new RegExp(`^user = "init:${pw}"$`, 'm'))
})

t.test('install --initPassword - reads the password from stdin', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  const pw = fresh('Stdin-Pw')
  const watch = await watchCmdlines([pw], /htpasswd/)
  const r = h.run(['install', '--initPassword', '-'], {}, undefined, pw + '\n')
  const seen = await watch.stop()
  t.equal(r.status, 0, r.out)
  t.same(seen.hits, [])
  t.same(leaks(h, [pw]), [])
  t.match(h.read('root/mirror-appliance/credentials.txt'), new RegExp(`^Password:  ${pw}$`, 'm'))
})

t.test('install --initPassword VALUE still works, and says the value is visible to other users', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install', '--initPassword', 'Old-Style-Pw1'])
  t.equal(r.status, 0, r.out)
  t.match(r.out, /warning: --initPassword VALUE is visible to other users .*use --initPassword-file FILE or --initPassword - \(stdin\)/)
  t.equal(spawnSync('htpasswd', ['-vb', join(h.root, HTPASSWD), 'init', 'Old-Style-Pw1']).status, 0)
})

t.test('install --initPassword-file of a missing or empty file, --initPassword - with nothing on stdin: usage errors', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  writeFileSync(join(h.base, 'empty'), '')
  for (const [args, msg] of [
    [['--initPassword-file', join(h.base, 'nope')], /--initPassword-file .*nope: cannot read it/],
    [['--initPassword-file', join(h.base, 'empty')], /--initPassword-file .*empty: the file is empty/],
    [['--initPassword', '-'], /--initPassword -: no password on stdin/],
  ] as const) {
    const r = h.run(['install', ...args])
    t.equal(r.status, 2, r.out)
    t.match(r.out, msg)
  }
  t.same(h.calls(), [], 'nothing ran')
})

t.test('install --target: the password goes over scp as a 0600 file, never on the ssh/sudo command line', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const pw = fresh('Remote-Pw')
  const copied = join(h.base, 'scp')
  mkdirSync(copied)
  const watch = await watchCmdlines([pw], /^\S*(ssh|scp) /)
  const r = h.run(['install', '--target', 'admin@reg.example', '--initPassword', '-'], { FAKE_SCP_DIR: copied }, undefined, pw + '\n')
  const seen = await watch.stop()
  t.equal(r.status, 0, r.out)
  t.same(seen.hits, [], 'no local command line held the password')
  t.same(leaks(h, [pw]), [], 'neither ssh nor scp was given it')
  const calls = h.calls()
  const dest = /mkdir -m 0700 (\/var\/tmp\/mirror-appliance-bundle\.\d+)$/.exec(calls[0]!)?.[1]
  t.ok(dest, calls[0] ?? 'no ssh call')
  t.ok(
    calls.some((c) => new RegExp(`^scp -o BatchMode=yes -q \\S+/init-password admin@reg\\.example:${dest}/init-password$`).test(c)),
    'the password file is copied into the 0700 bundle copy',
  )
  t.equal(readFileSync(join(copied, 'init-password'), 'utf8'), pw + '\n')
  t.equal(statSync(join(copied, 'init-password')).mode & 0o777, 0o600, 'written 0600')
  const remote = calls.find((c) => / sudo bash /.test(c))!.replace(/^ssh -o BatchMode=yes admin@reg\.example sudo /, '')
  const words = spawnSync('bash', ['-c', `set -- ${remote}; printf '%s\\n' "$@"`], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
  t.same(words.slice(2), ['install', '--initPassword-file', `${dest}/init-password`], 'the remote install reads it from the file')
  t.match(calls.at(-1)!, new RegExp(`sudo rm -rf ${dest}$`), 'and the copy, password file included, is removed')
})

t.test('quay: install and status give no secret or token to any tool; the bearer token goes to curl in a header file', async (t) => {
  const plan = testPlan()
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  const token = fresh('tok')
  const { initPassword, redisPassword, quaySecretKey, quayDatabaseSecretKey } = plan.secrets
  const secrets = [initPassword, redisPassword, quaySecretKey, quayDatabaseSecretKey, token, 'tok-123']
  const watch = await watchCmdlines(secrets, /\bcurl\b/)
  const r = h.run(['install'], { FAKE_TOKEN: token })
  const st = h.run(['status'], { FAKE_TOKEN: token }, join(h.root, 'usr/local/bin/mirror-registryctl'))
  const seen = await watch.stop()
  t.equal(r.status, 0, r.out)
  // (status itself exits 1 here: the fixed-epoch test certificate has expired)
  t.same(seen.hits, [], 'no command line held a secret')
  t.same(leaks(h, secrets), [], 'no faked tool (podman, skopeo, curl, systemctl …) was given a secret')
  // the fake curl answers the catalog only to the token it handed out
  t.match(st.out, /^images: +1 repositories$/m, 'the catalog call carried the token')
  t.ok(
    h.calls().some((c) => /^curl .* -H @\S+ https:\/\/registry\.lab\.example:8443\/v2\/_catalog/.test(c)),
    'as curl -H @FILE',
  )
})

t.test('export --dest-creds-file: the credentials reach skopeo in an authfile, not --dest-creds', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  t.equal(h.run(['install']).status, 0)
  const creds = `mirror:${fresh('Dest-Pw')}`
  const file = join(h.base, 'dest-creds')
  writeFileSync(file, creds + '\n')
  const authfiles = join(h.base, 'authfiles')
  mkdirSync(authfiles)
  // skopeo copy stands in for the registry: it keeps the authfile it is given
  const watch = await watchCmdlines([creds, creds.split(':')[1]!], /skopeo/)
  const n = h.calls().length
  const r = h.run(['export', '--to-registry', 'dest.example:5000/mirror', '--dest-creds-file', file], { FAKE_KEEP_AUTHFILE: authfiles })
  const seen = await watch.stop()
  const calls = h.calls().slice(n)
  t.same(seen.hits, [])
  t.same(leaks(h, [creds.split(':')[1]!]), [])
  const copy = calls.find((c) => c.startsWith('skopeo copy'))
  t.ok(copy, `skopeo copy ran: ${r.out}`)
  t.match(copy!, / --dest-authfile \S+\/dest-auth\.json /)
  t.notMatch(copy!, /--dest-creds/)
  t.ok(
    calls.some((c) => /^skopeo inspect --raw --authfile \S+\/dest-auth\.json docker:\/\/dest\.example:5000\/mirror\//.test(c)),
    'the digest check reads with it too',
  )
  const auth = JSON.parse(readFileSync(join(authfiles, 'dest-auth.json'), 'utf8'))
  t.equal(
    Buffer.from(auth.auths['dest.example:5000'].auth, 'base64').toString(),
    creds,
    'a containers-auth.json entry for the destination registry',
  )
  t.equal(r.status, 0, r.out)
})

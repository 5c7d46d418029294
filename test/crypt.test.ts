import t from 'tap'
import { sha512crypt, hashPassword } from '../builder/plan/crypt.js'
import { seededRng } from '../builder/plan/random.js'
import { spawnSync } from 'node:child_process'

// Test vectors from Drepper's "Unix crypt using SHA-256 and SHA-512" (the
// specification glibc's crypt(3) implements; RHEL 8 stores root passwords as these hashes).
const vectors: [string, string, number | undefined, string][] = [
  [
    'Hello world!',
    'saltstring',
    undefined,
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
  ],
  [
    'Hello world!',
    'saltstringsaltstring',
    10000,
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
  ],
  [
    'This is just a test',
    'toolongsaltstring',
    5000,
    '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0',
  ],
  [
    'we have a short salt string but not a short password',
    'short',
    77777,
    '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0',
  ],
  [
    'a very much shorter password',
    'asaltof16chars..',
    1400,
    '$6$rounds=1400$asaltof16chars..$h4Xu4/wl870ZluHMyy5gQ2QkdOhNlEzegIsJYy2siJ/bslonsvO5ZXsrXKdiNNC8JE7/uZEJFKh7iKocS31IU.',
  ],
  [
    'the minimum number is still observed',
    'roundstoolow',
    10,
    '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.',
  ],
]

for (const [pw, salt, rounds, expected] of vectors) {
  t.equal(sha512crypt(pw, salt, rounds), expected, `vector: ${pw} / ${salt} / ${rounds}`)
}

t.test('hashPassword gives a valid $6$ hash that verifies with the same salt', async (t) => {
  const h = hashPassword('s3cret pass', seededRng('x'), 'root')
  t.match(h, /^\$6\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}$/)
  const salt = h.split('$')[2]!
  t.equal(sha512crypt('s3cret pass', salt), h)
  t.not(hashPassword('s3cret pass', seededRng('y'), 'root'), h, 'different seed, different salt')
})

t.test('agrees with glibc crypt (mkpasswd from Debian whois) on awkward passwords', async (t) => {
  const pws = ['x', 'pässwörd ünïcode', 'quote\' "dq" $(x) `y` \\', 'a'.repeat(200), ' leading space', '%end #']
  for (const pw of pws) {
    const salt = 'abcdefgh12345678'
    const r = spawnSync('mkpasswd', ['-m', 'sha-512', '-s', '-S', salt], { input: pw, encoding: 'utf8' })
    t.equal(r.status, 0, r.stderr)
    t.equal(sha512crypt(pw, salt), r.stdout.trim(), JSON.stringify(pw))
  }
})

// Issue 18: a password a person chose costs a guesser more. Checked by the
// consumers: glibc's crypt (through Python's crypt module, what verifies a
// login against /etc/shadow), mkpasswd, and Apache's htpasswd (bcrypt).
t.test('plain passwords: $6$ with rounds=100000, which glibc crypt verifies; generated ones keep the default', async (t) => {
  const { planSecrets } = await import('../builder/plan/secrets.js')
  const { PLAIN_PASSWORD_ROUNDS } = await import('../builder/plan/crypt.js')
  const { systemRng } = await import('../builder/plan/random.js')
  const { loadConfigText } = await import('../builder/config/load.js')
  t.ok(PLAIN_PASSWORD_ROUNDS >= 100_000)
  const rootPw = 'Plain root & pw|1'
  const userPw = 'it\'s a "user" pw $(x)'
  const yaml = `apiVersion: mirror-appliance/v1
host:
  disk: {device: vda}
  root: {plain: ${JSON.stringify(rootPw)}}
  users:
    - name: alice
      password: {plain: ${JSON.stringify(userPw)}}
    - name: bob
      password: {generate: true}
`
  const { config } = loadConfigText(yaml, 'appliance.yaml', { baseDir: '/' })
  const { secrets, stored } = planSecrets(config, systemRng)
  // [password, hash] pairs -> does crypt(password, hash) give hash? One python3 for all of them.
  const verify = (pairs: [string, string][]): boolean[] => {
    const py = 'import crypt,json,sys\nprint(json.dumps([crypt.crypt(p, h) == h for p, h in json.load(sys.stdin)]))'
    const r = spawnSync('python3', ['-W', 'ignore', '-c', py], { input: JSON.stringify(pairs), encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`python3 crypt: ${r.stderr}`)
    return JSON.parse(r.stdout) as boolean[]
  }
  const chosen = [
    ['root', rootPw, secrets.rootPasswordHash!],
    ['alice', userPw, secrets.userPasswordHashes.alice!],
  ] as const
  const bob = secrets.userPasswordHashes.bob!
  const ok = verify([
    ...chosen.flatMap(([, pw, hash]): [string, string][] => [
      [pw, hash],
      [pw + 'x', hash],
    ]),
    [stored.userPasswords.bob!, bob],
  ])
  for (const [i, [who, pw, hash]] of chosen.entries()) {
    t.match(hash, /^\$6\$rounds=100000\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}$/, `${who}: rounds=100000 in the hash`)
    t.equal(ok[2 * i], true, `${who}: glibc crypt verifies it`)
    t.equal(ok[2 * i + 1], false, `${who}: and refuses another password`)
    const salt = hash.split('$')[3]!
    const mk = spawnSync('mkpasswd', ['-m', 'sha-512', '-R', '100000', '-S', salt, '-s'], { input: pw, encoding: 'utf8' })
    t.equal(mk.stdout.trim(), hash, `${who}: mkpasswd -R 100000 makes the same hash`)
  }
  t.match(bob, /^\$6\$[./A-Za-z0-9]{16}\$/, 'generated: the default 5000 rounds, no rounds= field')
  t.equal(ok[4], true, 'which glibc crypt verifies too')
})

t.test('htpasswd: bcrypt cost 12 for a chosen init password, 10 for a generated one; Apache htpasswd verifies both', async (t) => {
  const { htpasswdLine, BCRYPT_COST_CHOSEN } = await import('../builder/registry/htpasswd.js')
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  t.equal(BCRYPT_COST_CHOSEN, 12)
  const d = mkdtempSync(join(tmpdir(), 'htpasswd-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  const salt = Buffer.alloc(16, 7)
  for (const [cost, pw] of [
    [12, 'Chosen & |pw'],
    [10, 'generated-0123456789abcdef'],
  ] as const) {
    const line = htpasswdLine('init', pw, salt, cost)
    t.match(line, new RegExp(`^init:\\$2b\\$${cost}\\$`), `cost ${cost} in the hash`)
    writeFileSync(join(d, 'htpasswd'), line + '\n')
    t.equal(spawnSync('htpasswd', ['-vb', join(d, 'htpasswd'), 'init', pw]).status, 0, `cost ${cost}: htpasswd -v verifies it`)
    t.equal(spawnSync('htpasswd', ['-vb', join(d, 'htpasswd'), 'init', pw + 'x']).status, 3, `cost ${cost}: and refuses another password`)
  }
  t.throws(() => htpasswdLine('init', 'pw', salt, 3), /bcrypt cost must be 4\.\.31/)

  // The registry host's htpasswd: the cost follows where the password came from.
  // (The test plan's PKI and secrets are stand-ins: only the htpasswd matters here.)
  const { registryHostSpec } = await import('../builder/registry/hostspec.js')
  const { loadConfigText } = await import('../builder/config/load.js')
  const { planFor } = await import('./hostspec-fixture.js')
  const htpasswdOf = (initUser: string) => {
    const yaml = `apiVersion: mirror-appliance/v1\nhost:\n  disk: {device: vda}\nregistry:\n  flavor: distribution\n${initUser}`
    const { config, digest } = loadConfigText(yaml, 'appliance.yaml', { baseDir: '/' })
    const plan = planFor(config, digest)
    const host = registryHostSpec({ config, secrets: plan.secrets, pki: plan.pki })
    return { line: host.files.find((f) => f.path.endsWith('/auth/htpasswd'))!.contents.toString(), pw: plan.secrets.initPassword }
  }
  const chosen = htpasswdOf('  initUser: {password: "Chosen-by-ops&|1"}\n')
  t.match(chosen.line, /^init:\$2b\$12\$/, 'registry.initUser.password: cost 12')
  writeFileSync(join(d, 'htpasswd'), chosen.line)
  t.equal(spawnSync('htpasswd', ['-vb', join(d, 'htpasswd'), 'init', chosen.pw]).status, 0, 'verified by htpasswd -v')
  t.match(htpasswdOf('').line, /^init:\$2b\$10\$/, 'generated init password: cost 10')
})

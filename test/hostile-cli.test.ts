// Hostile input through the whole CLI (test/kickstart-fuzz.test.ts fuzzes
// the renderer in-process; test/payload-import.test.ts hostile archives):
//  - config values full of shell and kickstart metacharacters go through
//    `render`, and the result is read back by the programs that consume it:
//    pykickstart's view of the sections and Python's shlex for command lines,
//    bash -n and shellcheck for every %post, bash itself running the
//    host-spec %post under a temp root (a canary file shows any command
//    substitution that ran), JSON.parse, curl -K against a local server for
//    the registry login, glibc's crypt(3) for the password hashes;
//  - YAML bombs (aliases, nesting, size) are refused with exit 2 by
//    validate, render and build, in bounded memory, writing nothing;
//  - a build with such a config writes nothing outside its output directory.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { run } from '../builder/exec.js'
import { runCli } from './helpers/cli.js'
import { diffSnapshots, snapshot, spawnCli } from './helpers/proc.js'
import { ksStructure, laidFromKickstart, lintBash, postSections, shlexSplit } from './hostspec-fixture.js'

const work = mkdtempSync(join(tmpdir(), 'hostile-cli-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const CANARY = join(work, 'PWNED')
const env = { SOURCE_DATE_EPOCH: '1700000000', MIRROR_APPLIANCE_CACHE: join(work, 'cache') }

interface Values {
  gecos: string
  initPw: string
  rootPw: string
  userPw: string
}

function configText(v: Values): string {
  return stringify({
    apiVersion: 'mirror-appliance/v1',
    host: {
      hostname: 'hostile.example.internal',
      root: { plain: v.rootPw },
      users: [{ name: 'admin', gecos: v.gecos, sudo: true, password: { plain: v.userPw } }],
      disk: { device: 'vda' },
    },
    registry: { initUser: { name: 'init', password: v.initPw } },
  })
}

const inject = [`$(touch ${CANARY})`, `\`touch ${CANARY}\``, `'; touch ${CANARY}; '`, `"; touch ${CANARY}; "`]
const fixed: Values[] = [
  { gecos: `it's "q" \\ $HOME \${HOME} ${inject[0]}`, initPw: `p"a'ss\\w${inject[1]}`, rootPw: inject[2]!, userPw: inject[3]! },
  { gecos: '%end', initPw: '%post --nochroot', rootPw: '%end', userPw: '%include /etc/passwd' },
  { gecos: '# not a comment; && || > < * ? [a] ! ~', initPw: '#;&|><*?[a]!~ {}=,:', rootPw: '--iscrypted', userPw: '-x' },
  { gecos: 'Zoë ✓ ünïcode', initPw: 'pässwörd✓', rootPw: 'rööt', userPw: '\u00a0nbsp' },
  { gecos: "'\\''", initPw: '\\"\\\'\\\\ \\"\\\'\\\\', rootPw: ' leading and trailing ', userPw: '$6$notahash$' },
]

// Seeded extra rounds (HOSTILE_SEED=n replays one).
const seed = Number(process.env.HOSTILE_SEED ?? Date.now() % 100000)
let state = seed >>> 0
const rnd = (n: number) => {
  state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
  return state % n
}
const PIECES = [
  "'",
  '"',
  '\\',
  '$',
  '`',
  '$(',
  ')',
  '${',
  '}',
  '#',
  ';',
  '&',
  '|',
  '>',
  '<',
  '*',
  '?',
  '!',
  '~',
  '%end',
  '%post',
  ' ',
  '\t',
  'a',
  'Z',
  '0',
  '-',
  'é',
  '\n',
]
const nasty = (len: number) => Array.from({ length: len }, () => PIECES[rnd(PIECES.length)]).join('')
for (let i = 0; i < 4; i++) fixed.push({ gecos: nasty(8), initPw: nasty(12) + inject[i % 4], rootPw: nasty(10), userPw: nasty(10) })

let baselineSections: string[] = []

/** The Authorization a curl config file makes curl send, by running curl -K against a local server. */
async function curlAuth(curlConfig: string): Promise<string | undefined> {
  let seen: string | undefined
  const server = createServer((req, res) => {
    seen = req.headers.authorization
    res.end('ok')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  const file = join(work, 'auth.curl')
  writeFileSync(file, curlConfig)
  try {
    await run('curl', ['-sS', '-K', file, `http://127.0.0.1:${port}/`], { why: 'to read the curl config as curl does' })
  } finally {
    server.close()
  }
  return seen
}

t.before(async () => {
  const out = join(work, 'baseline')
  const cfg = join(work, 'baseline.yaml')
  writeFileSync(cfg, configText({ gecos: 'Admin', initPw: 'plain-init-pw', rootPw: 'plain-root-pw', userPw: 'plain-user-pw' }))
  const r = await runCli(['render', '-c', cfg, '-o', out], { env })
  if (r.code !== 0) throw new Error(r.stderr)
  baselineSections = ksStructure(readFileSync(join(out, 'ks.cfg'), 'utf8')).sections.map((s) => s.header)
})

fixed.forEach((v, i) => {
  t.test(
    `metacharacters through render, case ${i}${i >= 5 ? ` (HOSTILE_SEED=${seed})` : ''}: ${JSON.stringify(v).slice(0, 100)}`,
    async (t) => {
      const dir = join(work, `case-${i}`)
      mkdirSync(dir)
      const cfg = join(dir, 'appliance.yaml')
      writeFileSync(cfg, configText(v))
      const out = join(dir, 'out')
      const before = snapshot(dir)
      const r = await runCli(['render', '-c', cfg, '-o', out], { env, cwd: dir })
      t.same(
        diffSnapshots(before, snapshot(dir)).filter((l) => !l.startsWith('added: out')),
        [],
        'nothing written beside the output directory',
      )
      if (r.code === 2) {
        // Refused: only values no kickstart line can carry (line breaks, control characters).
        t.match(r.stderr, /(host\.users\[0\]\.(gecos|password\.plain)|host\.root\.plain|registry\.initUser\.password)/, 'names the field')
        t.ok(
          Object.values(v).some((x) => /[\x00-\x1f\x7f]/.test(x)),
          `refused only for a control character: ${r.stderr.split('\n')[0]}`,
        )
        t.notOk(existsSync(out), 'nothing written')
        return
      }
      t.equal(r.code, 0, r.code === 0 ? 'rendered' : r.stderr)
      const ks = readFileSync(join(out, 'ks.cfg'), 'utf8')
      const s = ksStructure(ks)
      t.same(s.problems, [], 'pykickstart would see no stray section or %ksappend')
      t.same(
        s.sections.map((x) => x.header),
        baselineSections,
        'the same sections as a benign config',
      )
      for (const [n, post] of postSections(s).entries())
        t.equal(await lintBash(post.body.join('\n') + '\n', dir, `post-${n}.sh`), '', `bash -n and shellcheck clean on %post ${n}`)
      const userLine = s.commands.find((c) => c.startsWith('user ') && c.includes('--name=admin'))!
      const [argv] = await shlexSplit([userLine])
      t.ok(argv!.includes(`--gecos=${v.gecos}`), 'shlex reads the gecos back exactly')

      const laid = await laidFromKickstart(ks, mkdtempSync(join(dir, 'root-')))
      t.notOk(existsSync(CANARY), 'no command substitution ran while bash laid the host files down')
      const file = (p: string) => Buffer.from(laid.files.find((f) => f.path === p)!.contents, 'base64').toString('utf8')
      t.equal(
        JSON.parse(file('/etc/mirror-appliance/quay-initialize.json')).password,
        v.initPw,
        'quay-initialize.json: the password, exactly',
      )
      const pull = JSON.parse(file('/root/mirror-appliance/pull-secret.json')) as { auths: Record<string, { auth: string }> }
      t.equal(
        Buffer.from(Object.values(pull.auths)[0]!.auth, 'base64').toString('utf8'),
        `init:${v.initPw}`,
        'pull secret: init:password, exactly',
      )
      const auth = await curlAuth(file('/etc/mirror-appliance/registry-auth.curl'))
      t.equal(
        Buffer.from((auth ?? '').replace(/^Basic /, ''), 'base64').toString('utf8'),
        `init:${v.initPw}`,
        'curl -K sends init:password, exactly',
      )

      const ign = JSON.parse(readFileSync(join(out, 'appliance.ign'), 'utf8'))
      const ignInit = ign.storage.files.find((f: { path: string }) => f.path === '/etc/mirror-appliance/quay-initialize.json')
      t.equal(
        Buffer.from(ignInit.contents.source.replace(/^data:;base64,/, ''), 'base64').toString('utf8'),
        file('/etc/mirror-appliance/quay-initialize.json'),
        'Ignition lays down the same file',
      )

      for (const [who, pw, re] of [
        ['root', v.rootPw, /^rootpw --iscrypted "(\$6\$[^"]+)"$/m],
        ['admin', v.userPw, /^user --name=admin .*--password="(\$6\$[^"]+)"$/m],
      ] as const) {
        const hash = re.exec(ks)?.[1]
        // glibc's crypt(3) through perl: openssl passwd -stdin would stop at a line break.
        const check = hash && (await run('perl', ['-e', 'print crypt($ENV{PW}, $ARGV[0])', hash], { env: { PW: pw } })) // the hash as the setting: its rounds= and salt
        t.equal(check && check.stdout, hash, `${who}: the hash is of the password exactly (glibc crypt)`)
      }
    },
  )
})

// ---- YAML bombs ----------------------------------------------------------------

const bombs: [string, string][] = [
  ['billion laughs (aliases)', readFileSync(new URL('./fixtures/bad-config/yaml-bomb.yaml', import.meta.url), 'utf8')],
  ['nesting 100000 deep', `apiVersion: mirror-appliance/v1\nhost: ${'['.repeat(100000)}${']'.repeat(100000)}\n`],
  ['nested mappings 50000 deep', `apiVersion: mirror-appliance/v1\nhost: ${'{a: '.repeat(50000)}1${'}'.repeat(50000)}\n`],
  [
    'merge keys multiplying',
    `apiVersion: mirror-appliance/v1\na: &a {${Array.from({ length: 50 }, (_, i) => `k${i}: ${'x'.repeat(50)}`).join(', ')}}\n` +
      Array.from({ length: 90 }, (_, i) => `m${i}: &m${i} {<<: [*${i ? `m${i - 1}` : 'a'}, *a]}`).join('\n') +
      '\n',
  ],
  [
    '2 MiB of comments (over the size limit)',
    `apiVersion: mirror-appliance/v1\n${'# padding padding padding padding padding padding padding\n'.repeat(37000)}`,
  ],
  ['a 900 KiB string', `apiVersion: mirror-appliance/v1\nhost:\n  users:\n    - name: admin\n      gecos: "${'x'.repeat(900 * 1024)}"\n`],
]

for (const [what, text] of bombs) {
  t.test(`YAML bomb refused by validate, render and build: ${what}`, async (t) => {
    const dir = mkdtempSync(join(work, 'bomb-'))
    const cfg = join(dir, 'bomb.yaml')
    writeFileSync(cfg, text)
    for (const args of [['validate'], ['render', '-o', join(dir, 'out')], ['build', '-o', join(dir, 'out')]]) {
      const p = spawnCli([...args, '-c', cfg], { env })
      // A hang guard, not a timing assertion.
      const guard = setTimeout(() => p.child.kill('SIGKILL'), 120_000)
      const r = await p.done
      clearTimeout(guard)
      t.equal(r.code, 2, `${args[0]}: exit 2`)
      t.match(r.stderr, /bomb\.yaml/, `${args[0]}: names the file`)
      t.notMatch(r.stderr, /internal error/, `${args[0]}: not reported as a bug`)
      t.ok(p.peakKiB() < 512 * 1024, `${args[0]}: peak RSS ${(p.peakKiB() / 1024).toFixed(0)} MiB stays under 512 MiB`)
      t.same(snapshot(dir).size, 1, `${args[0]}: nothing written`)
    }
  })
}

// ---- a whole build with a hostile config, watched from outside ----------------

t.test('a build with a hostile config writes nothing outside its output directory', async (t) => {
  const root = mkdtempSync(join(work, 'sandbox-'))
  for (const d of ['home', 'cwd', 'tmp', 'parent']) mkdirSync(join(root, d))
  const cfg = join(root, 'cwd', 'appliance.yaml')
  writeFileSync(cfg, configText(fixed[0]!))
  const before = snapshot(root)
  const r = await runCli(['build', '-c', cfg, '-o', join(root, 'parent', 'out'), '--allow-missing'], {
    env: { ...env, HOME: join(root, 'home'), TMPDIR: join(root, 'tmp') },
    cwd: join(root, 'cwd'),
  })
  t.equal(r.code, 0, r.code === 0 ? 'built' : r.stderr)
  const diff = diffSnapshots(before, snapshot(root), { ignoreIno: true })
    .filter((l) => !l.startsWith('added: parent/out'))
    .filter((l) => !/^added: tmp\/tsx-\d+/.test(l)) // tsx's compile cache: the CLI runs through tsx
  t.same(diff, [], 'only the output directory was added')
  t.notOk(existsSync(CANARY))
  t.equal(spawnSync('ls', [join(root, 'home')]).stdout.toString(), '', 'nothing in HOME')
})

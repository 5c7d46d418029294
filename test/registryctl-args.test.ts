// mirror-registryctl's arguments (issue 19, defect 3 and parity point 6):
// help for every command, unknown options, and the flags a user of Red Hat's
// mirror-registry types from habit, each followed to its effect (the ssh and
// scp command lines, the state file, preflight), under bash with the
// recording fakes of test/helpers/ctl-harness.ts. The flag names and meanings
// follow quay/mirror-registry at 4b2cbcc38a238fa072a713ee80ba74649b79ad51
// (cmd/install.go, upgrade.go, uninstall.go, root.go, utils.go). Nothing here
// runs a registry: a real install with these flags is the e2e tests' part.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from '../builder/render/templates.js'
import { testPlan } from './helpers/bundle-fixture.js'
import { ctlHarness } from './helpers/ctl-harness.js'
import { userCa } from './helpers/user-ca.js'

// Every command and the options its help must name.
const OPTIONS: Record<string, string[]> = {
  install: [
    '--quayHostname',
    '--quayRoot',
    '-r',
    '--quayStorage',
    '--sqliteStorage',
    '--sslCert',
    '--sslKey',
    '--sslCa',
    '--sslCheckSkip',
    '--initUser',
    '--initPassword-file',
    '--initPassword',
    '--target',
    '--targetHostname',
    '-H',
    '--targetUsername',
    '-u',
    '--ssh-key',
    '-k',
    '--askBecomePass',
    '--yes',
    '--verbose',
    '--no-color',
    '--help',
  ],
  uninstall: [
    '--purge',
    '--yes',
    '--autoApprove',
    '--target',
    '--targetHostname',
    '-H',
    '--targetUsername',
    '-u',
    '--ssh-key',
    '-k',
    '--askBecomePass',
    '--quayRoot',
    '-r',
    '--quayStorage',
    '--sqliteStorage',
    '--quayHostname',
    '--verbose',
    '--no-color',
    '--help',
  ],
  status: ['--help'],
  upgrade: [
    'BUNDLE',
    '--target',
    '--targetHostname',
    '-H',
    '--targetUsername',
    '-u',
    '--ssh-key',
    '-k',
    '--askBecomePass',
    '--quayRoot',
    '-r',
    '--quayStorage',
    '--sqliteStorage',
    '--quayHostname',
    '--help',
  ],
  'rotate-cert': ['--ca-cert', '--ca-key', '--days', '--help'],
  'renew-cert': ['--help'],
  'health-check': ['--help'],
  import: ['ARCHIVE|OCI-DIR', '--repo', '--prefix', '--help'],
  export: ['--to-archive', '--to-registry', '--dest-creds-file', '--dest-creds', '--dest-cert-dir', '--dest-insecure', '--help'],
  backup: ['DIR', '--help'],
  restore: ['FILE', '--yes', '--help'],
}
const optionRe = (o: string) => new RegExp(`(^|[\\s,\\[])${o.replace(/[|[\]]/g, '\\$&')}([\\s,=\\]]|$)`, 'm')

t.test(
  "CMD --help, CMD -h and help CMD: that command's usage naming each of its options, exit 0, anywhere (no facts, no root)",
  async (t) => {
    // the script alone, as the help test of test/registryctl-day2.test.ts runs it
    const dir = mkdtempSync(join(tmpdir(), 'ctl-args-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const ctl = join(dir, 'ctl')
    writeFileSync(ctl, readFileSync(join(REPO_ROOT, 'templates/host/mirror-registryctl')))
    const run = (args: string[]) => spawnSync('bash', [ctl, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH!, MA_ROOT: dir } })
    for (const [cmd, opts] of Object.entries(OPTIONS)) {
      const help = run([cmd, '--help'])
      t.equal(help.status, 0, `${cmd} --help: ${help.stderr}`)
      t.match(help.stdout, new RegExp(`^Usage: mirror-registryctl ${cmd}\\b`), `${cmd} --help: its usage`)
      for (const o of opts) t.match(help.stdout, optionRe(o), `${cmd} --help names ${o}`)
      t.equal(help.stderr, '', `${cmd} --help: nothing on stderr`)
      t.equal(run([cmd, '-h']).stdout, help.stdout, `${cmd} -h`)
      t.equal(run(['help', cmd]).stdout, help.stdout, `help ${cmd}`)
      // after other arguments too, as cobra takes it
      t.equal(run([cmd, 'x', '--help']).stdout, help.stdout, `${cmd} x --help`)
    }
    const all = run(['help'])
    t.equal(all.status, 0)
    t.match(all.stdout, /COMMAND --help/, "the overview says how to get a command's help")
    const none = run(['help', 'frobnicate'])
    t.equal(none.status, 2)
    t.match(none.stderr, /help: no command "frobnicate"/)
  },
)

t.test('an unknown option: exit 2, naming the option, the command and its --help; nothing runs', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  for (const cmd of Object.keys(OPTIONS)) {
    const r = h.run([cmd, '--bogus'])
    t.equal(r.status, 2, `${cmd} --bogus: ${r.out}`)
    t.match(
      r.out,
      new RegExp(`^mirror-registryctl ${cmd}: unknown option --bogus\\nRun "mirror-registryctl ${cmd} --help" for its options\\.$`, 'm'),
      cmd,
    )
  }
  t.same(h.calls(), [], 'no tool called')
  // backup --help was taken for a DIR before: now help, and nothing stopped
  const b = h.run(['backup', '--help'])
  t.equal(b.status, 0)
  t.match(b.out, /^Usage: mirror-registryctl backup DIR/)
  // an option that takes a value, without one (both spellings)
  for (const args of [
    ['install', '--quayRoot'],
    ['install', '--quayRoot='],
    ['export', '--to-archive'],
    ['rotate-cert', '--days'],
  ]) {
    const r = h.run(args)
    t.equal(r.status, 2, `${args.join(' ')}: ${r.out}`)
    t.match(
      r.out,
      new RegExp(`${args[0]}: ${args[1]!.replace('=', '')} needs a value\\nRun "mirror-registryctl ${args[0]} --help" for usage\\.`),
    )
  }
  // mirror-registry options with no counterpart: refused with what to do instead
  let r = h.run(['install', '-i', 'image-archive.tar'])
  t.equal(r.status, 2)
  t.match(r.out, /install: -i: this bundle carries its images \(payload\/\); push more with 'mirror-registryctl import ARCHIVE'/)
  r = h.run(['install', '--additionalArgs=-vvv'])
  t.equal(r.status, 2)
  t.match(r.out, /--additionalArgs: there is no ansible-playbook here/)
  r = h.run(['install', '-u', 'admin'])
  t.equal(r.status, 2)
  t.match(r.out, /-u\/--targetUsername admin names the SSH user for -H\/--targetHostname HOST, which is missing/)
  r = h.run(['install', '--target', 'a@b', '-H', 'c'])
  t.equal(r.status, 2)
  t.match(r.out, /--target and -H\/--targetHostname or -u\/--targetUsername exclude each other/)
  t.same(h.calls(), [], 'still no tool called')
})

const ssh = (calls: string[]) => calls.filter((c) => /^(ssh|scp) /.test(c))

t.test("install -H HOST -u USER -k KEY: mirror-registry's target flags reach ssh and scp; --name=VALUE and ~ forms too", async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install', '-H', 'reg.example', '-u', 'admin', '-k', '~/.ssh/quay_installer', '--quayRoot=~/quay-install'], {
    HOME: '/home/admin',
  })
  t.equal(r.status, 0, r.out)
  const calls = h.calls()
  t.equal(ssh(calls).length, calls.length, 'only ssh and scp ran here')
  t.match(
    calls[0]!,
    /^ssh -o BatchMode=yes -i \/home\/admin\/\.ssh\/quay_installer admin@reg\.example mkdir -m 0700 \/var\/tmp\/mirror-appliance-bundle\.\d+$/,
    '-H/-u: the SSH destination; -k: its identity, ~ expanded',
  )
  const remote = calls.find((c) => / sudo bash /.test(c))!
  t.ok(remote, `install runs under sudo for a user other than root: ${calls.join('\n')}`)
  const words = spawnSync('bash', ['-c', `set -- ${remote.replace(/^.* admin@reg\.example sudo /, '')}; printf '%s\\n' "$@"`], {
    encoding: 'utf8',
  })
    .stdout.trim()
    .split('\n')
  t.same(
    words.slice(2),
    ['install', '--quayRoot', '~/quay-install'],
    "--quayRoot=~/… reaches the target as given: ~ is the target's home there",
  )
  t.notOk(existsSync(join(h.root, 'etc/mirror-appliance')), 'nothing installed here')

  // the long names, = forms, and --target with no user: ssh's own user, sudo unless that is root
  const l = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const r2 = l.run(['install', '--targetHostname=reg2.example', '--targetUsername=ops', '--ssh-key=/keys/id'])
  t.equal(r2.status, 0, r2.out)
  t.match(l.calls()[0]!, /^ssh -o BatchMode=yes -i \/keys\/id ops@reg2\.example mkdir/)
  const n = l.calls().length
  t.equal(l.run(['install', '-H', 'reg3.example'], { USER: 'someone' }).status, 0)
  t.match(l.calls()[n]!, /^ssh -o BatchMode=yes reg3\.example mkdir/, "no -u: ssh picks the user, as mirror-registry's $USER default")
  t.ok(
    l
      .calls()
      .slice(n)
      .some((c) => /^ssh -o BatchMode=yes reg3\.example sudo bash /.test(c)),
    'that user is not root: sudo',
  )
  const m = l.calls().length
  t.equal(l.run(['install', '-H', 'reg3.example', '-u', 'root']).status, 0)
  t.ok(
    l
      .calls()
      .slice(m)
      .some((c) => /^ssh -o BatchMode=yes root@reg3\.example bash /.test(c)),
    'root: no sudo',
  )
})

t.test(
  'install --askBecomePass: the commands run under sudo get a terminal (ssh -t) so sudo can ask; without it a failure says so',
  async (t) => {
    const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
    t.equal(h.run(['install', '-H', 'reg.example', '-u', 'admin', '--askBecomePass']).status, 0)
    const calls = ssh(h.calls())
    t.match(calls[0]!, /^ssh -o BatchMode=yes admin@reg\.example mkdir/, 'no terminal where no sudo runs')
    t.ok(
      calls.some((c) => /^ssh -o BatchMode=yes -t admin@reg\.example sudo bash \S+\/mirror-registryctl install/.test(c)),
      calls.join('\n'),
    )
    t.ok(calls.some((c) => /^ssh -o BatchMode=yes -t admin@reg\.example sudo rm -rf /.test(c)))
    const f = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
    const r = f.run(['install', '-H', 'reg.example', '-u', 'admin'], { FAKE_FAIL: 'sudo bash' })
    t.equal(r.status, 1)
    t.match(
      r.out,
      /install on admin@reg\.example failed \(exit \d+\) \(if sudo on admin@reg\.example asks for a password, add --askBecomePass\)/,
    )
  },
)

t.test('-H is --targetHostname now; --quayHostname keeps its long name; -H localhost installs here, without ssh', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  // before: -H other.example was --quayHostname and failed preflight
  let r = h.run(['install', '-H', 'other.example'])
  t.equal(r.status, 0, r.out)
  t.ok(
    h.calls().some((c) => c.startsWith('ssh -o BatchMode=yes other.example ')),
    'a remote install on other.example',
  )
  // the registry's name (issue 19 point 6: another one is installed under it), never a target;
  // an unreadable --caKey stops it in preflight, so the -H localhost install below runs on a clean host
  r = h.run(['install', '--quayHostname=other.example', '--caKey', '/nonexistent'])
  t.equal(r.status, 1)
  t.match(r.out, /--quayHostname: the registry the bundle names registry\.lab\.example:8443 is installed as other\.example:8443/)
  t.match(r.out, /preflight: CA key \/nonexistent: cannot read it/)
  const n = h.calls().length
  r = h.run(['install', '-H', 'localhost', '-k', '/keys/id', '-v', '--no-color'])
  t.equal(r.status, 0, r.out)
  t.match(r.out, /-H localhost: this host; running here, without ssh/)
  t.match(r.out, /warning: -k\/--ssh-key has no effect: no --target or -H/, 'what is accepted and changes nothing is said')
  t.match(r.out, /note: -v: every step is printed already/)
  t.match(r.out, /note: --no-color: mirror-registryctl prints no colour/)
  t.notOk(
    h
      .calls()
      .slice(n)
      .some((c) => /^(ssh|scp) /.test(c)),
    'no ssh',
  )
  t.match(h.read('etc/mirror-appliance/registryctl.conf'), /^STATE=installed$/m, 'installed here')
  // -H this host's FQDN (mirror-registry's default target), no other user: here too
  const fqdn = spawnSync('hostname', ['-f'], { encoding: 'utf8' }).stdout.trim()
  const f = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  r = f.run(['install', '-H', fqdn], { USER: 'root' })
  t.equal(r.status, 0, r.out)
  t.match(r.out, new RegExp(`-H ${fqdn.replace(/\./g, '\\.')}: this host; running here, without ssh`))
  t.notOk(
    f.calls().some((c) => /^(ssh|scp) /.test(c)),
    'no ssh',
  )
  t.equal(f.run(['install', '-H', fqdn, '-u', 'someone-else'], { USER: 'root' }).status, 0)
  t.ok(
    f.calls().some((c) => c.startsWith(`ssh -o BatchMode=yes someone-else@${fqdn} `)),
    'another user on this host: over ssh, as there',
  )
})

t.test("--quayRoot=~/DIR and -r on this host: ~ is this user's home; uninstall --autoApprove confirms as --yes does", async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install', '--quayRoot=~/quay-install'], { HOME: '/srv/home' })
  t.equal(r.status, 0, r.out)
  t.match(h.read('etc/mirror-appliance/registryctl.conf'), /^DATA_DIR=\/srv\/home\/quay-install$/m)
  t.ok(existsSync(join(h.root, 'srv/home/quay-install/registry/config.yml')), 'the data directory in ~')
  const ctl = join(h.root, 'usr/local/bin/mirror-registryctl')
  const refused = h.run(['uninstall'], {}, ctl)
  t.equal(refused.status, 1)
  const u = h.run(['uninstall', '--autoApprove'], {}, ctl)
  t.equal(u.status, 0, u.out)
  t.match(u.out, /uninstalled; data kept/)
  const g = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  t.equal(g.run(['install', '-r', '/data/reg']).status, 0)
  t.match(g.read('etc/mirror-appliance/registryctl.conf'), /^DATA_DIR=\/data\/reg$/m)
})

t.test('--sslCheckSkip: a certificate for another name is taken (with a warning) where it was refused', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  mkdirSync(join(h.base, 'other'))
  const o = userCa(join(h.base, 'other'), 'other.example')
  const refused = h.run(['install', '--sslCert', o.cert, '--sslKey', o.key, '--sslCa', o.ca])
  t.equal(refused.status, 1)
  t.match(refused.out, /does not cover registry\.lab\.example/)
  const r = h.run(['install', `--sslCert=${o.cert}`, `--sslKey=${o.key}`, `--sslCa=${o.ca}`, '--sslCheckSkip'])
  t.equal(r.status, 0, r.out)
  t.match(r.out, /warning: --sslCheckSkip: not checking that \S+srv\.crt covers registry\.lab\.example/)
  t.equal(
    h.read('var/lib/mirror-registry/registry/certs/server.crt'),
    readFileSync(o.cert, 'utf8'),
    'the certificate given is the one installed',
  )
})

t.test('upgrade --target USER@HOST / -H -u -k: the bundle goes over scp, the installed mirror-registryctl upgrades there', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  let r = h.run(['upgrade', h.tarball, '-H', 'reg.example', '-u', 'admin', '-k', '/keys/id'])
  t.equal(r.status, 0, r.out)
  let calls = h.calls()
  t.equal(ssh(calls).length, calls.length, 'only ssh and scp ran here')
  t.match(calls[0]!, /^ssh -o BatchMode=yes -i \/keys\/id admin@reg\.example mkdir -m 0700 \/var\/tmp\/mirror-appliance-upgrade\.\d+$/)
  t.equal(calls[1], `scp -o BatchMode=yes -i /keys/id -q ${h.tarball} admin@reg.example:${calls[0]!.split(' ').pop()}/bundle.tar.gz`)
  t.match(
    calls[2]!,
    /^ssh -o BatchMode=yes -i \/keys\/id admin@reg\.example sudo \/usr\/local\/bin\/mirror-registryctl upgrade \/var\/tmp\/mirror-appliance-upgrade\.\d+\/bundle\.tar\.gz $/,
  )
  t.match(calls[3]!, /sudo rm -rf \/var\/tmp\/mirror-appliance-upgrade\.\d+$/)
  const n = calls.length
  r = h.run(['upgrade', '--target=root@reg.example', h.bundleDir])
  t.equal(r.status, 0, r.out)
  calls = h.calls().slice(n)
  t.match(
    calls[1]!,
    /^scp -o BatchMode=yes -q -r \S+ root@reg\.example:\/var\/tmp\/mirror-appliance-upgrade\.\d+\/bundle$/,
    'an extracted bundle: the directory',
  )
  t.match(
    calls[2]!,
    /^ssh -o BatchMode=yes root@reg\.example \/usr\/local\/bin\/mirror-registryctl upgrade \/var\/tmp\/mirror-appliance-upgrade\.\d+\/bundle $/,
    'root: no sudo',
  )
  // the usage errors of upgrade
  t.equal(h.run(['upgrade']).status, 2)
  r = h.run(['upgrade', 'a', 'b'])
  t.equal(r.status, 2)
  t.match(
    r.out,
    /upgrade takes one BUNDLE\nRun "mirror-registryctl upgrade --help" for usage\./,
    "every usage error points at the command's help",
  )
  t.match(h.run(['upgrade', 'a', '--image-archive', 'x']).out, /upgrade: --image-archive: this bundle carries its images/)
})

/** the words the remote shell makes of what an ssh command line gives after DEST */
const remoteWords = (call: string, dest: string) =>
  spawnSync('bash', ['-c', `set -- ${call.slice(call.indexOf(` ${dest} `) + dest.length + 2)}; printf '%s\\n' "$@"`], {
    encoding: 'utf8',
  })
    .stdout.trim()
    .split('\n')

t.test(
  "uninstall -H HOST -u USER -k KEY, --target USER@HOST: the target's installed mirror-registryctl uninstalls over ssh, with the options given",
  async (t) => {
    const plan = testPlan()
    const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
    const before = h.snapshot()
    let r = h.run(
      [
        'uninstall',
        '-H',
        'reg.example',
        '-u',
        'admin',
        '-k',
        '~/.ssh/quay_installer',
        '--purge',
        '--quayRoot=~/quay-install',
        '--quayHostname',
        'registry.lab.example:8443',
        '--autoApprove',
      ],
      { HOME: '/home/admin' },
    )
    t.equal(r.status, 0, r.out)
    t.notMatch(r.out, /runs on the registry's host itself/, 'the old refusal is gone')
    t.match(r.out, /uninstalled on admin@reg\.example$/m)
    let calls = h.calls()
    t.equal(calls.length, 1, `one ssh call and nothing else: ${calls.join('\n')}`)
    t.match(
      calls[0]!,
      /^ssh -o BatchMode=yes -i \/home\/admin\/\.ssh\/quay_installer admin@reg\.example sudo /,
      '-H/-u: the destination; -k: its identity, ~ expanded here; sudo for a user other than root',
    )
    t.same(
      remoteWords(calls[0]!, 'admin@reg.example'),
      [
        'sudo',
        '/usr/local/bin/mirror-registryctl',
        'uninstall',
        '--purge',
        '--quayRoot',
        '~/quay-install',
        '--quayHostname',
        'registry.lab.example:8443',
        '--yes',
      ],
      "the target's own mirror-registryctl, with the options as typed (~ is the target's home; it checks them against its install), approved",
    )
    t.same(h.snapshot(), before, 'nothing changed on this host')
    const secrets = Object.values(plan.secrets).filter((v): v is string => typeof v === 'string' && v.length > 0)
    t.ok(secrets.length >= 4, 'the plan has secrets to look for')
    t.same(
      calls.filter((c) => secrets.some((s) => c.includes(s)) || /pass(word)?\b/i.test(c)),
      [],
      'no secret, and no password option, on the ssh command line',
    )

    // --target root@HOST: no sudo; --askBecomePass: sudo gets a terminal to ask its password on (ssh -t)
    let n = calls.length
    r = h.run(['uninstall', '--target=root@reg.example', '-y'])
    t.equal(r.status, 0, r.out)
    t.same(
      h.calls().slice(n),
      ['ssh -o BatchMode=yes root@reg.example /usr/local/bin/mirror-registryctl uninstall --yes '],
      'root: no sudo',
    )
    n = h.calls().length
    r = h.run(['uninstall', '--targetHostname=reg.example', '--targetUsername=ops', '--askBecomePass', '--yes'])
    t.equal(r.status, 0, r.out)
    t.same(h.calls().slice(n), ['ssh -o BatchMode=yes -t ops@reg.example sudo /usr/local/bin/mirror-registryctl uninstall --yes '])

    // the remote failure: its status, and a message naming the host
    n = h.calls().length
    r = h.run(['uninstall', '-H', 'reg.example', '-u', 'admin', '--autoApprove'], {
      FAKE_FAIL: 'mirror-registryctl uninstall',
      FAKE_SSH_STATUS: '3',
    })
    t.equal(r.status, 3, "the remote uninstall's status")
    t.match(
      r.out,
      /^mirror-registryctl: error: uninstall on admin@reg\.example failed \(exit 3\) \(if sudo on admin@reg\.example asks for a password, add --askBecomePass\)$/m,
    )
    t.notMatch(r.out, /uninstalled on/)
    t.equal(h.calls().length, n + 1, 'tried once')

    // the usage errors install has, here too
    r = h.run(['uninstall', '-u', 'admin', '--autoApprove'])
    t.equal(r.status, 2)
    t.match(r.out, /uninstall: -u\/--targetUsername admin names the SSH user for -H\/--targetHostname HOST, which is missing/)
    r = h.run(['uninstall', '--target', 'a@b', '-H', 'c', '--autoApprove'])
    t.equal(r.status, 2)
    t.match(r.out, /--target and -H\/--targetHostname or -u\/--targetUsername exclude each other/)
    t.equal(h.calls().length, n + 1, 'no ssh for a usage error')
  },
)

t.test(
  'uninstall -H without --autoApprove: asked on this terminal, before any ssh (as mirror-registry asks); no terminal: refused; -H localhost: here',
  async (t) => {
    const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
    let r = h.run(['uninstall', '-H', 'reg.example'])
    t.equal(r.status, 1, r.out)
    t.match(
      r.out,
      /Remove the registry's units and configuration on reg\.example \(its data is kept\)\?: refusing without a terminal to ask on; pass --yes to confirm/,
    )
    t.same(h.calls(), [], 'no ssh')
    // on a terminal: util-linux script(1) gives the command a pty, and types the answer
    const onTty = join(h.base, 'on-tty')
    writeFileSync(
      onTty,
      `exec script -qec "$(printf '%q ' bash ${JSON.stringify(join(h.bundleDir, 'mirror-registryctl'))} "$@")" /dev/null\n`,
    )
    r = h.run(['uninstall', '-H', 'reg.example', '--purge'], {}, onTty, 'n\n')
    t.equal(r.status, 1, r.out)
    t.match(r.out, /Remove the registry on reg\.example AND DELETE ITS DATA \(data directory, state and credentials\)\? \[y\/N\]/)
    t.match(r.out, /cancelled; nothing was changed/)
    t.same(h.calls(), [], 'no: no ssh')
    r = h.run(['uninstall', '-H', 'reg.example'], { USER: 'someone' }, onTty, 'y\n')
    t.equal(r.status, 0, r.out)
    t.match(r.out, /on reg\.example \(its data is kept\)\? \[y\/N\]/)
    t.same(h.calls(), ['ssh -o BatchMode=yes reg.example sudo /usr/local/bin/mirror-registryctl uninstall --yes '], 'yes: approved there')

    // -H localhost: this host, without ssh, as install takes it
    t.equal(h.run(['install']).status, 0)
    const n = h.calls().length
    r = h.run(['uninstall', '-H', 'localhost', '--autoApprove'], {}, join(h.root, 'usr/local/bin/mirror-registryctl'))
    t.equal(r.status, 0, r.out)
    t.match(r.out, /-H localhost: this host; running here, without ssh/)
    t.match(r.out, /uninstalled; data kept/)
    t.notOk(
      h
        .calls()
        .slice(n)
        .some((c) => /^(ssh|scp) /.test(c)),
      'no ssh',
    )
    t.notOk(existsSync(join(h.root, 'usr/local/bin/mirror-registryctl')), 'uninstalled here')
  },
)

t.test('-v/--verbose and -c/--no-color, before or after the command: said to change nothing, and the command runs', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  for (const args of [
    ['-v', 'status'],
    ['status', '--verbose'],
    ['--no-color', 'status'],
    ['status', '-c'],
  ]) {
    const r = h.run(args)
    t.equal(r.status, 1, args.join(' '))
    t.match(r.out, /note: (-v|--verbose|--no-color|-c): /)
    t.match(r.out, /no registry installed here/, `${args.join(' ')}: status ran`)
  }
})

t.test(
  "install --initUser NAME: the init user is NAME everywhere the build's was, with the build's password (distribution: htpasswd)",
  async (t) => {
    const plan = testPlan({ flavor: 'distribution' })
    const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
    const r = h.run(['install', '--initUser=mirror_admin'])
    t.equal(r.status, 0, r.out)
    const pw = plan.secrets.initPassword
    const htp = join(h.root, 'var/lib/mirror-registry/registry/auth/htpasswd')
    t.equal(
      spawnSync('htpasswd', ['-vb', htp, 'mirror_admin', pw]).status,
      0,
      "Apache htpasswd verifies the new name with the build's password",
    )
    t.notMatch(readFileSync(htp, 'utf8'), /^init:/m, "the build's name is gone")
    t.equal(
      Buffer.from(
        JSON.parse(h.read('root/mirror-appliance/pull-secret.json')).auths['registry.lab.example:8443'].auth,
        'base64',
      ).toString(),
      `mirror_admin:${pw}`,
    )
    t.match(
      h.read('etc/mirror-appliance/registry-auth.curl'),
      new RegExp(`^user = "mirror_admin:${pw.replace(/[$^.*+?()[\]{}|\\]/g, '\\$&')}"$`, 'm'),
    )
    t.match(h.read('root/mirror-appliance/credentials.txt'), /^User: {6}mirror_admin$/m)
    t.match(h.read('etc/mirror-appliance/host.env'), /^INIT_USER='mirror_admin'$/m, 'first boot reads the new name')
    t.match(r.out, /login of mirror_admin works/, 'first boot checked the login under the new name')
    // refused names, before anything runs
    for (const bad of ['Admin', '_x', 'a', 'x y']) {
      const b = h.run(['install', '--initUser', bad])
      t.equal(b.status, 2, bad)
      t.match(b.out, /install: --initUser .*: 2 to 30 of a-z, 0-9 and _/)
    }
  },
)

t.test("install --initUser NAME --initPassword-file F (quay): Quay's SUPER_USERS and the initialize request name NAME", async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const kept = join(h.base, 'kept')
  mkdirSync(kept)
  writeFileSync(join(h.base, 'pw'), 'Quay-Admin-123\n')
  const r = h.run(['install', '--initUser', 'quayadmin', '--initPassword-file', join(h.base, 'pw')], { FAKE_KEEP_DATA: kept })
  t.equal(r.status, 0, r.out)
  t.match(JSON.parse(readFileSync(join(kept, 'quay-initialize.json'), 'utf8')), { username: 'quayadmin', password: 'Quay-Admin-123' })
  const conf = h.read('var/lib/mirror-registry/quay-config/config.yaml')
  t.match(conf, /^SUPER_USERS:\n {2}- "quayadmin"\n/m)
  t.notMatch(conf, /^ {2}- "init"$/m)
  t.match(h.read('root/mirror-appliance/credentials.txt'), /^Quay API token of quayadmin \(after first boot\):/m)
  t.match(r.out, /created Quay user quayadmin/)
})

t.test(
  "upgrade and uninstall: --quayRoot/--quayHostname taken when they are the install's, refused otherwise; storage flags, and those two with an upgrade target, refused",
  async (t) => {
    const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
    t.equal(h.run(['install', '--quayRoot', '/srv/reg']).status, 0)
    const ctl = join(h.root, 'usr/local/bin/mirror-registryctl')
    const n = h.calls().length
    let r = h.run(['uninstall', '--quayRoot', '/var/lib/mirror-registry', '--autoApprove'], {}, ctl)
    t.equal(r.status, 2)
    t.match(
      r.out,
      /uninstall: --quayRoot \/var\/lib\/mirror-registry: this registry's data is in \/srv\/reg \(set by install\); leave --quayRoot out/,
    )
    r = h.run(['uninstall', '--quayHostname=other.example:8443', '--autoApprove'], {}, ctl)
    t.equal(r.status, 2)
    t.match(r.out, /--quayHostname other\.example:8443: this registry is registry\.lab\.example:8443/)
    r = h.run(['upgrade', h.bundleDir, '-r', '/data'], {}, ctl)
    t.equal(r.status, 2)
    t.match(r.out, /upgrade: --quayRoot \/data: this registry's data is in \/srv\/reg/)
    for (const [args, msg] of [
      [
        ['uninstall', '--quayStorage', '/x'],
        /uninstall: --quayStorage \/x: this registry's storage is in \/srv\/reg\/registry\/storage \(set by install\); leave --quayStorage out/,
      ],
      [['install', '--sqliteStorage=/x'], /install: --sqliteStorage: the distribution registry has no database/],
      [
        ['upgrade', 'b', '--sslCert', 'c'],
        /upgrade: --sslCert: upgrade keeps the installed certificate; a new one: mirror-registryctl rotate-cert/,
      ],
      [['upgrade', 'b', '--target', 'a@b', '--quayRoot', '/srv/reg'], /--quayRoot and --quayHostname are the install's on a@b/],
    ] as const) {
      r = h.run([...args], {}, ctl)
      t.equal(r.status, 2, args.join(' '))
      t.match(r.out, msg)
    }
    t.same(h.calls().slice(n), [], 'nothing ran')
    // the install's own values: taken
    r = h.run(['uninstall', '--quayRoot=/srv/reg/', '--quayHostname', 'registry.lab.example', '--autoApprove'], {}, ctl)
    t.equal(r.status, 0, r.out)
    t.match(r.out, /uninstalled; data kept/)
  },
)

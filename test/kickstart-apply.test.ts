// The kickstart-apply helper (test/helpers/kickstart-apply.ts) that stands in
// for Anaconda in the kickstart route's end-to-end test: its parser read
// against our real ks.cfg renderings (and Python's shlex, which is what
// pykickstart splits lines with), and its %post semantics as Anaconda's:
// file order, --log, --erroronfail halting, other failures going on, the
// OEMDRV medium as /dev/disk/by-label/OEMDRV (read-only), the new root at
// /mnt/sysimage, nothing left mounted or written outside the root.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { renderKickstart, type KickstartOptions } from '../builder/render/kickstart.js'
import { applyKickstart, BASE_GUEST_IS, EMULATED, parseKickstart, splitKsLine } from './helpers/kickstart-apply.js'
import { ksStructure, loadFixture, shlexSplit } from './hostspec-fixture.js'

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname
const CASES: { name: string; ks: KickstartOptions }[] = [
  { name: 'ks-dhcp-auto', ks: { source: 'cdrom' } },
  { name: 'ks-static-uefi-fips', ks: { source: 'oemdrv' } },
  { name: 'ks-bios-custom', ks: { source: 'url', url: 'http://192.0.2.5:8080/rhel-8.10', finish: 'poweroff' } },
]

t.test('splitKsLine splits like shlex.split(line, comments=True)', async (t) => {
  const table: [string, string[]][] = [
    ['rootpw --iscrypted "$6$a$b/c.d"', ['rootpw', '--iscrypted', '$6$a$b/c.d']],
    [
      'user --name=alice --gecos="Alice O\'Hara, \\"ops\\" #1" --groups=wheel',
      ['user', '--name=alice', '--gecos=Alice O\'Hara, "ops" #1', '--groups=wheel'],
    ],
    ["sshkey --username=bob 'ssh-ed25519 AAAA bob@home'", ['sshkey', '--username=bob', 'ssh-ed25519 AAAA bob@home']],
    ['firewall --enabled --port=8443:tcp # a comment', ['firewall', '--enabled', '--port=8443:tcp']],
    ['a b#c d', ['a', 'b']],
    ['x "back\\\\slash" \\$y', ['x', 'back\\slash', '$y']],
    ['x "a\\nb"', ['x', 'a\\nb']],
    ['  \tspaced   out  ', ['spaced', 'out']],
    ['empty "" \'\'', ['empty', '', '']],
  ]
  const py = await shlexSplit(table.map(([l]) => l))
  for (const [i, [line, want]] of table.entries()) {
    t.same(splitKsLine(line), want, line)
    t.same(py[i], want, `Python agrees: ${line}`)
  }
  t.throws(() => splitKsLine('x "open'), /no closing quotation/)
})

for (const c of CASES) {
  t.test(`parseKickstart reads our ${c.name} ks.cfg (${c.ks.source}) as pykickstart does`, async (t) => {
    const { plan } = loadFixture(join(FIXTURES, c.name, 'appliance.yaml'))
    const ks = renderKickstart(plan, c.ks)
    const p = parseKickstart(ks)
    const ref = ksStructure(ks)
    t.same(ref.problems, [])
    const py = await shlexSplit(ref.commands)
    t.same(
      p.commands.map((x) => [x.name, ...x.args]),
      py,
      'every command line split as Python shlex splits it',
    )
    const lines = ks.split('\n')
    for (const x of p.commands) t.equal(splitKsLine(lines[x.line - 1]!)[0], x.name, `line ${x.line} is the ${x.name} command`)
    t.same(
      p.sections.map((s) => ({ header: s.header, body: s.body })),
      ref.sections.map((s) => ({ header: s.header, body: s.body.map((l) => l + '\n').join('') })),
      'sections: header and body up to %end',
    )
    t.same(
      p.sections.map((s) => ({ kind: s.kind, script: s.script })),
      [
        { kind: 'packages', script: undefined },
        {
          kind: 'post',
          script: { nochroot: true, interpreter: '/bin/bash', erroronfail: true, log: '/mnt/sysimage/root/ks-post-nochroot.log' },
        },
        { kind: 'post', script: { nochroot: false, interpreter: '/bin/bash', erroronfail: true, log: '/root/ks-post.log' } },
      ],
      'the %post --nochroot comes first, both halt the install on failure and log into the new system',
    )
    for (const s of p.sections) t.equal(lines[s.line - 1]!.trim(), s.header, `${s.kind} header at line ${s.line}`)
    const known = new Set([...EMULATED.map((e) => e.command), ...BASE_GUEST_IS])
    t.same(
      p.commands.filter((x) => !known.has(x.name)).map((x) => x.name),
      [],
      'every command is emulated or left to the base guest',
    )
    const users = p.commands.filter((x) => x.name === 'user').map((x) => x.args.find((a) => a.startsWith('--name='))!.slice(7))
    t.same(
      users,
      plan.config.host.users.map((u) => u.name),
      'one user command per configured user',
    )
  })
}

t.test('parseKickstart: sections', async (t) => {
  const p = parseKickstart(
    'text\n%post --nochroot --interpreter /usr/bin/python3 --logfile /tmp/x.log\nprint(1)\n%end\n%post\n  echo "%end is not alone here"\n%end\n',
  )
  t.same(
    p.commands.map((c) => c.name),
    ['text'],
  )
  t.same(p.sections[0]!.script, { nochroot: true, interpreter: '/usr/bin/python3', erroronfail: false, log: '/tmp/x.log' })
  t.same(p.sections[1]!.script, { nochroot: false, interpreter: '/bin/sh', erroronfail: false })
  t.equal(p.sections[1]!.body, '  echo "%end is not alone here"\n')
  t.throws(() => parseKickstart('%post\necho\n'), /has no %end/)
  t.throws(() => parseKickstart('%post --bogus\n%end\n'), /options this helper does not know: --bogus/)
  t.throws(() => parseKickstart('%end\n'), /%end outside a section/)
})

const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0

t.test(
  '%post as Anaconda runs it: order, --log, --erroronfail, the OEMDRV medium, /mnt/sysimage',
  { skip: canUnshare ? false : 'unshare -m is not permitted here' },
  async (t) => {
    const d = mkdtempSync(join(tmpdir(), 'ks-apply-t-'))
    t.teardown(() => rmSync(d, { recursive: true, force: true }))
    const root = join(d, 'root')
    for (const x of ['etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'root']) mkdirSync(join(root, x), { recursive: true })
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\n')
    const medium = join(d, 'oemdrv')
    mkdirSync(join(medium, 'appliance'), { recursive: true })
    writeFileSync(join(medium, 'ks.cfg'), 'the kickstart\n')
    writeFileSync(join(medium, 'appliance/blob'), 'payload\n')
    const tmpBefore = readdirSync('/tmp').filter((n) => n.startsWith('oemdrv.')).length
    const ks = [
      '%post --nochroot',
      'echo first; exit 3',
      '%end',
      '%post --nochroot --interpreter=/bin/bash --log=/mnt/sysimage/root/second.log',
      'set -eu',
      'm=$(mktemp -d /tmp/oemdrv.XXXXXX)',
      'test -e /dev/disk/by-label/OEMDRV',
      'mount -o ro /dev/disk/by-label/OEMDRV "$m"',
      'cat "$m/ks.cfg"',
      'if touch "$m/x" 2>/dev/null; then echo WRITABLE; else echo read-only; fi',
      'cp "$m/appliance/blob" /mnt/sysimage/root/blob',
      'umount "$m"',
      'echo "install path $ANA_INSTALL_PATH"',
      '%end',
      '%post --nochroot --erroronfail --log=/mnt/sysimage/root/third.log',
      'echo "it went wrong" >&2; exit 1',
      '%end',
      '%post --nochroot',
      'touch /mnt/sysimage/root/fourth-ran',
      '%end',
      '',
    ].join('\n')
    await t.rejects(
      applyKickstart(ks, root, { media: { OEMDRV: medium } }),
      /Anaconda would halt the install here: the script at line 15 .*exited 1, and it has --erroronfail\. Its output:\nit went wrong/s,
      'a failing --erroronfail script halts, with its log',
    )
    t.equal(
      readFileSync(join(root, 'root/second.log'), 'utf8'),
      'the kickstart\nread-only\ninstall path /mnt/sysimage\n',
      '--log inside the new system; the medium mounted read-only by its label',
    )
    t.equal(readFileSync(join(root, 'root/blob'), 'utf8'), 'payload\n', 'the script wrote into the new root at /mnt/sysimage')
    t.equal(readFileSync(join(root, 'root/third.log'), 'utf8'), 'it went wrong\n', 'stderr goes to the log too')
    t.notOk(existsSync(join(root, 'root/fourth-ran')), 'nothing runs after the halt')
    t.same(readdirSync(join(root, 'tmp')), [], 'no script left in the root')
    t.equal(readdirSync('/tmp').filter((n) => n.startsWith('oemdrv.')).length, tmpBefore, 'the installer /tmp was private')
    t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(d), 'nothing left mounted')

    const ok = await applyKickstart(ks.replace('--erroronfail ', ''), root, { media: { OEMDRV: medium } })
    t.same(
      ok.scripts.map((s) => [s.line, s.rc]),
      [
        [1, 3],
        [4, 0],
        [15, 1],
        [18, 0],
      ],
      'without --erroronfail a failure is reported and the next script runs, in file order',
    )
    t.equal(ok.scripts[0]!.output, 'first\n', 'without --log the output is kept in /tmp/ks-script-N.log')
    t.ok(existsSync(join(root, 'root/fourth-ran')))
    t.same(
      ok.shimCalls,
      ['mount -o ro /dev/disk/by-label/OEMDRV /tmp/' + ok.shimCalls[0]!.split('/tmp/')[1]],
      'the medium mount is reported',
    )
  },
)

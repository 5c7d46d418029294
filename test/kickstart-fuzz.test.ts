// Fuzz: hostile values in every config field and host-spec entry that reaches
// ks.cfg. For each, either the render refuses it with a UserError naming the
// field (only for values no kickstart line can carry: line breaks, control
// characters, a leading "-" where kickstart would see an option), or the
// output still parses (the sections pykickstart sees are exactly ours, bash -n
// and shellcheck are clean on every %post) and carries the value exactly
// (command lines through Python's shlex; the host-spec %post run under a temp
// root and compared byte for byte).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { run } from '../builder/exec.js'
import { UserError } from '../builder/errors.js'
import { hostModel } from '../builder/render/host-model.js'
import { renderIgnition } from '../builder/render/ignition.js'
import { renderKickstart } from '../builder/render/kickstart.js'
import type { HostSpec } from '../builder/plan/types.js'
import {
  ksStructure,
  laidFromKickstart,
  laidFromModel,
  lintBash,
  loadFixture,
  planFor,
  postSections,
  shlexSplit,
} from './hostspec-fixture.js'

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname
const base = loadFixture(join(FIXTURES, 'ks-dhcp-auto', 'appliance.yaml'))

// A small seeded generator so a failure can be replayed (FUZZ_SEED=n).
const seed = Number(process.env.FUZZ_SEED ?? 20240611)
let state = seed >>> 0
const rnd = (n: number) => {
  state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
  return state % n
}
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!

const NASTY = [
  "'",
  '"',
  '\\',
  '$(touch /tmp/fuzz-pwned)',
  '`id`',
  '${HOME}',
  '$HOME',
  '#',
  ' #c',
  '%end',
  '\n%end\n',
  '%include /x',
  '%ksappend x',
  '%post',
  ';',
  '&&',
  '|',
  '>',
  '<',
  '*',
  '?',
  '[a]',
  '!',
  '~',
  ' ',
  '\t',
  '\n',
  '\r',
  '\u2028',
  '\x0b',
  'é',
  '✓',
  '\x7f',
  'MIRROR_APPLIANCE_B64',
  "'\\''",
  '"\\"',
  '--',
  '=',
  ',',
  ':',
  '{',
  '}',
]
const nasty = (len = 1 + rnd(5)) =>
  Array.from({ length: len }, () => (rnd(3) === 0 ? pick(['a', 'Z', '0', '.', '-', '_']) : pick(NASTY))).join('')
/** What a kickstart line can never carry */
const unprintable = (v: string) => /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/.test(v)
const show = (v: string) => JSON.stringify(v).replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))

const tmp = mkdtempSync(join(tmpdir(), 'ks-fuzz-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 30)

t.test(`fuzz ${ROUNDS} rounds, seed ${seed}`, async (t) => {
  let refused = 0
  for (let round = 0; round < ROUNDS; round++) {
    const config = structuredClone(base.config)
    const gecos = nasty()
    const comment = nasty()
    const hostname = rnd(2) ? `h${nasty(2)}.example` : 'plain.example'
    const tz = rnd(3) ? 'Europe/Berlin' : nasty(2)
    const search = nasty(2)
    config.host.hostname = hostname
    config.host.timezone = tz
    config.host.network.searchDomains = [search]
    config.host.users = [
      {
        name: 'fuzz',
        gecos,
        sudo: true,
        password: { kind: 'plain', plain: nasty(6) },
        sshKeys: [`ssh-ed25519 AAAAC3Nza ${comment}`, `ssh-rsa AAAAB3 ${nasty()}`],
      },
    ]
    const host: HostSpec = {
      dirs: [
        {
          path: `/etc/fz${nasty(3).replace(/\//g, '')}`,
          mode: 0o750,
          owner: 'root',
          group: rnd(2) ? 'root' : nasty(2),
          selinuxType: 'container_file_t',
        },
      ],
      files: Array.from({ length: 3 }, (_, i) => ({
        path: `/etc/fuzz/${i}${nasty(3).replace(/\//g, '')}`,
        contents: rnd(2) ? `${nasty(8)}\n%end\nMIRROR_APPLIANCE_B64\n` : Buffer.from(Array.from({ length: rnd(300) }, () => rnd(256))),
        mode: pick([0o600, 0o644, 0o755, 0o4750]),
        owner: 'root',
        group: 'root',
      })),
      enableUnits: ['fuzz.service'],
      disableUnits: [],
      firewallPorts: ['8443/tcp'],
    }
    if (host.files.some((f) => f.path.includes('\0'))) continue
    const plan = planFor(config, base.plan.configDigest, host)
    const label = `round ${round}: gecos=${show(gecos)} comment=${show(comment)} hostname=${show(hostname)} tz=${show(tz)}`

    const expectRefusal: [string, string][] = []
    if (unprintable(hostname)) expectRefusal.push(['host.hostname', hostname])
    if (unprintable(tz) || tz.startsWith('-')) expectRefusal.push(['host.timezone', tz])
    if (unprintable(gecos)) expectRefusal.push(['host.users[0].gecos', gecos])
    if (unprintable(`ssh-ed25519 AAAAC3Nza ${comment}`.trim())) expectRefusal.push(['host.users[0].sshKeys[0]', comment])
    if (unprintable(config.host.users[0]!.sshKeys[1]!.trim())) expectRefusal.push(['host.users[0].sshKeys[1]', ''])
    if (unprintable(search)) expectRefusal.push(['host.network.searchDomains[0]', search])

    let ks: string
    try {
      ks = renderKickstart(plan, { source: 'cdrom' })
    } catch (e) {
      refused++
      const ok = e instanceof UserError && expectRefusal.some(([field]) => e.message.startsWith(field + ':'))
      t.ok(ok, `${label}: refused with a UserError naming a bad field (${(e as Error).message})`)
      if (!ok) throw e
      continue
    }
    t.same(expectRefusal, [], `${label}: renders only when every value fits on a line`)

    const s = ksStructure(ks)
    t.same(s.problems, [], `${label}: no stray sections`)
    t.same(
      s.sections.map((x) => x.header.split(' ')[0]),
      ['%packages', '%post', '%post'],
      `${label}: exactly our sections`,
    )
    for (const [i, sec] of postSections(s).entries())
      t.equal(
        await lintBash(sec.body.join('\n') + '\n', tmp, `fuzz-${round}-${i}.sh`),
        '',
        `${label}: %post ${i} bash -n and shellcheck clean`,
      )

    const args = await shlexSplit(s.commands)
    const find = (cmd: string) => args.find((a) => a[0] === cmd) ?? []
    t.ok(find('network').includes(`--hostname=${hostname}`), `${label}: hostname carried exactly`)
    t.equal(find('timezone')[1], tz, `${label}: timezone carried exactly`)
    t.ok(find('user').includes(`--gecos=${gecos}`) || gecos === '', `${label}: gecos carried exactly`)
    t.same(find('sshkey'), ['sshkey', '--username=fuzz', `ssh-ed25519 AAAAC3Nza ${comment}`.trim()], `${label}: ssh key carried exactly`)
    t.notOk(
      ks.includes(config.host.users[0]!.password.kind === 'plain' ? (config.host.users[0]!.password as { plain: string }).plain : '\0'),
      `${label}: no plain password`,
    )

    const rootDir = join(tmp, `r${round}`)
    const { calls: _calls, ...laid } = await laidFromKickstart(ks, rootDir)
    t.same(laid, laidFromModel(hostModel(plan)), `${label}: %post lays down every file byte for byte`)
    rmSync(rootDir, { recursive: true, force: true })

    const ign = join(tmp, `fuzz-${round}.ign`)
    writeFileSync(ign, renderIgnition(plan))
    const v = await run('ignition-validate', [ign], { nothrow: true })
    t.equal(v.code, 0, `${label}: ignition-validate ${v.stdout}${v.stderr}`)
  }
  t.ok(refused < ROUNDS, `some rounds rendered (${ROUNDS - refused} of ${ROUNDS})`)
  t.ok(refused > 0, `some rounds were refused (${refused})`)
})

// Issue 18 point 1: Quay's container runs as uid 1001 and its files (TLS key,
// config.yaml, database) belong to that uid, while kickstart and Ignition
// users take uids from 1000 up. The host reserves 1001 with a locked account
// made before any configured user. Here: the rendered kickstart with three
// users applied as Anaconda would (test/helpers/kickstart-apply.ts, real
// useradd in a root with this machine's userland), and the name check.
// Ignition's side is in ignition-apply.test.ts (ks-bios-custom: three users);
// the bundle's refusal on an existing host in registryctl-install.test.ts.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import {
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
import { loadConfigText } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import { hostModel } from '../builder/render/host-model.js'
import { renderKickstart } from '../builder/render/kickstart.js'
import { QUAY_ACCOUNT } from '../builder/registry/hostspec.js'
import { parseKickstart } from './helpers/kickstart-apply.js'
import { applyKickstartWithHostUsr } from './helpers/kickstart-apply-userland.js'

const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0

const THREE_USERS = '  users:\n    - name: alice\n      sudo: true\n    - name: bob\n    - name: carol\n'
function planOf(host: string, flavor = 'quay') {
  const yaml = `apiVersion: mirror-appliance/v1\nhost:\n  hostname: uid.example.internal\n  disk: {device: vda}\n${host}registry:\n  flavor: ${flavor}\n`
  return planAppliance(loadConfigText(yaml, 'appliance.yaml', { baseDir: '/' }), { epoch: 1700000000, seed: 'quay-uid' }).plan
}

t.test('the kickstart creates the quay account before any user, with uid and gid 1001, locked, no login shell', async (t) => {
  const users = parseKickstart(renderKickstart(planOf(THREE_USERS), { source: 'cdrom' })).commands.filter((c) => c.name === 'user')
  t.same(
    users.map((c) => c.args.find((a) => a.startsWith('--name='))),
    ['--name=quay-container', '--name=alice', '--name=bob', '--name=carol'],
    'first in file order (Anaconda runs user commands in that order)',
  )
  t.same(users[0]!.args, [
    '--name=quay-container',
    '--uid=1001',
    '--gid=1001',
    "--gecos=Quay's container user (mirror-appliance)",
    '--homedir=/home/quay-container',
    '--shell=/sbin/nologin',
    '--lock',
  ])
  const dist = parseKickstart(renderKickstart(planOf(THREE_USERS, 'distribution'), { source: 'cdrom' })).commands
  t.notOk(
    dist.some((c) => c.name === 'user' && c.args.includes('--name=quay-container')),
    'distribution: no account (its files are root’s, its container runs as root)',
  )
  t.throws(
    () => hostModel(planOf('  users:\n    - name: quay-container\n')),
    /host\.users\[0\]\.name: "quay-container" is the account that reserves uid 1001 for the registry's container; choose another name/,
  )
})

/** A root with this machine's /usr (bind-mounted by the caller) and the /etc files useradd reads. */
function userlandRoot(d: string): string {
  const root = join(d, 'root')
  for (const x of [
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
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nwheel:x:10:\n')
  writeFileSync(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o600 })
  writeFileSync(join(root, 'etc/gshadow'), 'root:*::\nwheel:*::\n', { mode: 0o600 })
  for (const f of ['login.defs', 'ld.so.cache', 'nsswitch.conf'])
    if (existsSync(`/etc/${f}`)) copyFileSync(`/etc/${f}`, join(root, 'etc', f))
  if (existsSync('/etc/alternatives'))
    cpSync('/etc/alternatives', join(root, 'etc/alternatives'), { recursive: true, verbatimSymlinks: true })
  return root
}

t.test(
  "three users, the kickstart applied as Anaconda would: none of them gets 1001, and Quay's files belong to the locked account",
  { skip: canUnshare ? false : 'unshare -m is not permitted here' },
  async (t) => {
    const d = mkdtempSync(join(tmpdir(), 'ks-quay-uid-'))
    t.teardown(() => rmSync(d, { recursive: true, force: true }))
    const plan = planOf(THREE_USERS)
    const ksFile = join(d, 'ks.cfg')
    writeFileSync(ksFile, renderKickstart(plan, { source: 'cdrom' }))
    const root = userlandRoot(d)
    const r = applyKickstartWithHostUsr(ksFile, root, d)
    t.equal(r.status, 0, `kickstart applied: ${r.stderr}`)
    if (r.status !== 0) return
    const report = JSON.parse(r.stdout) as { commands: string[]; scripts: { rc: number; output: string }[] }
    t.same(
      report.scripts.map((s) => s.rc),
      [0, 0],
      'both %post scripts succeed',
    )

    const passwd = new Map(
      readFileSync(join(root, 'etc/passwd'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => [l.split(':')[0]!, l.split(':')]),
    )
    const uidOf = (n: string) => Number(passwd.get(n)?.[2])
    t.equal(uidOf(QUAY_ACCOUNT.name), 1001, 'quay-container holds uid 1001')
    t.equal(passwd.get(QUAY_ACCOUNT.name)?.[3], '1001', 'and gid 1001')
    t.equal(passwd.get(QUAY_ACCOUNT.name)?.[6], '/sbin/nologin', 'no login shell')
    const shadow = readFileSync(join(root, 'etc/shadow'), 'utf8')
    t.match(shadow, /^quay-container:!/m, 'locked')
    for (const u of ['alice', 'bob', 'carol']) {
      t.ok(passwd.has(u), `${u} exists`)
      t.not(uidOf(u), 1001, `${u} does not get 1001 (uid ${uidOf(u)})`)
    }
    // every file and directory the host spec gives Quay's uid: on disk, owned by the account
    const owned = [...plan.host.dirs, ...plan.host.files].filter((x) => x.owner === '1001')
    t.ok(
      owned.some((x) => x.path.endsWith('/ssl.key')) && owned.some((x) => x.path.endsWith('/config.yaml')),
      "Quay's key and config among them",
    )
    for (const x of owned) t.equal(lstatSync(join(root, x.path)).uid, 1001, `${x.path}: uid 1001 = ${QUAY_ACCOUNT.name}`)
  },
)

// appliance.ign applied by the real Ignition (Debian's ignition 2.14.0, the
// binary an initramfs runs), not only validated: stages fetch-offline and
// files onto a scratch root with stand-ins for what RHEL has (see
// helpers/ignition-apply.ts). What it lays down (every file with its bytes,
// every directory, mode, numeric owner, the units it presets enabled, the
// accounts) must be the host model, and the same as what the kickstart's
// %post lays down (run under bash by hostspec-fixture's laidFromKickstart).
// The registry's own host spec is used (planAppliance), so Quay's uid 1001,
// a container's uid rather than an account, is among the owners. No Butane
// translator can be had here (not packaged for Debian 12, not on npm): the
// Butane of the same host spec is read back and compared with the model.
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import YAML from 'yaml'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import { hostModel } from '../builder/render/host-model.js'
import { renderButane } from '../builder/render/butane.js'
import { renderIgnition } from '../builder/render/ignition.js'
import { renderKickstart } from '../builder/render/kickstart.js'
import { laidFromIgnitionLike, laidFromKickstart, laidFromModel, type Laid } from './hostspec-fixture.js'
import {
  applyIgnition,
  BOOKKEEPING_FILES,
  findIgnition,
  idsOf,
  PRESET,
  rhelLikeRoot,
  STAND_IN_DIRS,
  STAND_IN_FILES,
  walk,
} from './helpers/ignition-apply.js'

const CI = process.env.CI === 'true'
const FIXTURES = new URL('./fixtures/', import.meta.url).pathname
// quay (uid 1001 owners, quadlets), distribution on 8.6 (plain units enabled),
// two users with password and keys, three users (one sudo without password: a sudoers drop-in) and root locked
const CASES = ['registry-quay', 'registry-distribution-rhel86', 'ks-static-uefi-fips', 'ks-bios-custom']

const ignition = await findIgnition()
const why =
  ignition === null
    ? 'Debian’s ignition package is not installed (apt-get install ignition; .ci/run does)'
    : process.getuid?.() !== 0
      ? 'Ignition creates users with useradd --root, which needs root'
      : null
if (why && CI) t.fail(`${why}: under CI=true this test must run`)

const tmp = mkdtempSync(join(tmpdir(), 'ignition-apply-'))
// Ignition writes a user's SSH keys as that user: the scratch root must be reachable by every uid
chmodSync(tmp, 0o755)
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

/** "user:group" as names or numbers → "uid:gid", through the accounts Ignition left on the host. */
function numeric(owner: string, users: Map<string, number>, groups: Map<string, number>): string {
  const [u, g] = owner.split(':') as [string, string]
  const id = (x: string, ids: Map<string, number>) => (/^\d+$/.test(x) ? x : ids.has(x) ? String(ids.get(x)) : `unknown ${x}`)
  return `${id(u, users)}:${id(g, groups)}`
}
const withNumericOwners = (l: Laid, users: Map<string, number>, groups: Map<string, number>): Laid => ({
  ...l,
  dirs: l.dirs.map((d) => ({ ...d, owner: numeric(d.owner, users, groups) })),
  files: l.files.map((f) => ({ ...f, owner: numeric(f.owner, users, groups) })),
})

/** The scratch root read back: what Ignition laid down besides the stand-ins, its bookkeeping and the users' homes. */
function laidFromRoot(root: string, specDirs: Set<string>): Laid & { otherDirs: { path: string; mode: number; owner: string }[] } {
  const laid: ReturnType<typeof laidFromRoot> = { dirs: [], files: [], enabled: [], disabled: [], otherDirs: [] }
  const skip = new Set([...STAND_IN_FILES, ...STAND_IN_DIRS, ...BOOKKEEPING_FILES])
  for (const p of walk(root)) {
    if (skip.has(p) || p.startsWith('/home/')) continue
    const st = lstatSync(join(root, p))
    const entry = { path: p, mode: st.mode & 0o7777, owner: `${st.uid}:${st.gid}` }
    if (st.isDirectory()) (specDirs.has(p) ? laid.dirs : laid.otherDirs).push(entry)
    else
      laid.files.push({
        ...entry,
        contents: st.isFile() ? readFileSync(join(root, p)).toString('base64') : `not a file (mode ${st.mode.toString(8)})`,
      })
  }
  // the order laidFromModel uses (plain string order of the paths), not the walk's
  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
  laid.dirs.sort(byPath)
  laid.files.sort(byPath)
  const preset = readFileSync(join(root, PRESET), 'utf8').split('\n').filter(Boolean)
  laid.enabled = preset
    .filter((l) => l.startsWith('enable '))
    .map((l) => l.slice(7))
    .sort()
  laid.disabled = preset
    .filter((l) => l.startsWith('disable '))
    .map((l) => l.slice(8))
    .sort()
  return laid
}

const shadowOf = (root: string) =>
  new Map(
    readFileSync(join(root, 'etc/shadow'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.split(':')[0]!, l.split(':')[1]!]),
  )
const membersOf = (root: string, group: string) =>
  (
    readFileSync(join(root, 'etc/group'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${group}:`))
      ?.split(':')[3] ?? ''
  )
    .split(',')
    .filter(Boolean)

for (const name of CASES) {
  t.test(
    `${name}: real Ignition applies appliance.ign onto a scratch root (stand-in RHEL /etc, stand-in setfiles)`,
    { skip: why ?? false },
    async (t) => {
      const work = join(tmp, name)
      const root = join(work, 'root')
      mkdirSync(root, { recursive: true })
      const plan = planAppliance(loadConfig(join(FIXTURES, name, 'appliance.yaml')), { epoch: 1_700_000_000, seed: 'ignition' }).plan
      const model = hostModel(plan)
      const config = join(work, 'appliance.ign')
      writeFileSync(config, renderIgnition(plan))

      rhelLikeRoot(root)
      const applied = await applyIgnition(ignition!, config, root, work)
      t.ok(
        applied.ok,
        `Ignition applies the whole config${applied.ok ? '' : `; it stopped with: ${applied.critical.join(' | ') || applied.log.slice(-2000)}`}`,
      )
      if (!applied.ok) return

      const users = idsOf(join(root, 'etc/passwd'))
      const groups = idsOf(join(root, 'etc/group'))
      const specDirs = new Set(model.dirs.map((d) => d.path))
      const { otherDirs, ...fromIgnition } = laidFromRoot(root, specDirs)
      const fromModel = withNumericOwners(laidFromModel(model), users, groups)
      t.ok(fromModel.files.length > 0 && fromModel.dirs.length > 0, 'the model has files and directories to compare')
      t.same(
        fromIgnition,
        fromModel,
        'every file (bytes, mode, uid:gid), directory and enabled unit Ignition laid down is the host model, and nothing else',
      )

      mkdirSync(join(work, 'ks'))
      const { calls: _calls, ...fromKickstart } = await laidFromKickstart(renderKickstart(plan, { source: 'cdrom' }), join(work, 'ks'))
      t.same(
        fromIgnition,
        withNumericOwners(fromKickstart, users, groups),
        'Ignition and the kickstart %post lay down the same files, directories, modes, owners and units',
      )

      // parents Ignition made on the way: plain root-owned 0755, like mkdir -p in %post
      const ancestors = new Set(
        [...model.files, ...model.dirs, { path: PRESET }].flatMap((x) =>
          x.path
            .split('/')
            .slice(1, -1)
            .map((_, i, a) => '/' + a.slice(0, i + 1).join('/')),
        ),
      )
      t.same(
        otherDirs.filter((d) => !ancestors.has(d.path) || d.mode !== 0o755 || d.owner !== '0:0'),
        [],
        'every other directory is a parent of a spec path, 0755 root:root',
      )
      // Quay's uid travels as a number: no account needed, none looked up
      for (const f of model.files.filter((x) => /^\d+$/.test(x.owner)))
        t.equal(lstatSync(join(root, f.path)).uid, Number(f.owner), `${f.path} owned by uid ${f.owner}`)

      // the relabel Ignition asks for covers everything it wrote (RHEL's setfiles would label it by policy)
      const relabeled = new Set(applied.relabeled)
      const covered = (p: string) => p.split('/').some((_, i, a) => relabeled.has(root + a.slice(0, a.length - i).join('/')))
      t.same(
        [...model.files, ...model.dirs].map((x) => x.path).filter((p) => !covered(p)),
        [],
        'setfiles asked to relabel every path of the spec',
      )

      // issue 18 point 1: the account that reserves Quay's uid is made before
      // the users, so no person gets 1001 and with it Quay's key and database
      for (const a of model.accounts ?? []) {
        t.equal(users.get(a.name), a.uid, `${a.name} holds uid ${a.uid}`)
        t.equal(groups.get(a.name), a.uid, `its group has gid ${a.uid}`)
        const entry = readFileSync(join(root, 'etc/passwd'), 'utf8')
          .split('\n')
          .find((l) => l.startsWith(`${a.name}:`))!
        t.equal(entry.split(':')[6], '/sbin/nologin', `${a.name}: no login shell`)
        t.notMatch(shadowOf(root).get(a.name) ?? '', /^\$/, `${a.name}: no password (locked)`)
        for (const u of model.users) t.not(users.get(u.name), a.uid, `user ${u.name} does not get uid ${a.uid}`)
        const owned = model.files.filter((f) => f.owner === String(a.uid))
        t.ok(
          owned.some((f) => f.path.endsWith('/ssl.key')),
          "Quay's TLS key is among the files owned by the uid",
        )
        for (const f of owned) t.equal(lstatSync(join(root, f.path)).uid, a.uid, `${f.path}: owned by ${a.name}`)
      }
      if (name === 'ks-bios-custom')
        t.ok(model.users.length >= 3 && (model.accounts ?? []).length === 1, 'three users and the quay account (the case this checks)')

      // accounts: passwords, wheel, keys
      const shadow = shadowOf(root)
      t.equal(
        shadow.get('root'),
        model.rootPasswordHash ?? '!!',
        model.rootPasswordHash ? 'root gets its password hash' : 'root stays locked',
      )
      for (const u of model.users) {
        t.ok(users.has(u.name), `user ${u.name} exists`)
        const hash = shadow.get(u.name) ?? ''
        if (u.passwordHash) t.equal(hash, u.passwordHash, `${u.name}: password hash set`)
        else t.notMatch(hash, /^\$/, `${u.name}: no password (locked)`)
        t.equal(membersOf(root, 'wheel').includes(u.name), u.groups.includes('wheel'), `${u.name}: in wheel exactly when sudo`)
        if (u.sshKeys.length) {
          const keys = readFileSync(join(root, 'home', u.name, '.ssh/authorized_keys.d/ignition'), 'utf8')
            .split('\n')
            .filter(Boolean)
          t.same(
            keys,
            u.sshKeys.map((k) => k.trim()),
            `${u.name}: SSH keys in ~/.ssh/authorized_keys.d/ignition`,
          )
        }
      }
    },
  )
}

t.test('Butane of the registry host spec: numeric owners as `id:`, read back to the model', async (t) => {
  const plan = planAppliance(loadConfig(join(FIXTURES, 'registry-quay', 'appliance.yaml')), { epoch: 1_700_000_000, seed: 'ignition' }).plan
  const bu = renderButane(plan)
  t.match(bu, /^ {6}user: \{ id: 1001 \}$/m, 'Quay’s uid written as user: { id: 1001 }')
  t.notMatch(bu, /name: "1001"/, 'never as a name')
  t.same(laidFromIgnitionLike(YAML.parse(bu), true), laidFromModel(hostModel(plan)), 'Butane describes the model')
})

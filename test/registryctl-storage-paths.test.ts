// mirror-registryctl install --quayStorage DIR and --sqliteStorage DIR (issue
// 19 point 6): the registry's blob storage and Quay's SQLite database in
// directories of the user's choice, followed by everything that uses them:
// the units' bind mounts, the directories' owner and mode, the state file,
// preflight, status, backup and restore, upgrade's database snapshot and its
// rollback, uninstall and purge. In Red Hat's mirror-registry (followed at
// quay/mirror-registry 4b2cbcc: cmd/install.go, the mirror_appliance role's
// tasks/install-quay-service.yaml and templates/quay.service.j2) each flag
// takes a podman volume name or, starting with "/", a host directory mounted
// at /datastorage and /sqlite; here only the directory (a name is refused,
// saying so). mirror-registryctl runs for real under bash against a scratch
// root with the recording fakes of test/helpers/ctl-harness.ts. What cannot
// be proven here: a real Quay writing its blobs and database through those
// mounts (no Quay image runs offline), nor SELinux relabelling (:Z).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { nextReleaseBundle, testPlan } from './helpers/bundle-fixture.js'
import { ctlHarness, type CtlHarness } from './helpers/ctl-harness.js'
import type { Plan } from '../builder/plan/types.js'
import { factsOf } from '../builder/registry/facts.js'

const BLOBS = '/srv/quay/blobs'
const HOME = '/srv/home'
const DB = `${HOME}/quay-db`

type Installed = CtlHarness & { ctl: string }
const install = async (t: Test, plan: Plan, args: string[], env: Record<string, string> = {}): Promise<Installed> => {
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install', ...args], env)
  if (r.status !== 0) throw new Error(r.out)
  return Object.assign(h, { ctl: join(h.root, 'usr/local/bin/mirror-registryctl') })
}
/** The row files.tsv has for a directory: [mode, owner, group] */
const dirRow = (h: CtlHarness, path: string) => {
  const row = readFileSync(join(h.bundleDir, 'files.tsv'), 'utf8')
    .split('\n')
    .map((l) => l.split('\t'))
    .find((r) => r[0] === 'dir' && r[4] === path)
  if (!row) throw new Error(`files.tsv has no dir ${path}`)
  return { mode: row[1]!, owner: row[2] === 'root' ? '0' : row[2]!, group: row[3] === 'root' ? '0' : row[3]! }
}
const stat = (p: string) => {
  const st = statSync(p)
  return { mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), owner: String(st.uid), group: String(st.gid) }
}

t.test(
  'quay: --quayStorage DIR --sqliteStorage=~/DIR: the units mount them, owned as the defaults are, recorded, shown by status',
  async (t) => {
    const plan = testPlan()
    const facts = factsOf(plan.host)
    t.equal(facts.storageDir, '/var/lib/mirror-registry/quay-storage', 'the fact names the built storage directory')
    t.equal(facts.databaseDir, '/var/lib/mirror-registry/quay-sqlite')
    const h = await install(t, plan, ['--quayStorage', `${BLOBS}/`, '--sqliteStorage=~/quay-db'], { HOME })
    for (const unit of ['etc/containers/systemd/quay-app.container', 'etc/mirror-appliance/open-units/quay-app.container']) {
      const text = h.read(unit)
      t.match(text, new RegExp(`^Volume=${BLOBS}:/datastorage:Z$`, 'm'), `${unit}: Quay's storage is the directory given`)
      t.match(text, new RegExp(`^Volume=${DB}:/sqlite:Z$`, 'm'), `${unit}: its database directory is the one given (~ is $HOME)`)
      t.match(
        text,
        /^Volume=\/var\/lib\/mirror-registry\/quay-config:\/quay-registry\/conf\/stack:Z$/m,
        `${unit}: the config stays in the data directory`,
      )
      t.notMatch(text, /quay-storage:|quay-sqlite:/, `${unit}: the build's places are mounted no more`)
    }
    t.same(
      stat(join(h.root, BLOBS)),
      dirRow(h, facts.storageDir),
      "the storage directory: the mode and owner (Quay's uid) the default gets",
    )
    t.same(stat(join(h.root, DB)), dirRow(h, facts.databaseDir), 'the database directory too')
    t.notOk(existsSync(join(h.root, 'var/lib/mirror-registry/quay-storage')), 'no storage directory made in the data directory')
    t.notOk(existsSync(join(h.root, 'var/lib/mirror-registry/quay-sqlite')), 'no database directory either')
    const state = h.read('etc/mirror-appliance/registryctl.conf')
    t.match(state, new RegExp(`^STORAGE_DIR=${BLOBS}$`, 'm'), 'the state file records the storage directory')
    t.match(state, new RegExp(`^SQLITE_DIR=${DB}$`, 'm'), 'and the database directory')
    t.match(h.run(['install', '--help']).out, /^ {2}--quayStorage DIR .*\n(.*\n)*? {2}--sqliteStorage DIR /m, 'install --help names both')
    const st = h.run(['status'], {}, h.ctl)
    t.match(st.out, new RegExp(`^storage: +${BLOBS} \\(.* used; .* free of .*\\)$`, 'm'), 'status shows where the storage is')
    t.match(st.out, new RegExp(`^database: +SQLite in ${DB} \\(`, 'm'), 'and the database')
    // the install's own values are taken by uninstall and upgrade; others are refused
    let r = h.run(['uninstall', '--quayStorage', '/srv/other', '--autoApprove'], {}, h.ctl)
    t.equal(r.status, 2, r.out)
    t.match(
      r.out,
      new RegExp(
        `uninstall: --quayStorage /srv/other: this registry's storage is in ${BLOBS} \\(set by install\\); leave --quayStorage out`,
      ),
    )
    r = h.run(['upgrade', h.bundleDir, '--sqliteStorage', '/var/lib/mirror-registry/quay-sqlite'], {}, h.ctl)
    t.equal(r.status, 2, r.out)
    t.match(r.out, new RegExp(`upgrade: --sqliteStorage /var/lib/mirror-registry/quay-sqlite: this registry's database is in ${DB}`))
  },
)

t.test('quay: backup then restore brings back what the moved directories held', async (t) => {
  const h = await install(t, testPlan(), ['--quayStorage', BLOBS, '--sqliteStorage', DB])
  writeFileSync(join(h.root, BLOBS, 'blob'), 'before')
  writeFileSync(join(h.root, DB, 'quay_sqlite.db'), 'db before')
  const out = join(h.base, 'backups')
  mkdirSync(out)
  const b = h.run(['backup', out], {}, h.ctl)
  t.equal(b.status, 0, b.out)
  const archive = join(out, readdirSync(out)[0]!)
  const list = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' }).stdout
  t.match(list, /^srv\/quay\/blobs\/blob$/m, 'the backup holds the storage')
  t.match(list, /^srv\/home\/quay-db\/quay_sqlite\.db$/m, 'and the database')
  writeFileSync(join(h.root, BLOBS, 'blob'), 'after')
  writeFileSync(join(h.root, BLOBS, 'extra'), 'new')
  writeFileSync(join(h.root, DB, 'quay_sqlite.db'), 'db after')
  const r = h.run(['restore', archive, '--yes'], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.equal(readFileSync(join(h.root, BLOBS, 'blob'), 'utf8'), 'before', 'storage restored')
  t.notOk(existsSync(join(h.root, BLOBS, 'extra')), 'what was written after the backup is gone')
  t.equal(readFileSync(join(h.root, DB, 'quay_sqlite.db'), 'utf8'), 'db before', 'database restored')
  t.same(stat(join(h.root, BLOBS)), dirRow(h, factsOf(testPlan().host).storageDir), 'with its owner and mode')
  t.ok(h.calls().includes(`restorecon -R ROOT${BLOBS}`), 'labels restored on the moved storage')
  // a backup of an install that kept them in the data directory is refused, changing nothing
  const other = await install(t, testPlan(), [])
  writeFileSync(join(other.root, 'var/lib/mirror-registry/quay-storage/blob'), 'elsewhere')
  const out2 = join(other.base, 'backups')
  mkdirSync(out2)
  t.equal(other.run(['backup', out2], {}, other.ctl).status, 0)
  const r2 = h.run(['restore', join(out2, readdirSync(out2)[0]!), '--yes'], {}, h.ctl)
  t.equal(r2.status, 1, r2.out)
  t.match(r2.out, new RegExp(`holds no ${BLOBS}: this registry keeps its storage or database there .*nothing was changed`))
  t.equal(readFileSync(join(h.root, BLOBS, 'blob'), 'utf8'), 'before')
})

t.test('quay: upgrade snapshots the database from the moved directory and a rollback puts it back there', async (t) => {
  const plan = testPlan()
  const h = await install(t, plan, ['--quayStorage', BLOBS, '--sqliteStorage', DB])
  const db = join(h.root, DB, 'quay_sqlite.db')
  const old = Buffer.from('SQLite format 3\0 schema of the running release\n')
  writeFileSync(db, old)
  const nb = await nextReleaseBundle(h.base)
  let r = h.run(['upgrade', nb.dir], { FAKE_BROKEN_IMAGE: nb.refs[0]!, FAKE_MIGRATES: db }, h.ctl)
  t.equal(r.status, 1, r.out)
  t.match(r.out, new RegExp(`restoring ${DB} as it was before the upgrade`))
  t.same(readFileSync(db), old, 'the database as it was before the new release migrated it, in the moved directory')
  t.notOk(existsSync(`${db}-wal`), 'nothing the new release wrote beside it is left')
  t.same(stat(join(h.root, DB)), dirRow(h, factsOf(plan.host).databaseDir), 'the directory keeps its owner and mode')
  t.notOk(existsSync(join(h.root, 'var/lib/mirror-registry/quay-sqlite')), 'nothing restored into the default place')
  // a successful upgrade: the new release's units mount the same directories
  r = h.run(['upgrade', nb.dir], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  const unit = h.read('etc/containers/systemd/quay-app.container')
  t.match(unit, new RegExp(`^Volume=${BLOBS}:/datastorage:Z$`, 'm'), 'the new unit mounts the storage given at install')
  t.match(unit, new RegExp(`^Volume=${DB}:/sqlite:Z$`, 'm'))
  t.match(h.read('etc/mirror-appliance/registryctl.conf'), new RegExp(`^SQLITE_DIR=${DB}$`, 'm'), 'still recorded')
  t.same(readFileSync(db), old)
})

t.test('uninstall keeps the moved directories; --purge deletes them and nothing beside them', async (t) => {
  const h = await install(t, testPlan(), ['--quayStorage', BLOBS, '--sqliteStorage', DB])
  writeFileSync(join(h.root, BLOBS, 'blob'), 'kept')
  mkdirSync(join(h.root, 'srv/quay/neighbour'))
  writeFileSync(join(h.root, 'srv/quay/neighbour/file'), "not the registry's")
  let r = h.run(['uninstall', '--yes'], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.match(r.out, new RegExp(`data kept in .*, ${BLOBS}, ${DB} and`))
  t.equal(readFileSync(join(h.root, BLOBS, 'blob'), 'utf8'), 'kept', 'the storage is kept')
  t.ok(existsSync(join(h.root, DB)), 'and the database directory')
  // installed again with the same directories: the data is taken back, then purged
  r = h.run(['install', '--quayStorage', BLOBS, '--sqliteStorage', DB])
  t.equal(r.status, 0, r.out)
  t.match(r.out, new RegExp(`--quayStorage ${BLOBS} holds files already \\(blob\\): the registry takes them as its own`))
  r = h.run(['uninstall', '--purge', '--quayStorage', BLOBS, '--yes'], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.notOk(existsSync(join(h.root, BLOBS)), 'purge deletes the storage directory')
  t.notOk(existsSync(join(h.root, DB)), 'and the database directory')
  t.equal(readFileSync(join(h.root, 'srv/quay/neighbour/file'), 'utf8'), "not the registry's", 'nothing beside them')
  t.ok(existsSync(join(h.root, HOME)), 'nor their parents')
})

t.test("distribution: --quayStorage is its storage root: mounted there, the payload's tree laid there", async (t) => {
  const plan = testPlan({ flavor: 'distribution' })
  t.equal(factsOf(plan.host).storageDir, '/var/lib/mirror-registry/registry/storage')
  t.equal(factsOf(plan.host).databaseDir, '')
  const h = await install(t, plan, ['--quayStorage=/data/registry'])
  const unit = h.read('etc/containers/systemd/registry.container')
  t.match(unit, /^Volume=\/data\/registry:\/var\/lib\/registry:Z$/m)
  t.notMatch(unit, /registry\/storage:/)
  // (this fixture's payload carries no storage tree, its content is pushed; first boot laying a
  // tree in the directory the state file names: test/firstboot-harness.test.ts)
  t.match(h.read('etc/mirror-appliance/registryctl.conf'), /^STORAGE_DIR=\/data\/registry$/m)
  t.same(stat(join(h.root, 'data/registry')), dirRow(h, factsOf(plan.host).storageDir))
  t.notOk(existsSync(join(h.root, 'var/lib/mirror-registry/registry/storage')))
  t.match(h.run(['status'], {}, h.ctl).out, /^storage: +\/data\/registry \(/m)
  t.notMatch(h.run(['status'], {}, h.ctl).out, /^database:/m, 'no database line: there is none')
})

t.test('refused with exit 2 before anything is checked or changed, naming the flag', async (t) => {
  const quay = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const dist = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  const cases: [CtlHarness, string[], RegExp][] = [
    [quay, ['--quayStorage', 'data/blobs'], /install: --quayStorage data\/blobs: must be an absolute directory path/],
    [
      quay,
      ['--sqliteStorage', 'sqlite-storage'],
      /install: --sqliteStorage sqlite-storage: podman named volumes are not supported here .*give an absolute directory path/,
    ],
    [quay, ['--quayStorage', '/var/lib'], /install: --quayStorage \/var\/lib: a system directory/],
    [quay, ['--sqliteStorage=/usr/share/quay'], /install: --sqliteStorage \/usr\/share\/quay: inside the system directory \/usr/],
    [quay, ['--quayStorage', '/srv/x/../../tmp/q'], /install: --quayStorage \/tmp\/q: inside the system directory \/tmp/],
    [quay, ['--quayStorage', '/srv/a b'], /install: --quayStorage \/srv\/a b: only letters, digits/],
    [
      quay,
      ['--quayStorage', '/var/lib/mirror-registry/blobs'],
      /install: --quayStorage \/var\/lib\/mirror-registry\/blobs: overlaps \/var\/lib\/mirror-registry, which holds the registry's data directory/,
    ],
    [quay, ['--quayRoot', '/srv/reg', '--sqliteStorage', '/srv'], /--sqliteStorage \/srv: a system directory/],
    [quay, ['--quayRoot', '/srv/reg', '--sqliteStorage', '/srv/reg/db'], /--sqliteStorage \/srv\/reg\/db: overlaps \/srv\/reg/],
    [quay, ['--quayStorage', '/srv/q', '--sqliteStorage', '/srv/q/db'], /must be two separate directories/],
    [quay, ['--quayStorage', '/etc/mirror-appliance/s'], /inside the system directory \/etc/],
    [
      dist,
      ['--sqliteStorage', '/srv/db'],
      /install: --sqliteStorage: the distribution registry has no database .*leave --sqliteStorage out/,
    ],
    [
      dist,
      ['--sqliteStorage', '/srv/db', '--target', 'root@elsewhere'],
      /install: --sqliteStorage: the distribution registry has no database/,
    ],
  ]
  for (const [h, args, msg] of cases) {
    const snap = h.snapshot()
    const n = h.calls().length
    const r = h.run(['install', ...args])
    t.equal(r.status, 2, `${args.join(' ')}: ${r.out}`)
    t.match(r.out, msg, args.join(' '))
    t.same(h.snapshot(), snap, `${args.join(' ')}: nothing changed`)
    t.same(h.calls().slice(n), [], `${args.join(' ')}: nothing ran`)
  }
  // the build's own place is the same as not moving it
  const r = quay.run(['install', '--quayStorage', '/var/lib/mirror-registry/quay-storage'])
  t.equal(r.status, 0, r.out)
  t.match(quay.read('etc/containers/systemd/quay-app.container'), /^Volume=\/var\/lib\/mirror-registry\/quay-storage:\/datastorage:Z$/m)
  t.match(quay.read('etc/mirror-appliance/registryctl.conf'), /^STORAGE_DIR=$/m)
})

t.test("install --target: both flags reach the target as typed (~ is the target's home there), checked there", async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install', '--target', 'admin@reg.example', '--quayStorage=~/blobs', '--sqliteStorage', '/srv/db'], { HOME: '/home/me' })
  t.equal(r.status, 0, r.out)
  const remote = h.calls().find((c) => / sudo bash /.test(c))!
  t.ok(remote, h.calls().join('\n'))
  const words = spawnSync('bash', ['-c', `set -- ${remote.replace(/^.* admin@reg\.example sudo /, '')}; printf '%s\\n' "$@"`], {
    encoding: 'utf8',
  })
    .stdout.trim()
    .split('\n')
  t.same(words.slice(2), ['install', '--quayStorage', '~/blobs', '--sqliteStorage', '/srv/db'])
  t.notOk(existsSync(join(h.root, 'etc/mirror-appliance')), 'nothing installed here')
})

// a filesystem of its own for a directory: a tmpfs mounted in a mount namespace of the run's own (unshare -m, root only)
const NO_UNSHARE = spawnSync('unshare', ['-m', 'true']).status === 0 ? false : 'unshare -m is not permitted here (needs root)'

t.test(
  'preflight: the storage on a filesystem of its own is checked for room, and purge empties a mount point',
  { skip: NO_UNSHARE },
  async (t) => {
    // a tmpfs of 16 MiB mounted at the storage directory, in a mount namespace of the run's own (unshare -m: gone with it)
    const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
    const wrapper = join(h.base, 'in-tmpfs')
    writeFileSync(
      wrapper,
      'exec unshare -m bash -c \'mkdir -p "$MNT" && mount -t tmpfs -o size=16m tmpfs "$MNT" && exec bash "$CTL" "$@"\' wrapper "$@"\n',
    )
    const env = { MNT: join(h.root, 'srv/fast'), CTL: join(h.bundleDir, 'mirror-registryctl') }
    let r = h.run(['install', '--quayStorage', '/srv/fast'], { ...env, MA_MIN_FREE_KB: String(1024 * 1024 * 1024) }, wrapper)
    t.equal(r.status, 1, r.out)
    t.match(
      r.out,
      /preflight: disk: 16 MiB free at \S+\/srv\/fast \(for --quayStorage \/srv\/fast\); needs \d+ MiB \(payload \d+ MiB, plus 1048576 MiB to run\)/,
    )
    t.match(
      r.out,
      /preflight: disk: \d+ MiB free at \S+ \(for the data directory \/var\/lib\/mirror-registry\); needs \d+ MiB \(payload \d+ MiB once, plus/,
      'the data directory gets one copy of the payload, not two',
    )
    // with room: installed, then purged in the same kind of mount: emptied, not removed
    r = h.run(['install', '--quayStorage', '/srv/fast'], env, wrapper)
    t.equal(r.status, 0, r.out)
    const purge = join(h.base, 'purge-in-tmpfs')
    writeFileSync(
      purge,
      'exec unshare -m bash -c \'mount -t tmpfs -o size=16m tmpfs "$MNT" && echo x >"$MNT/blob" && bash "$CTL" "$@" && ls -A "$MNT" | wc -l\' wrapper "$@"\n',
    )
    r = h.run(['uninstall', '--purge', '--yes'], { ...env, CTL: join(h.root, 'usr/local/bin/mirror-registryctl') }, purge)
    t.equal(r.status, 0, r.out)
    t.match(r.out, /emptying \S+\/srv\/fast \(a mount point\)/)
    t.match(r.out, /^0$/m, 'the mount point is left empty')
  },
)

t.test('quay: a rollback puts the database back into a --sqliteStorage mount point', { skip: NO_UNSHARE }, async (t) => {
  const h = await install(t, testPlan(), ['--sqliteStorage', '/srv/db'])
  const nb = await nextReleaseBundle(h.base)
  const wrapper = join(h.base, 'upgrade-in-tmpfs')
  // the database on its own filesystem (a tmpfs in a mount namespace of this run's own)
  writeFileSync(
    wrapper,
    'exec unshare -m bash -c \'mount -t tmpfs -o size=16m tmpfs "$MNT" && printf "old schema\\n" >"$MNT/quay_sqlite.db" && ' +
      'bash "$CTL" "$@"; echo "rc=$?"; echo "files: $(ls -A "$MNT" | tr "\\n" " ")"; echo "db: $(cat "$MNT/quay_sqlite.db")"; mountpoint "$MNT"\' wrapper "$@"\n',
  )
  const mnt = join(h.root, 'srv/db')
  const r = h.run(
    ['upgrade', nb.dir],
    { MNT: mnt, CTL: h.ctl, FAKE_BROKEN_IMAGE: nb.refs[0]!, FAKE_MIGRATES: join(mnt, 'quay_sqlite.db') },
    wrapper,
  )
  t.match(r.out, /^rc=1$/m, r.out)
  t.match(r.out, /emptying \S+\/srv\/db \(a mount point\)/)
  t.match(r.out, /restoring \/srv\/db as it was before the upgrade/)
  t.match(r.out, /upgrade failed; rolled back: .* healthy, with the database and configuration as they were before the upgrade/)
  t.match(r.out, /^files: quay_sqlite\.db $/m, 'only the database, in the mount point itself (no copy nested in it, no -wal)')
  t.match(r.out, /^db: old schema$/m, 'as it was before the new release migrated it')
  t.match(r.out, /is a mountpoint$/m, 'the filesystem still mounted there')
})

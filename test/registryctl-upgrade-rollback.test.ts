// Issue 19 point 4: upgrade keeps what the new release may change at its
// first start (Quay migrates its SQLite database on start; distribution's
// config file) and puts it back on rollback; it refuses a bundle built for
// another hostname or port. mirror-registryctl runs for real under bash
// against a scratch root with the recording fakes (test/helpers/ctl-harness.ts):
// the fake systemctl "migrates" the database when the new release's units
// start (FAKE_MIGRATES), and the health check fails while they run
// (FAKE_BROKEN_IMAGE). What cannot be proven here: a real Quay's migration
// (no Quay image runs offline).
import t, { type Test } from 'tap'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { nextReleaseBundle, testPlan } from './helpers/bundle-fixture.js'
import { ctlHarness, type CtlHarness } from './helpers/ctl-harness.js'
import type { Plan } from '../builder/plan/types.js'
import { factsOf } from '../builder/registry/facts.js'

const MUTATING =
  /^(systemctl (start|stop|enable|disable|daemon-reload|restart)|firewall-cmd --quiet|skopeo copy --quiet|update-ca-trust|podman (rmi|network rm))/
const installed = async (t: Test, plan: Plan): Promise<CtlHarness & { ctl: string }> => {
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install'])
  if (r.status !== 0) throw new Error(r.out)
  return Object.assign(h, { ctl: join(h.root, 'usr/local/bin/mirror-registryctl') })
}
const unitBytes = (h: CtlHarness, plan: Plan) => new Map(factsOf(plan.host).unitFiles.map((u) => [u, readFileSync(join(h.root, u))]))
const leftovers = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('mirror-registryctl.'))

t.test('quay: a failed upgrade puts the SQLite database back byte for byte, taken with the registry stopped', async (t) => {
  const plan = testPlan()
  t.same(factsOf(plan.host).upgradeKeep, ['/var/lib/mirror-registry/quay-sqlite'], 'the fact names the database directory')
  const h = await installed(t, plan)
  const db = join(h.root, 'var/lib/mirror-registry/quay-sqlite/quay_sqlite.db')
  const old = Buffer.from('SQLite format 3\0 schema of the running release\n')
  writeFileSync(db, old)
  const units = unitBytes(h, plan)
  const nb = await nextReleaseBundle(h.base)
  const n = h.calls().length
  const r = h.run(['upgrade', nb.dir], { FAKE_BROKEN_IMAGE: nb.refs[0]!, FAKE_MIGRATES: db }, h.ctl)
  t.equal(r.status, 1, r.out)
  t.match(r.out, /stopping the registry: its units, database and configuration are kept for a rollback before the new release starts/)
  t.match(r.out, /restoring \/var\/lib\/mirror-registry\/quay-sqlite as it was before the upgrade/)
  t.match(
    r.out,
    /upgrade failed; rolled back: the previous units and images run again and are healthy, with the database and configuration as they were before the upgrade/,
  )
  t.same(readFileSync(db), old, 'the database as it was before the new release migrated it')
  t.notOk(existsSync(`${db}-wal`), 'nothing the new release wrote beside it is left')
  for (const [u, text] of units) t.same(readFileSync(join(h.root, u)), text, `${u} restored`)
  const calls = h.calls().slice(n)
  const stop = calls.indexOf('systemctl stop quay-redis.service quay-app.service')
  const firstStart = calls.indexOf('systemctl start quay-redis.service quay-app.service')
  t.ok(stop >= 0 && stop < firstStart, 'stopped before the copy and before the new release starts')
  t.same(leftovers(join(h.root, 'var/lib/mirror-registry')), [], 'the rollback copy is gone')
})

t.test('quay: a successful upgrade keeps the migrated database and leaves no copy behind', async (t) => {
  const plan = testPlan()
  const h = await installed(t, plan)
  const db = join(h.root, 'var/lib/mirror-registry/quay-sqlite/quay_sqlite.db')
  writeFileSync(db, 'old schema\n')
  const nb = await nextReleaseBundle(h.base)
  const r = h.run(['upgrade', nb.dir], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.equal(readFileSync(db, 'utf8'), 'old schema\n')
  t.same(leftovers(join(h.root, 'var/lib/mirror-registry')), [])
})

t.test('an upgrade that stops part way (a unit missing from the bundle) rolls back on the way out', async (t) => {
  const plan = testPlan()
  const h = await installed(t, plan)
  const db = join(h.root, 'var/lib/mirror-registry/quay-sqlite/quay_sqlite.db')
  writeFileSync(db, 'old schema\n')
  const units = unitBytes(h, plan)
  const nb = await nextReleaseBundle(h.base)
  rmSync(join(nb.dir, 'files/etc/containers/systemd/quay-app.container'))
  const r = h.run(['upgrade', nb.dir], {}, h.ctl)
  t.equal(r.status, 1, r.out)
  t.match(r.out, /the upgrade stopped part way: rolling back/)
  t.match(r.out, /error: stopped \(exit 1\) at line \d+ of mirror-registryctl \(in rebase_file\)/, 'and what stopped it')
  t.equal(readFileSync(db, 'utf8'), 'old schema\n')
  for (const [u, text] of units) t.same(readFileSync(join(h.root, u)), text, `${u} restored`)
  t.ok(h.calls().filter((c) => c === 'systemctl start quay-redis.service quay-app.service').length >= 1, 'started again')
})

t.test('distribution: its config file comes back on rollback', async (t) => {
  const plan = testPlan({ flavor: 'distribution' })
  t.same(factsOf(plan.host).upgradeKeep, ['/var/lib/mirror-registry/registry/config.yml'])
  const h = await installed(t, plan)
  const cfg = join(h.root, 'var/lib/mirror-registry/registry/config.yml')
  const before = readFileSync(cfg)
  const nb = await nextReleaseBundle(h.base, { flavor: 'distribution' })
  const r = h.run(['upgrade', nb.dir], { FAKE_BROKEN_IMAGE: nb.refs[0]!, FAKE_MIGRATES: cfg }, h.ctl)
  t.equal(r.status, 1, r.out)
  t.same(readFileSync(cfg), before, 'config.yml byte for byte')
})

t.test('upgrade refuses a bundle built for another port or hostname, changing nothing', async (t) => {
  const plan = testPlan()
  const h = await installed(t, plan)
  const other = await nextReleaseBundle(h.base, { port: 9443 })
  const snap = h.snapshot()
  const n = h.calls().length
  let r = h.run(['upgrade', other.dir], {}, h.ctl)
  t.equal(r.status, 1, r.out)
  t.match(
    r.out,
    /was built for registry\.lab\.example:9443, but this registry is registry\.lab\.example:8443 \(its certificate, pull secrets and clients' mirror settings name it\); rebuild the bundle with host\.hostname: registry\.lab\.example and registry\.port: 8443; nothing was changed/,
  )
  const env = join(other.dir, 'bundle.env')
  writeFileSync(
    env,
    readFileSync(env, 'utf8')
      .replace(/^HOSTNAME=.*$/m, 'HOSTNAME=mirror.other.example')
      .replace(/^PORT=.*$/m, 'PORT=8443'),
  )
  r = h.run(['upgrade', other.dir], {}, h.ctl)
  t.equal(r.status, 1, r.out)
  t.match(r.out, /was built for mirror\.other\.example:8443, but this registry is registry\.lab\.example:8443/)
  t.same(h.snapshot(), snap, 'the root is byte for byte as before')
  t.same(
    h
      .calls()
      .slice(n)
      .filter((c) => MUTATING.test(c)),
    [],
    'no image loaded, nothing stopped',
  )
})

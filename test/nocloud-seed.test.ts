// The qcow2's NoCloud user-data read by cloud-init itself: Debian's cloud-init
// (22.4.2 in Debian 12) checks each seed with `cloud-init schema
// --config-file`. Root's password goes in the form the target minor's
// cloud-init reads (builder/media/cloud-init-forms.ts): chpasswd.users from
// cloud-init 22.3 on (RHEL 8.9, 8.10), which passes the check with no
// deprecation; chpasswd.list before (RHEL 8.4-8.8, whose cloud-init has no
// `users`), which the check accepts and flags as deprecated, and nothing else.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import YAML from 'yaml'
import type { RhelMinor } from '../builder/config/types.js'
import { findTool, run } from '../builder/exec.js'
import { CHPASSWD_USERS_SINCE, chpasswdForm, RHEL_CLOUD_INIT } from '../builder/media/cloud-init-forms.js'
import { noCloudSeedFromPlan, renderNoCloud } from '../builder/media/qcow2-host.js'
import { loadFixture } from './hostspec-fixture.js'

const CI = process.env.CI === 'true'
const FIXTURES = new URL('./fixtures/', import.meta.url).pathname
const MINORS = Object.keys(RHEL_CLOUD_INIT) as RhelMinor[]
/** Written out, not derived: what each minor must get. */
const EXPECTED_FORM: Record<RhelMinor, 'list' | 'users'> = {
  '8.4': 'list',
  '8.5': 'list',
  '8.6': 'list',
  '8.7': 'list',
  '8.8': 'list',
  '8.9': 'users',
  '8.10': 'users',
}

const tmp = mkdtempSync(join(tmpdir(), 'nocloud-seed-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

const cloudInit = await findTool('cloud-init')
const noCloudInit = cloudInit ? null : 'cloud-init is not installed (apt-get install cloud-init; .ci/run does)'
if (noCloudInit && CI) t.fail(`${noCloudInit}: under CI=true this test must run`)

/** `cloud-init schema --config-file`: exit code, the keys it calls deprecated, and its whole output. */
async function schemaCheck(userData: string, name: string) {
  const file = join(tmp, name)
  writeFileSync(file, userData)
  const r = await run('cloud-init', ['schema', '--config-file', file], {
    nothrow: true,
    why: 'to check the NoCloud seed with cloud-init’s own schema',
  })
  const out = r.stdout + r.stderr
  return { code: r.code, out, deprecated: [...out.matchAll(/([\w.-]+): DEPRECATED/g)].map((m) => m[1]!) }
}

t.test('the per-minor table: chpasswd.users from cloud-init 22.3 on, list before', async (t) => {
  t.equal(CHPASSWD_USERS_SINCE, '22.3')
  for (const m of MINORS) t.equal(chpasswdForm(m), EXPECTED_FORM[m], `RHEL ${m} (cloud-init ${RHEL_CLOUD_INIT[m]}): ${EXPECTED_FORM[m]}`)
  t.equal(RHEL_CLOUD_INIT['8.4'], '20.3', 'RHEL 8.4 ships cloud-init 20.3')
  t.equal(RHEL_CLOUD_INIT['8.10'], '23.4', 'RHEL 8.10 ships cloud-init 23.4')
})

// static network, a user with password and keys, a key-only user, root with a password
const { plan } = loadFixture(join(FIXTURES, 'ks-static-uefi-fips', 'appliance.yaml'))
const base = noCloudSeedFromPlan(plan)

t.test('each minor gets its form, root’s hash unchanged in it', async (t) => {
  t.equal(base.rhel, plan.config.host.rhel, 'the seed carries the config’s RHEL minor')
  for (const m of MINORS) {
    const y = YAML.parse(renderNoCloud({ ...base, rhel: m })['user-data'])
    if (EXPECTED_FORM[m] === 'users') {
      t.same(
        y.chpasswd,
        { expire: false, users: [{ name: 'root', password: base.rootPasswordHash, type: 'hash' }] },
        `${m}: chpasswd.users`,
      )
    } else {
      t.same(y.chpasswd, { expire: false, list: [`root:${base.rootPasswordHash}`] }, `${m}: chpasswd.list as a YAML list`)
    }
  }
  const locked = YAML.parse(renderNoCloud({ ...base, rootPasswordHash: null, rhel: '8.10' })['user-data'])
  t.equal(locked.chpasswd, undefined, 'root locked: no chpasswd at all')
})

t.test('Debian’s cloud-init schema check on each minor’s seed', { skip: noCloudInit ?? false }, async (t) => {
  const version = (await run('cloud-init', ['--version'], { nothrow: true })).stdout + ''
  t.comment(`checker: ${version.trim()}`)
  // one check per distinct seed (minors with the same form render the same text; each run costs ~1 s)
  const byText = new Map<string, RhelMinor[]>()
  for (const m of MINORS) {
    const text = renderNoCloud({ ...base, rhel: m })['user-data']
    byText.set(text, [...(byText.get(text) ?? []), m])
  }
  t.equal(byText.size, 2, 'two distinct seeds: the list form and the users form')
  for (const [text, minors] of byText) {
    const label = `RHEL ${minors.join(', ')}`
    t.same([...new Set(minors.map((m) => EXPECTED_FORM[m]))], [EXPECTED_FORM[minors[0]!]], `${label}: one form for all of them`)
    const r = await schemaCheck(text, `user-data-${minors[0]}`)
    t.equal(r.code, 0, `${label}: valid cloud-config\n${r.out}`)
    t.match(r.out, 'Valid cloud-config', `${label}: cloud-init says valid`)
    // the list form is what 8.4-8.8 read; a checker that knows users flags it, and must flag nothing else
    t.same(
      r.deprecated,
      EXPECTED_FORM[minors[0]!] === 'users' ? [] : ['chpasswd.list'],
      `${label}: deprecations ${JSON.stringify(r.deprecated)}`,
    )
  }
  const locked = await schemaCheck(
    renderNoCloud({ ...base, rootPasswordHash: null, users: [], rhel: '8.10' })['user-data'],
    'user-data-default',
  )
  t.same([locked.code, locked.deprecated], [0, []], `no users, root locked: valid, nothing deprecated\n${locked.out}`)
})

t.test('the check can fail: a seed cloud-init rejects', { skip: noCloudInit ?? false }, async (t) => {
  const bad = renderNoCloud({ ...base, rhel: '8.10' })['user-data'].replace('expire: false', 'expire: "no"')
  const r = await schemaCheck(bad, 'user-data-bad')
  t.equal(r.code, 1, 'exit 1')
  t.match(r.out, /chpasswd\.expire: 'no' is not of type 'boolean'/, 'names the key and the problem')
})

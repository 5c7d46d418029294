// Issue 19 point 2: every exit of mirror-registryctl says why. Run for real
// under bash against a scratch root with the recording fakes
// (test/helpers/ctl-harness.ts): the installed copy's `install` (no bundle
// beside it), a failure nothing handles (the ERR/EXIT safety net names the
// command and its line), and the exits that explain themselves (die, a
// status report) print no such line.
import t, { type Test } from 'tap'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { testPlan } from './helpers/bundle-fixture.js'
import { ctlHarness, type CtlHarness } from './helpers/ctl-harness.js'

const BUG = /no check caught this failure, which is a bug in mirror-registryctl/
const installed = async (t: Test, flavor: 'quay' | 'distribution' = 'quay'): Promise<CtlHarness & { ctl: string }> => {
  const h = await ctlHarness(testPlan({ flavor }), { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install'])
  if (r.status !== 0) throw new Error(r.out)
  return Object.assign(h, { ctl: join(h.root, 'usr/local/bin/mirror-registryctl') })
}

t.test('the installed /usr/local/bin/mirror-registryctl install (no payload beside it) says what install needs', async (t) => {
  const h = await installed(t)
  t.notOk(existsSync(join(h.root, 'usr/local/bin/payload')), 'no payload beside the installed copy')
  const before = h.snapshot()
  const r = h.run(['install'], {}, h.ctl)
  t.equal(r.status, 1, r.out)
  t.match(
    r.out,
    /preflight: install runs from an extracted bundle: \S+\/usr\/local\/bin has no files\.tsv and files\/ \(tar -xzf mirror-appliance-bundle\.tar\.gz, then run the mirror-registryctl inside it\)/,
  )
  t.match(r.out, /preflight: a registry is installed here already/)
  t.match(r.out, /preflight failed \(\d+ problem\(s\)\); nothing was changed/)
  t.notMatch(r.out, BUG, 'a preflight failure is explained: no safety-net line')
  t.same(h.snapshot(), before, 'nothing changed')
})

t.test('a bundle without its payload: named in preflight, with the other problems', async (t) => {
  const h = await ctlHarness(testPlan(), { teardown: (fn) => t.teardown(fn) })
  const { renameSync } = await import('node:fs')
  renameSync(join(h.bundleDir, 'payload'), join(h.base, 'payload-moved'))
  const r = h.run(['install'], { FAKE_PORT_BUSY: '1' })
  t.equal(r.status, 1, r.out)
  t.match(r.out, /preflight: the bundle has no payload \(\S+\/payload\/SHA256SUMS missing\): extract the whole bundle again/)
  t.match(r.out, /preflight: port 8443\/tcp is in use/, 'reported at once with the others')
  t.notMatch(r.out, BUG)
})

t.test('a failure nothing handles: the safety net names the command, its file and line', async (t) => {
  const h = await installed(t, 'distribution')
  // update-ca-trust fails inside lib.sh's trust_ca (rotate-cert): nothing catches it
  const r = h.run(['rotate-cert', '--days', '30'], { FAKE_FAIL: '^update-ca-trust' }, h.ctl)
  t.equal(r.status, 1, r.out)
  t.match(r.out, /mirror-registryctl: error: stopped \(exit 1\) at line \d+ of lib\.sh \(in trust_ca\): update-ca-trust extract\n/)
  t.match(r.out, BUG)
})

t.test('export with an image that fails to copy: the count of failures, not a silent stop in writing the lists', async (t) => {
  const h = await installed(t, 'distribution')
  const out = join(h.base, 'exported')
  mkdirSync(out)
  const r = h.run(['export', '--to-archive', out], { FAKE_FAIL: '^skopeo copy --quiet --all --preserve-digests' }, h.ctl)
  t.equal(r.status, 1, r.out)
  t.match(r.out, /1 of 1 image\(s\) not exported; run the same command again to retry them/)
  t.notMatch(r.out, BUG)
})

t.test('exits that explain themselves print no safety-net line', async (t) => {
  const h = await installed(t)
  const st = h.run(['status'], { FAKE_INACTIVE: '1' }, h.ctl)
  t.equal(st.status, 1, 'status: exit 1 when something is wrong')
  t.match(st.out, /unit: +quay-app\.service inactive/)
  t.notMatch(st.out, BUG, 'the report is the reason')
  const d = h.run(['backup', '/nonexistent-dir'], {}, h.ctl)
  t.equal(d.status, 1)
  t.match(d.out, /error: \/nonexistent-dir: no such directory/)
  t.notMatch(d.out, BUG)
  const u = h.run(['frobnicate'], {}, h.ctl)
  t.equal(u.status, 2)
  t.notMatch(u.out, BUG)
})

// The OpenShift hand-off additions: ImageTagMirrorSet for content named by a
// tag, the oc-mirror v2 ImageSetConfiguration example, and the registry auth
// merged into a user-given pull secret (0600, the user's entries kept, clear
// errors for a file that is not a pull secret).
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { mergePullSecret, tagMirrorSources, writeOpenshift } from '../builder/openshift.js'
import { testPlan } from './helpers/bundle-fixture.js'

const D = 'sha256:' + 'ab'.repeat(32)
const plan = testPlan({
  extra: `content:
  images:
    - { ref: quay.io/example/app:1.0, digest: ${D}, target: example/app }
    - { ref: 'registry.example.com/tools/jq@${D}', target: tools/jq }
`,
})
const dir = mkdtempSync(join(tmpdir(), 'openshift-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('ImageTagMirrorSet covers the tagged sources only; ImageSetConfiguration lists the content', async (t) => {
  const user = join(dir, 'ps.json')
  writeFileSync(user, JSON.stringify({ auths: { 'quay.io': { auth: 'dXNlcjpwdw==' }, 'registry.lab.example:8443': { auth: 'b2xkOm9sZA==' } } }))
  const out = join(dir, 'openshift')
  writeOpenshift(out, plan, { userPullSecret: user })
  t.same(tagMirrorSources(plan).map((s) => s.source), ['quay.io/example/app'])
  const itms = parse(readFileSync(join(out, 'itms.yaml'), 'utf8'))
  t.equal(itms.kind, 'ImageTagMirrorSet')
  t.equal(itms.apiVersion, 'config.openshift.io/v1')
  t.same(itms.spec.imageTagMirrors, [{ source: 'quay.io/example/app', mirrors: ['registry.lab.example:8443/example/app'] }])
  const idms = parse(readFileSync(join(out, 'idms.yaml'), 'utf8'))
  t.equal(idms.spec.imageDigestMirrors.length, 2, 'digest mirrors for both sources')
  const isc = parse(readFileSync(join(out, 'imageset-config.yaml'), 'utf8'))
  t.equal(isc.kind, 'ImageSetConfiguration')
  t.equal(isc.apiVersion, 'mirror.openshift.io/v2alpha1')
  t.same(isc.mirror.additionalImages, [{ name: `quay.io/example/app@${D}` }, { name: `registry.example.com/tools/jq@${D}` }])
  t.match(readFileSync(join(out, 'imageset-config.yaml'), 'utf8'), /--from file:\/\/\$PWD\/mirror docker:\/\/registry\.lab\.example:8443 --v2/)
  // merged pull secret
  const merged = JSON.parse(readFileSync(join(out, 'pull-secret-merged.json'), 'utf8'))
  t.same(Object.keys(merged.auths).sort(), ['quay.io', 'registry.lab.example:8443'])
  t.equal(merged.auths['quay.io'].auth, 'dXNlcjpwdw==', "the user's entries kept")
  t.equal(Buffer.from(merged.auths['registry.lab.example:8443'].auth, 'base64').toString(), `init:${plan.secrets.initPassword}`, 'ours replaces a stale one')
  t.equal(statSync(join(out, 'pull-secret-merged.json')).mode & 0o777, 0o600)
})

t.test('no content: empty lists, still valid YAML; no user pull secret: no merged file', async (t) => {
  const out = join(dir, 'empty')
  writeOpenshift(out, testPlan())
  t.same(parse(readFileSync(join(out, 'itms.yaml'), 'utf8')).spec.imageTagMirrors, [])
  t.same(parse(readFileSync(join(out, 'idms.yaml'), 'utf8')).spec.imageDigestMirrors, [], 'idms.yaml too (was invalid YAML without content)')
  t.same(parse(readFileSync(join(out, 'imageset-config.yaml'), 'utf8')).mirror.additionalImages, [])
  t.throws(() => readFileSync(join(out, 'pull-secret-merged.json')))
})

t.test('a file that is not a pull secret: UserError naming it, nothing written', async (t) => {
  t.throws(() => mergePullSecret('{nope', plan, 'ps.json'), { name: 'UserError', message: /^ps\.json: not JSON/ })
  t.throws(() => mergePullSecret('{"auth": {}}', plan, 'ps.json'), { message: /ps\.json: has no "auths" object/ })
  t.throws(() => mergePullSecret('[]', plan, 'ps.json'), { message: /has no "auths" object/ })
  const out = join(dir, 'bad')
  t.throws(() => writeOpenshift(out, plan, { userPullSecret: join(dir, 'missing.json') }), { message: /--pull-secret .*missing\.json: cannot read it \(ENOENT\)/ })
  t.throws(() => readFileSync(join(out, 'ca.crt')), 'checked before anything is written')
})

t.test('build --pull-secret FILE writes openshift/pull-secret-merged.json; a missing file is a usage error', async (t) => {
  const { runCli } = await import('./helpers/cli.js')
  const user = join(dir, 'cli-ps.json')
  writeFileSync(user, JSON.stringify({ auths: { 'cloud.openshift.com': { auth: 'eDp5' } } }))
  const out = join(dir, 'dist')
  const r = await runCli(['build', '-o', out, '--no-oemdrv', '--seed', 'cli', '--cache', join(dir, 'nocache'), '--pull-secret', user])
  t.equal(r.code, 0, r.stderr)
  const merged = JSON.parse(readFileSync(join(out, 'openshift/pull-secret-merged.json'), 'utf8'))
  t.ok(merged.auths['cloud.openshift.com'])
  t.equal(Object.keys(merged.auths).length, 2)
  const bad = await runCli(['build', '-o', join(dir, 'dist2'), '--no-oemdrv', '--pull-secret', join(dir, 'nope.json')])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--pull-secret .*nope\.json: no such file/)
})

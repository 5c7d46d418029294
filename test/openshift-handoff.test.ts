// The OpenShift hand-off as OpenShift's own tools read it: ImageDigestMirrorSet
// and ImageTagMirrorSet checked against the CRDs' openAPIV3Schema vendored
// from openshift/api (test/fixtures/openshift-api/) and the install-config
// snippet against the installer's rules (test/helpers/openshift-checks.ts);
// what goes where following oc-mirror v2 (every mirror of a source, docker.io
// names canonical, repo:tag@digest in the tag sets, release components,
// CatalogSource, release signature ConfigMap); a name per host; CRLF-free PEM;
// the ImageSetConfiguration (tags kept, targetRepo); the same bytes in the
// payload (for first boot) as in openshift/; the registry auth merged into a
// user's pull secret.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, parseAllDocuments } from 'yaml'
import { handoffContentFromConfig, handoffContentFromPayload, CATALOG_LABEL } from '../builder/handoff/content.js'
import { formatImage } from '../builder/handoff/refs.js'
import {
  addHandoffToPayload,
  mergePullSecret,
  mirrorSetName,
  openshiftHandoff,
  writeHandoffFromPayload,
  writeOpenshift,
  type HandoffFile,
} from '../builder/openshift.js'
import type { PayloadImage } from '../builder/payload/assemble.js'
import { MEDIA, OciLayout } from '../builder/payload/oci.js'
import type { Plan } from '../builder/plan/types.js'
import { testPlan } from './helpers/bundle-fixture.js'
import { crdValidator, installerErrors, namedRepositoryError } from './helpers/openshift-checks.js'

const FIX = fileURLToPath(new URL('./fixtures/openshift-api/', import.meta.url))
const idmsCrd = crdValidator(join(FIX, '0000_10_config-operator_01_imagedigestmirrorsets.crd.yaml'))
const itmsCrd = crdValidator(join(FIX, '0000_10_config-operator_01_imagetagmirrorsets.crd.yaml'))

const D = 'sha256:' + 'ab'.repeat(32)
const C = 'sha256:' + 'cd'.repeat(32)
const R = 'registry.lab.example:8443'
const plan = testPlan({
  extra: `content:
  images:
    - { ref: quay.io/example/app:1.0, digest: ${D}, target: example/app }
    - { ref: quay.io/example/app:1.0, digest: ${D}, target: mirror/app }
    - { ref: quay.io/example/other:2, target: example/other }
    - { ref: 'registry.example.com/tools/jq@${D}', target: tools/jq }
    - { ref: docker.io/nginx:1.25, digest: ${D} }
    - { ref: 'docker.io/bitnami/redis:7@${D}', target: bitnami/redis }
    - { ref: quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64, target: openshift/release-images }
    - { ref: 'quay.io/openshift-release-dev/ocp-v4.0-art-dev@${C}', target: openshift/release }
    - { ref: registry.redhat.io/redhat/redhat-operator-index:v4.15, digest: ${C}, target: redhat/redhat-operator-index }
`,
})
const dir = mkdtempSync(join(tmpdir(), 'openshift-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const byName = (files: HandoffFile[], name: string) => files.find((f) => f.name === name)?.contents ?? ''
const docs = (text: string) => parseAllDocuments(text).map((d) => d.toJS())
const files = openshiftHandoff(plan)

t.test('ImageDigestMirrorSets: valid against the CRD, one per category, every mirror of a source, canonical docker.io names', async (t) => {
  const sets = docs(byName(files, 'idms.yaml'))
  t.same(
    sets.map((s) => s.metadata.name),
    ['idms-release-registry.lab.example', 'idms-generic-registry.lab.example'],
    'oc-mirror categories, named after this registry',
  )
  for (const s of sets) t.same(idmsCrd(s), [], `${s.metadata.name} is valid against the CRD`)
  const [release, generic] = sets
  t.same(
    release.spec.imageDigestMirrors,
    [
      { source: 'quay.io/openshift-release-dev/ocp-release', mirrors: [`${R}/openshift/release-images`] },
      { source: 'quay.io/openshift-release-dev/ocp-v4.0-art-dev', mirrors: [`${R}/openshift/release`] },
    ],
    'the release (pinned by tag: oc-mirror keeps it, the installer needs it) and its component repository',
  )
  t.same(
    generic.spec.imageDigestMirrors,
    [
      { source: 'docker.io/bitnami/redis', mirrors: [`${R}/bitnami/redis`] },
      { source: 'docker.io/library/nginx', mirrors: [`${R}/nginx`] },
      { source: 'quay.io/example/app', mirrors: [`${R}/example/app`, `${R}/mirror/app`] },
      { source: 'registry.example.com/tools', mirrors: [`${R}/tools`] },
    ],
    'pinned images only; a namespace where the target keeps the path (tools), both targets of app, docker.io/library/nginx; no catalog',
  )
  t.equal(byName(files, 'idms.yaml').includes('redhat-operator-index'), false, 'the catalog gets a CatalogSource, not a mirror')
})

t.test('ImageTagMirrorSets: valid against the CRD; tagged images, with a digest or not', async (t) => {
  const sets = docs(byName(files, 'itms.yaml'))
  for (const s of sets) t.same(itmsCrd(s), [], `${s.metadata.name} is valid against the CRD`)
  t.same(
    sets.map((s) => s.metadata.name),
    ['itms-release-registry.lab.example', 'itms-generic-registry.lab.example'],
  )
  t.same(sets[0].spec.imageTagMirrors, [
    { source: 'quay.io/openshift-release-dev/ocp-release', mirrors: [`${R}/openshift/release-images`] },
  ])
  t.same(
    sets[1].spec.imageTagMirrors,
    [
      { source: 'docker.io/bitnami/redis', mirrors: [`${R}/bitnami/redis`] },
      { source: 'docker.io/library/nginx', mirrors: [`${R}/nginx`] },
      { source: 'quay.io/example', mirrors: [`${R}/example`] },
      { source: 'quay.io/example/app', mirrors: [`${R}/example/app`, `${R}/mirror/app`] },
    ],
    'repo:tag@digest entries are here too (app, nginx, redis), not only tag-only ones (other)',
  )
})

t.test('the checks can fail: a short docker.io name, a reference, a bad name, duplicate mirrors', async (t) => {
  t.match(namedRepositoryError('docker.io/nginx'), /invalid host/, 'the installer refuses docker.io/nginx')
  t.match(namedRepositoryError('docker.io/library'), /invalid host/, 'and docker.io/<one component>')
  t.match(namedRepositoryError('quay.io/x/app:1.0'), /must be repository--not reference/)
  t.equal(namedRepositoryError('registry.lab.example:8443'), null, 'a bare host:port mirror is accepted')
  t.equal(namedRepositoryError('docker.io/library/nginx'), null)
  const good = docs(byName(files, 'idms.yaml'))[1]
  const bad = structuredClone(good)
  bad.metadata.name = 'Mirror_Appliance'
  bad.spec.imageDigestMirrors[0].source = 'quay.io/Example/App'
  bad.spec.imageDigestMirrors[0].mirrors = ['a.example/x', 'a.example/x']
  const errors = idmsCrd(bad).join('\n')
  t.match(errors, /\/spec\/imageDigestMirrors\/0\/source must match pattern/)
  t.match(errors, /\/spec\/imageDigestMirrors\/0\/mirrors must pass "x-kubernetes-list-type" keyword validation/)
  t.match(errors, /metadata\.name "Mirror_Appliance" is not a DNS-1123 subdomain/)
})

t.test('install-config snippet: accepted by the installer, every digest mirror, CRLF-free PEM', async (t) => {
  const snippet = parse(byName(files, 'install-config-snippet.yaml'))
  t.same(installerErrors(snippet), [], 'the installer accepts it')
  t.same(
    snippet.imageDigestSources.map((s: { source: string }) => s.source),
    [
      'docker.io/bitnami/redis',
      'docker.io/library/nginx',
      'quay.io/example/app',
      'quay.io/openshift-release-dev/ocp-release',
      'quay.io/openshift-release-dev/ocp-v4.0-art-dev',
      'registry.example.com/tools',
    ],
  )
  const lf = plan.pki.caCertPem.replace(/\r\n/g, '\n').trim() + '\n'
  t.equal(snippet.additionalTrustBundle, lf, 'the CA, as PEM with LF line ends')

  // node-forge writes PEM with CRLF (and so may a provided CA file): none of it reaches the snippet.
  t.ok(plan.pki.caCertPem.includes('\r\n'), 'the generated CA PEM has CRLF line ends')
  t.notOk(byName(files, 'install-config-snippet.yaml').includes('\r'), 'no CR in the snippet')
  const lfPlan: Plan = { ...plan, pki: { ...plan.pki, caCertPem: lf } }
  t.equal(
    byName(openshiftHandoff(lfPlan), 'install-config-snippet.yaml'),
    byName(files, 'install-config-snippet.yaml'),
    'the same snippet from an LF PEM',
  )
})

t.test('a name per host: the mirror sets of a fleet can be applied to one cluster side by side', async (t) => {
  const other: Plan = { ...plan, config: { ...plan.config, host: { ...plan.config.host, hostname: 'mirror-b.lab.example' } } }
  const a = docs(byName(files, 'idms.yaml')).map((d) => d.metadata.name)
  const b = docs(byName(openshiftHandoff(other), 'idms.yaml')).map((d) => d.metadata.name)
  t.same(b, ['idms-release-mirror-b.lab.example', 'idms-generic-mirror-b.lab.example'])
  t.same(
    a.filter((n) => b.includes(n)),
    [],
    'no name in common',
  )
  t.equal(mirrorSetName('idms', 'generic', 'a'.repeat(250)).length <= 253, true, 'a long host name still gives a valid name')
})

t.test('CatalogSource for the operator catalog, as oc-mirror names and fills it', async (t) => {
  const cs = parse(byName(files, 'cs-redhat-operator-index-v4-15.yaml'))
  t.same(cs, {
    apiVersion: 'operators.coreos.com/v1alpha1',
    kind: 'CatalogSource',
    metadata: {
      annotations: { createdAt: '2023-11-14T22:13:20Z', createdBy: 'mirror-appliance' },
      name: 'cs-redhat-operator-index-v4-15',
      namespace: 'openshift-marketplace',
    },
    spec: { image: `${R}/redhat/redhat-operator-index:v4.15`, sourceType: 'grpc' },
  })
})

t.test('ImageSetConfiguration: repo:tag@digest with tags kept, targetRepo where the target is not the source path', async (t) => {
  const isc = parse(byName(files, 'imageset-config.yaml'))
  t.equal(isc.kind, 'ImageSetConfiguration')
  t.equal(isc.apiVersion, 'mirror.openshift.io/v2alpha1')
  t.same(isc.mirror.additionalImages, [
    { name: `quay.io/example/app:1.0@${D}` },
    { name: `quay.io/example/app:1.0@${D}`, targetRepo: 'mirror/app' },
    { name: 'quay.io/example/other:2' },
    { name: `registry.example.com/tools/jq@${D}` },
    { name: `docker.io/library/nginx:1.25@${D}`, targetRepo: 'nginx' },
    { name: `docker.io/bitnami/redis:7@${D}` },
    { name: 'quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64', targetRepo: 'openshift/release-images' },
    { name: `quay.io/openshift-release-dev/ocp-v4.0-art-dev@${C}`, targetRepo: 'openshift/release' },
    { name: `registry.redhat.io/redhat/redhat-operator-index:v4.15@${C}` },
  ])
  t.match(byName(files, 'imageset-config.yaml'), /--from file:\/\/\$PWD\/mirror docker:\/\/registry\.lab\.example:8443 --v2/)
})

t.test('from a payload: catalog by its label, oc-mirror content by its repository, release signatures into the ConfigMap', async (t) => {
  const payloadDir = join(dir, 'payload')
  const layout = await OciLayout.open(join(payloadDir, 'oci'))
  // A catalog image whose repository says nothing: its label does.
  const cfg = await layout.putBlobBytes(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { [CATALOG_LABEL]: '/configs' } },
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  )
  const manifest = await layout.putBlobBytes(
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, ...cfg }, layers: [] }),
  )
  await layout.setEntry('content/ops/my-catalog:v1', { mediaType: MEDIA.ociManifest, ...manifest })
  mkdirSync(join(payloadDir, 'release-signatures'))
  const sig = Buffer.from('\x89PGP signature bytes')
  const hex = 'ef'.repeat(32)
  writeFileSync(join(payloadDir, 'release-signatures', `4.15.0-x86_64-sha256-${hex}`), sig)
  writeFileSync(join(payloadDir, 'release-signatures', 'README'), 'not a signature')
  const img = (o: Partial<PayloadImage> & Pick<PayloadImage, 'ociName' | 'target' | 'digest'>): PayloadImage => ({
    role: 'content',
    sourceRef: '/archives/run1',
    size: 1,
    platforms: [],
    ...o,
  })
  const images = [
    img({
      ociName: 'content/ops/my-catalog:v1',
      target: 'ops/my-catalog',
      tag: 'v1',
      digest: manifest.digest,
    }),
    img({
      ociName: 'content/openshift/release-images:4.15.0-x86_64',
      target: 'openshift/release-images',
      tag: '4.15.0-x86_64',
      digest: `sha256:${hex}`,
    }),
    img({ ociName: 'content/openshift/release:4.15.0-x86_64-etcd', target: 'openshift/release', tag: '4.15.0-x86_64-etcd', digest: C }),
    img({ ociName: 'content/ubi8/ubi:latest', target: 'ubi8/ubi', tag: 'latest', digest: D }),
  ]
  const content = await handoffContentFromPayload(testPlan().config, images, payloadDir)
  t.same(
    content.images.map((i) => [i.kind, i.origin && formatImage(i.origin)]),
    [
      ['operator-catalog', undefined],
      ['release', 'quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64'],
      ['release-component', `quay.io/openshift-release-dev/ocp-v4.0-art-dev@${C}`],
      ['generic', undefined],
    ],
    "the catalog by its label (no origin needed for a CatalogSource), the release and its component by oc-mirror's repositories",
  )
  t.notMatch(content.warnings.join('\n'), /my-catalog/, 'a catalog without origin is not warned about')
  t.match(
    content.warnings.join('\n'),
    /content\/ubi8\/ubi:latest: no origin is known for it/,
    'an image without origin is named, not guessed',
  )
  t.match(content.warnings.join('\n'), /release-signatures\/README .* not named <tag>-sha256-<hex>/)

  const out = join(dir, 'from-payload')
  const handoff = openshiftHandoff(testPlan(), content)
  writeOpenshift(out, testPlan(), { files: handoff })
  t.ok(statSync(join(out, 'cs-my-catalog-v1.yaml')).isFile(), 'a CatalogSource for the labelled catalog')
  const json = JSON.parse(readFileSync(join(out, 'signature-configmap.json'), 'utf8'))
  t.same(json, {
    kind: 'ConfigMap',
    apiVersion: 'v1',
    metadata: {
      name: 'mirrored-release-signatures',
      namespace: 'openshift-config-managed',
      labels: { 'release.openshift.io/verification-signatures': '' },
      annotations: { createdAt: '2023-11-14T22:13:20Z', createdBy: 'mirror-appliance' },
    },
    binaryData: { [`sha256-${hex}-1`]: sig.toString('base64') },
  })
  t.same(parse(readFileSync(join(out, 'signature-configmap.yaml'), 'utf8')), json, 'the YAML says the same')
  t.same(Buffer.from(json.binaryData[`sha256-${hex}-1`], 'base64'), sig, 'the signature bytes, unchanged')
  const idms = docs(readFileSync(join(out, 'idms.yaml'), 'utf8'))
  t.same(
    idms.map((d) => [d.metadata.name, d.spec.imageDigestMirrors.map((e: { source: string }) => e.source)]),
    [
      [
        'idms-release-registry.lab.example',
        ['quay.io/openshift-release-dev/ocp-release', 'quay.io/openshift-release-dev/ocp-v4.0-art-dev'],
      ],
    ],
  )
})

t.test('the build writes openshift/ and the payload the same bytes; SHA256SUMS lists them', async (t) => {
  const payloadDir = join(dir, 'payload2')
  mkdirSync(payloadDir)
  writeFileSync(join(payloadDir, 'images.tsv'), '')
  writeFileSync(join(payloadDir, 'SHA256SUMS'), `${'0'.repeat(64)}  images.tsv\n`)
  const out = join(dir, 'dist2')
  const warnings = await writeHandoffFromPayload({ outDir: out, plan, payload: { images: [] }, payloadDir })
  t.same(warnings, [])
  const onHost = join(payloadDir, 'openshift', 'registry.lab.example')
  const names = readdirSync(onHost).sort()
  t.same(
    names,
    ['ca.crt', 'idms.yaml', 'imageset-config.yaml', 'install-config-snippet.yaml', 'itms.yaml'],
    'no pull secret in the payload',
  )
  for (const n of names) t.same(readFileSync(join(onHost, n)), readFileSync(join(out, n)), `${n}: same bytes`)
  t.equal(statSync(join(out, 'pull-secret.json')).mode & 0o777, 0o600)
  const sums = readFileSync(join(payloadDir, 'SHA256SUMS'), 'utf8')
  t.match(sums, /^0{64} {2}images\.tsv\n/, 'earlier lines kept')
  await addHandoffToPayload(payloadDir, 'registry.lab.example', openshiftHandoff(plan, { images: [], signatures: [], warnings: [] }))
  t.equal(readFileSync(join(payloadDir, 'SHA256SUMS'), 'utf8'), sums, 'writing it again changes nothing')
  const check = spawnSync('sha256sum', ['--strict', '-c', '-'], {
    cwd: payloadDir,
    input: sums.split('\n').slice(1).join('\n'),
    encoding: 'utf8',
  })
  t.equal(check.status, 0, `sha256sum -c accepts the hand-off lines: ${check.stderr}`)
})

t.test('no content: empty mirror sets, still valid; the config-only content warns about a release without components', async (t) => {
  const empty = openshiftHandoff(testPlan())
  const idms = docs(byName(empty, 'idms.yaml'))
  t.same(
    idms.map((d) => d.spec.imageDigestMirrors),
    [[]],
  )
  t.same(idmsCrd(idms[0]), [])
  t.same(
    docs(byName(empty, 'itms.yaml')).map((d) => d.spec.imageTagMirrors),
    [[]],
  )
  t.same(parse(byName(empty, 'imageset-config.yaml')).mirror.additionalImages, [])
  t.notMatch(byName(empty, 'install-config-snippet.yaml'), /^imageDigestSources:/m)
  const releaseOnly = testPlan({ extra: `content:\n  images:\n    - { ref: quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64 }\n` })
  t.match(
    handoffContentFromConfig(releaseOnly.config).warnings.join('\n'),
    /is a release image, but none of its component images .* is on the appliance/,
  )
  t.same(handoffContentFromConfig(plan.config).warnings, [], 'not when the components are there')
})

t.test("a user pull secret: merged, 0600, the user's entries kept; not a pull secret: UserError naming it, nothing written", async (t) => {
  const user = join(dir, 'ps.json')
  writeFileSync(user, JSON.stringify({ auths: { 'quay.io': { auth: 'dXNlcjpwdw==' }, [R]: { auth: 'b2xkOm9sZA==' } } }))
  const out = join(dir, 'openshift')
  writeOpenshift(out, plan, { userPullSecret: user })
  const merged = JSON.parse(readFileSync(join(out, 'pull-secret-merged.json'), 'utf8'))
  t.same(Object.keys(merged.auths).sort(), ['quay.io', R])
  t.equal(merged.auths['quay.io'].auth, 'dXNlcjpwdw==', "the user's entries kept")
  t.equal(Buffer.from(merged.auths[R].auth, 'base64').toString(), `init:${plan.secrets.initPassword}`, 'ours replaces a stale one')
  t.equal(statSync(join(out, 'pull-secret-merged.json')).mode & 0o777, 0o600)
  t.throws(() => mergePullSecret('{nope', plan, 'ps.json'), { name: 'UserError', message: /^ps\.json: not JSON/ })
  t.throws(() => mergePullSecret('{"auth": {}}', plan, 'ps.json'), { message: /ps\.json: has no "auths" object/ })
  t.throws(() => mergePullSecret('[]', plan, 'ps.json'), { message: /has no "auths" object/ })
  const bad = join(dir, 'bad')
  t.throws(() => writeOpenshift(bad, plan, { userPullSecret: join(dir, 'missing.json') }), {
    message: /--pull-secret .*missing\.json: cannot read it \(ENOENT\)/,
  })
  t.throws(() => readFileSync(join(bad, 'ca.crt')), 'checked before anything is written')
})

t.test(
  'build: the media carry the hand-off of openshift/, same bytes; --pull-secret FILE merged; a missing file is a usage error',
  async (t) => {
    const { runCli } = await import('./helpers/cli.js')
    const user = join(dir, 'cli-ps.json')
    writeFileSync(user, JSON.stringify({ auths: { 'cloud.openshift.com': { auth: 'eDp5' } } }))
    const out = join(dir, 'dist')
    const r = await runCli([
      'build',
      '-o',
      out,
      '--no-oemdrv',
      '--bundle',
      '--seed',
      'cli',
      '--cache',
      join(dir, 'nocache'),
      '--pull-secret',
      user,
    ])
    t.equal(r.code, 0, r.stderr)
    const merged = JSON.parse(readFileSync(join(out, 'openshift/pull-secret-merged.json'), 'utf8'))
    t.ok(merged.auths['cloud.openshift.com'])
    t.equal(Object.keys(merged.auths).length, 2)
    // The bundle's payload, as mirror-registryctl install puts it on the host for first boot.
    const x = join(dir, 'bundle-x')
    mkdirSync(x)
    const tar = spawnSync('tar', ['-xzf', join(out, 'mirror-appliance-bundle.tar.gz'), '-C', x], { encoding: 'utf8' })
    t.equal(tar.status, 0, tar.stderr)
    const payload = join(x, 'mirror-appliance-bundle/payload')
    const host = readdirSync(join(payload, 'openshift'))
    t.same(host, ['mirror.example.internal'], 'one hand-off, for the demo host')
    const carried = readdirSync(join(payload, 'openshift', host[0]!)).sort()
    t.same(
      carried,
      readdirSync(join(out, 'openshift'))
        .filter((n) => !n.startsWith('pull-secret'))
        .sort(),
      'every file of openshift/ but the pull secrets',
    )
    for (const n of carried)
      t.same(readFileSync(join(payload, 'openshift', host[0]!, n)), readFileSync(join(out, 'openshift', n)), `${n}: same bytes`)
    const check = spawnSync('sha256sum', ['--quiet', '--strict', '-c', 'SHA256SUMS'], { cwd: payload, encoding: 'utf8' })
    t.equal(check.status, 0, `the payload's SHA256SUMS covers them: ${check.stderr}`)
    t.match(readFileSync(join(payload, 'SHA256SUMS'), 'utf8'), /  openshift\/mirror\.example\.internal\/idms\.yaml\n/)
    const bad = await runCli(['build', '-o', join(dir, 'dist2'), '--no-oemdrv', '--pull-secret', join(dir, 'nope.json')])
    t.equal(bad.code, 2)
    t.match(bad.stderr, /--pull-secret .*nope\.json: no such file/)
  },
)

t.test('fleet build: each host its own hand-off, mirror set names that do not collide, all of them in the shared payload', async (t) => {
  const { runCli } = await import('./helpers/cli.js')
  const fixture = fileURLToPath(new URL('./fixtures/fleet-3/appliance.yaml', import.meta.url))
  const out = join(dir, 'fleet')
  const r = await runCli(['build', '-c', fixture, '-o', out, '--allow-missing', '--cache', join(dir, 'nocache'), '--seed', 'fleet'], {
    env: { SOURCE_DATE_EPOCH: '1700000000' },
  })
  t.equal(r.code, 0, r.stderr)
  const hosts = ['mirror-a.lab.example', 'mirror-b.lab.example', 'mirror-c.lab.example']
  const names = hosts.map((h) => docs(readFileSync(join(out, 'hosts', h, 'openshift/idms.yaml'), 'utf8')).map((d) => d.metadata.name))
  t.same(
    names,
    hosts.map((h) => [`idms-generic-${h}`]),
  )
  const x = join(dir, 'fleet-payload')
  const iso = spawnSync('xorriso', ['-osirrox', 'on', '-indev', join(out, 'payload.iso'), '-extract', '/appliance', x], {
    encoding: 'utf8',
  })
  t.equal(iso.status, 0, iso.stderr)
  t.same(readdirSync(join(x, 'openshift')).sort(), hosts, "payload.iso carries every host's hand-off")
  for (const h of hosts)
    t.same(
      readFileSync(join(x, 'openshift', h, 'idms.yaml')),
      readFileSync(join(out, 'hosts', h, 'openshift/idms.yaml')),
      `${h}: same bytes`,
    )
})

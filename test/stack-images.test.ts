// registry.images: stack images chosen by the site instead of the lock's.
// One resolved stack (resolveStack: lock + overrides) feeds the host spec's
// quadlets, the plan (and so mirror-registryctl and first boot), the payload
// and validate's look into the cache; a config without overrides resolves to
// exactly the lock.
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { factsOf } from '../builder/registry/facts.js'
import { stackOverrideWarnings } from '../builder/commands/validate.js'
import { formatDiagnostic } from '../builder/config/diagnostics.js'
import { UserError } from '../builder/errors.js'
import { EXAMPLE_PATH, loadConfigText } from '../builder/config/load.js'
import { assemblePayload, findInCache } from '../builder/payload/assemble.js'
import { importArchive } from '../builder/payload/import.js'
import { loadStackLock, pinnedRef, resolveStack, STACK_ROLES } from '../builder/payload/lock.js'
import { OciLayout } from '../builder/payload/oci.js'
import { planAppliance } from '../builder/plan/plan.js'
import { registryHostSpec } from '../builder/registry/hostspec.js'
import { sampleImages, writeLayout } from './helpers/oci-fixtures.js'

const D1 = 'sha256:' + '1'.repeat(64)
const D2 = 'sha256:' + '2'.repeat(64)
const load = (yaml: string) => loadConfigText(yaml, 'appliance.yaml', { baseDir: '/cfg' })
const HEAD = 'apiVersion: mirror-appliance/v1\nhost:\n  disk:\n    device: vda\n'

t.test("the lock files list exactly each flavor's roles", async (t) => {
  for (const flavor of ['quay', 'distribution'] as const)
    t.same(
      loadStackLock(flavor).images.map((i) => i.name),
      STACK_ROLES[flavor],
    )
})

t.test('good configs: registry.images normalized; none given, none in the config and the stack is the lock', async (t) => {
  const plain = load(HEAD)
  t.equal(plain.config.registry.images, undefined)
  t.strictSame(resolveStack(plain.config), loadStackLock('quay').images, 'no overrides: exactly the lock')

  const d = load(
    `${HEAD}registry:\n  flavor: distribution\n  images:\n    registry:\n      ref: registry.example.com/ops/registry:2.8.3\n      digest: ${D1}\n`,
  )
  t.strictSame(d.warnings, [])
  t.same(d.config.registry.images, { registry: { ref: 'registry.example.com/ops/registry:2.8.3', digest: D1 } })
  t.same(resolveStack(d.config), [
    {
      name: 'registry',
      ref: 'registry.example.com/ops/registry:2.8.3',
      digest: D1,
      ociName: 'stack/registry',
      verified: true,
      source: 'config: registry.images.registry',
      override: true,
    },
  ])

  // Flavor quay, only Quay replaced: Redis stays the lock's.
  const q = load(`${HEAD}registry:\n  images:\n    quay: {ref: registry.redhat.io/quay/quay-rhel8:v3.12.1, digest: ${D2}}\n`)
  const stack = resolveStack(q.config)
  t.same(
    stack.map((s) => [s.name, s.ociName, pinnedRef(s), !!s.override]),
    [
      ['quay', 'stack/quay', `registry.redhat.io/quay/quay-rhel8@${D2}`, true],
      ['redis', 'stack/redis', pinnedRef(loadStackLock('quay').images[1]!), false],
    ],
  )
  // An empty mapping is no override.
  t.equal(load(`${HEAD}registry:\n  images: {}\n`).config.registry.images, undefined)
})

t.test('example.yaml: the commented registry.images example, uncommented, is a valid config', async (t) => {
  const text = readFileSync(EXAMPLE_PATH, 'utf8')
  const lines = text.split('\n')
  const start = lines.findIndex((l) => /^ {2}# images:$/.test(l))
  t.ok(start > 0, 'the example is there')
  let end = start
  while (/^ {2}# {1,}\S/.test(lines[end + 1] ?? '')) end++
  const uncommented = [
    ...lines.slice(0, start),
    ...lines.slice(start, end + 1).map((l) => l.replace(/^ {2}# /, '  ').replace('sha256:<64 hex digits>', D1)),
    ...lines.slice(end + 1),
  ]
  const l = load(uncommented.join('\n'))
  t.same(Object.keys(l.config.registry.images ?? {}).sort(), ['quay', 'redis'])
  t.same(
    resolveStack(l.config).map((s) => s.ref),
    ['registry.redhat.io/quay/quay-rhel8:v3.12.1', 'registry.redhat.io/rhel8/redis-6:1-190'],
  )
})

t.test('host spec, plan, mirror-registryctl: the quadlets run the override, by digest', async (t) => {
  const d = load(
    `${HEAD}registry:\n  flavor: distribution\n  images:\n    registry: {ref: registry.example.com/ops/registry:2.8.3, digest: ${D1}}\n`,
  )
  const { plan } = planAppliance(d, { epoch: 1700000000, seed: 'stack-images' })
  const pinned = `registry.example.com/ops/registry@${D1}`
  t.same(plan.stack.map(pinnedRef), [pinned], 'the plan carries the resolved stack')
  const unit = plan.host.files.find((f) => f.path === '/etc/containers/systemd/registry.container')!
  t.match(String(unit.contents), new RegExp(`^Image=${pinned.replace(/[./]/g, '\\$&')}$`, 'm'))
  t.same(factsOf(plan.host).stackRefs, [pinned], 'the host facts name the same image')
  // first boot and mirror-registryctl read STACK_REFS from the one facts file they both source
  const checking = plan.host.files.filter((f) => String(f.contents).includes('STACK_REFS=('))
  t.same(
    checking.map((f) => f.path),
    ['/etc/mirror-appliance/host.env'],
    'one file names the stack images for the scripts',
  )
  t.match(String(checking[0]?.contents), `STACK_REFS=('${pinned}')`, 'the facts name the override')
  for (const p of ['/usr/local/libexec/mirror-appliance/firstboot', '/usr/local/bin/mirror-registryctl'])
    t.match(String(plan.host.files.find((f) => f.path === p)?.contents), /"\$\{STACK_REFS\[@\]\}"/, `${p} checks the images the facts name`)
  for (const f of plan.host.files)
    t.notMatch(String(f.contents), /docker\.io\/library\/registry/, `${f.path}: the lock's image is not named`)

  // Quay flavor with a Quay override: quay-app changes, quay-redis does not.
  const q = load(`${HEAD}registry:\n  images:\n    quay: {ref: registry.redhat.io/quay/quay-rhel8:v3.12.1, digest: ${D2}}\n`)
  const qp = planAppliance(q, { epoch: 1700000000, seed: 'stack-images' }).plan
  const image = (name: string) =>
    /^Image=(.*)$/m.exec(String(qp.host.files.find((f) => f.path === `/etc/containers/systemd/${name}.container`)!.contents))![1]
  t.equal(image('quay-app'), `registry.redhat.io/quay/quay-rhel8@${D2}`)
  t.equal(image('quay-redis'), pinnedRef(loadStackLock('quay').images[1]!))

  // registryHostSpec resolves the same stack by itself when not given one.
  const alone = registryHostSpec({ config: d.config, secrets: plan.secrets, pki: plan.pki })
  t.same(
    alone.files.map((f) => [f.path, String(f.contents)]).filter(([p]) => p!.endsWith('.container')),
    plan.host.files.map((f) => [f.path, String(f.contents)]).filter(([p]) => p!.endsWith('.container')),
  )
})

t.test('payload: an index imported with --name REF is the stack image; images.tsv names the override repo', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stack-images-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const imgs = sampleImages()
  const src = join(dir, 'src')
  await writeLayout(src, [{ name: 'latest', root: imgs.multi, images: [imgs.amd, imgs.arm] }])
  const cache = join(dir, 'cache')
  const ref = 'localhost/x/registry:2.8-standin'
  const imported = await importArchive({ cacheDir: cache, path: src, name: ref })
  t.same(
    imported.map((i) => [i.ociName, i.digest]),
    [[ref, imgs.multi.digest]],
    'the index digest is kept',
  )

  const cfg = load(`${HEAD}registry:\n  flavor: distribution\n  images:\n    registry: {ref: ${ref}, digest: ${imgs.multi.digest}}\n`)
  // Not found under the lock's name with another digest, found by ref; and by digest under any name.
  const entries = await (await OciLayout.open(cache)).entries()
  const want = { role: 'stack' as const, ociName: 'stack/registry', ref, digest: imgs.multi.digest }
  t.equal(findInCache(entries, want)?.digest, imgs.multi.digest, 'found by ref')
  t.equal(
    findInCache(entries, { ...want, ref: 'elsewhere.example.com/registry:1' })?.digest,
    imgs.multi.digest,
    'a stack image is found by its digest too',
  )
  t.equal(findInCache(entries, { ...want, digest: D1 }), undefined, 'another digest is not it')
  t.equal(
    findInCache(entries, { ...want, role: 'content', ref: 'elsewhere.example.com/registry:1' }),
    undefined,
    'content images are not matched by digest alone',
  )

  t.same(await stackOverrideWarnings(cfg, cache), [], 'validate: no warning, it is in the cache')
  const empty = join(dir, 'empty-cache')
  const w = await stackOverrideWarnings(cfg, empty, 'appliance.yaml')
  t.same(
    w.map((d) => formatDiagnostic(d, { caret: false })),
    [
      `appliance.yaml:8:5 warning: registry.images.registry: ${ref}@${imgs.multi.digest} is not in the image cache ${empty}; a build refuses to go without it (unless --allow-missing). ` +
        `Import an archive of it: mirror-appliance images import ARCHIVE --name ${ref} --cache ${empty}, or fetch it on a connected machine: mirror-appliance images fetch -c appliance.yaml --stack-only --cache ${empty}`,
    ],
  )

  const out = join(dir, 'payload')
  const r = await assemblePayload({ cacheDir: cache, stack: resolveStack(cfg.config), content: [], outDir: out })
  t.same(r.missing, [])
  t.equal(readFileSync(join(out, 'images.tsv'), 'utf8'), `stack\tstack/registry\t${imgs.multi.digest}\tlocalhost/x/registry\t2.8-standin\n`)
  const index = JSON.parse(readFileSync(join(out, 'oci', 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations: Record<string, string> }[]
  }
  t.same(
    index.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m.digest]),
    [['stack/registry', imgs.multi.digest]],
  )
  t.same(
    r.images.map((i) => [i.role, i.sourceRef, i.digest, i.target, i.platforms.sort()]),
    [['stack', ref, imgs.multi.digest, 'localhost/x/registry', ['linux/amd64', 'linux/arm64']]],
  )

  // Without the image: the build's refusal names the config field and the import command.
  const refused = await assemblePayload({
    cacheDir: empty,
    stack: resolveStack(cfg.config),
    content: [],
    outDir: join(dir, 'p2'),
    configPath: 'appliance.yaml',
  }).then(
    () => undefined,
    (e: unknown) => e as UserError,
  )
  t.ok(refused instanceof UserError, 'refused as a user error')
  t.match(refused?.message, `stack image stack/registry (${ref}@${imgs.multi.digest}), named by the config's registry.images.registry`)
  t.match(refused?.hint, `mirror-appliance images import ARCHIVE --name ${ref} --cache ${empty}`)
})

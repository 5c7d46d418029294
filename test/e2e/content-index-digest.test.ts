// Digests survive (issue 16, point 4): a multi-arch content image pinned by
// its INDEX digest, with the default content.architecture (amd64), must stay
// pullable from the appliance by that digest. Against real registries
// (Debian's docker-registry, distribution 2.8: the program of the
// distribution flavor's registry:2.8.3) and the real skopeo:
//   upstream ──images fetch──▶ cache ──assemble──▶ payload ──first boot──▶ mirror
// where first boot is the generated script itself, run against a scratch root
// holding the host's files, its push-content step for real (the steps before
// it, which need podman and systemd, recorded as done), which also installs
// the build's OpenShift hand-off. Then the pinned reference, rewritten by the
// idms.yaml first boot installed, is read with `skopeo inspect/copy`, as a
// node pulling it does. Also: a sparse index (the index without
// all of its images) is refused by this registry, which is why the whole index
// is kept; and a cache narrowed by an older fetch is refused, not pushed.
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { spawnSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { loadConfigText } from '../../builder/config/load.js'
import { assemblePayload } from '../../builder/payload/assemble.js'
import { imagesToFetch } from '../../builder/payload/cli.js'
import { fetchImages, type FetchProgress } from '../../builder/payload/fetch.js'
import { planAppliance } from '../../builder/plan/plan.js'
import { FIRSTBOOT_SCRIPT, FIRSTBOOT_STATE_DIR, OPENSHIFT_OUT_DIR, PAYLOAD_DIR } from '../../builder/registry/layout.js'
import { writeHandoffFromPayload } from '../../builder/openshift.js'
import { sampleImages, sha, writeLayout } from '../helpers/oci-fixtures.js'
import { skopeo, startRegistry } from '../helpers/registry.js'

const upstream = await startRegistry()
t.teardown(() => upstream.stop())
const mirror = await startRegistry()
t.teardown(() => mirror.stop())
const work = await mkdtemp(join(tmpdir(), 'ma-index-digest-'))
t.teardown(() => rm(work, { recursive: true, force: true }))

const imgs = sampleImages()
await writeLayout(join(work, 'src'), [{ name: 'multi', root: imgs.multi, images: [imgs.amd, imgs.arm] }])
const seeded = skopeo([
  'copy',
  '--all',
  '--preserve-digests',
  '--dest-tls-verify=false',
  `oci:${join(work, 'src')}:multi`,
  `docker://${upstream.host}/example/app:1.0`,
])
if (seeded.status !== 0) throw new Error(`seeding the upstream registry: ${seeded.stderr}`)

const INDEX = imgs.multi.digest
// The appliance's registry is the mirror: first boot pushes to HOSTNAME:PORT.
const mirrorPort = mirror.host.split(':')[1]
const loaded = loadConfigText(
  `apiVersion: mirror-appliance/v1
host: { hostname: localhost, disk: { device: vda } }
registry: { flavor: distribution, port: ${mirrorPort} }
content:
  images:
    - { ref: '${upstream.host}/example/app:1.0', digest: '${INDEX}', target: example/app }
`,
  'index-digest.yaml',
  { baseDir: work },
)
const config = loaded.config
const contentOnly = imagesToFetch(config).filter((i) => i.ociName.startsWith('content/'))

t.test('the default architecture is amd64 and the content image is pinned by its index digest', async (t) => {
  t.equal(config.content.architecture, 'amd64')
  t.same(
    contentOnly.map((i) => [i.digest, i.keepPinnedIndex]),
    [[INDEX, true]],
  )
})

/** The host's files under a scratch root, as the installer leaves them, for the generated first-boot script. */
async function scratchHost(root: string) {
  const { plan } = planAppliance(loaded, { epoch: 1_700_000_000, seed: 'index-digest' })
  for (const d of plan.host.dirs) await mkdir(join(root, d.path), { recursive: true, mode: d.mode })
  for (const f of plan.host.files) {
    await mkdir(dirname(join(root, f.path)), { recursive: true })
    await writeFile(join(root, f.path), f.contents)
    await chmod(join(root, f.path), f.mode)
  }
  return plan
}

t.test('fetch → payload → first boot pushes it → the mirror serves the pinned index digest', async (t) => {
  const cacheDir = join(work, 'cache')
  const events: FetchProgress[] = []
  const [fetched] = await fetchImages({
    cacheDir,
    images: contentOnly,
    architecture: config.content.architecture,
    tlsVerify: false,
    onProgress: (e) => events.push(e),
  })
  t.equal(fetched!.digest, INDEX, 'the cache holds the index, not its amd64 image')
  const note = events.find((e) => e.phase === 'note')
  t.match(
    note && 'message' in note ? note.message : '',
    new RegExp(`keeping all 2 manifests of the index, not only linux/amd64 \\(${imgs.amd.manifest.digest}\\)`),
    'the user is told why, and which digest to pin for amd64 only',
  )
  const [again] = await fetchImages({ cacheDir, images: contentOnly, architecture: 'amd64', tlsVerify: false })
  t.equal(again!.skipped, true, 'a second fetch finds it complete')

  // The payload where the installer puts it on the host.
  const root = join(work, 'root')
  const plan = await scratchHost(root)
  const out = join(root, PAYLOAD_DIR)
  const payload = await assemblePayload({ cacheDir, stack: [], content: config.content.images, outDir: out })
  t.same(payload.images[0]!.platforms, ['linux/amd64', 'linux/arm64'])
  const [role, , digest, repo, tag] = (await readFile(join(out, 'images.tsv'), 'utf8')).trim().split('\t')
  t.same(
    [role, digest, repo, tag],
    ['content', INDEX, 'example/app', '1.0'],
    'images.tsv: first boot checks the pushed digest against the index digest',
  )

  // The build's OpenShift hand-off, into the payload as a build puts it.
  const warnings = await writeHandoffFromPayload({ outDir: join(work, 'dist-openshift'), plan, payload, payloadDir: out })
  t.same(warnings, [])

  // First boot, finish phase: the steps before push-content need podman and systemd; they are recorded as done.
  const state = join(root, FIRSTBOOT_STATE_DIR)
  for (const step of ['verify-payload', 'load-images', 'trust-ca', 'start-registry', 'wait-health', 'init-user'])
    await writeFile(join(state, `${step}.done`), '')
  // The test registry speaks plain HTTP (skopeo 1.9 reads no registries.conf
  // but /etc's): a skopeo on PATH adds only the TLS switch to first boot's
  // own command lines.
  const bin = join(work, 'bin')
  await mkdir(bin)
  await writeFile(
    join(bin, 'skopeo'),
    '#!/bin/bash\ncase "$1" in\n  copy) shift; exec /usr/bin/skopeo copy --dest-tls-verify=false "$@" ;;\n  inspect) shift; exec /usr/bin/skopeo inspect --tls-verify=false "$@" ;;\n  *) exec /usr/bin/skopeo "$@" ;;\nesac\n',
    { mode: 0o755 },
  )
  const fb = spawnSync('bash', [join(root, FIRSTBOOT_SCRIPT), 'finish'], {
    encoding: 'utf8',
    env: { ...process.env, MA_ROOT: root, PATH: `${bin}:${process.env.PATH}` },
  })
  t.equal(fb.status, 0, fb.status === 0 ? 'first boot finished' : `${fb.stdout}${fb.stderr}`)
  t.match(
    fb.stdout,
    new RegExp(`pushing docker://localhost:${mirrorPort}/example/app:1\\.0 \\(${INDEX}\\)`),
    'first boot pushed the index, and its own digest check passed',
  )

  // Where a cluster given the hand-off first boot installed looks for the pinned reference.
  const idms = parseAllDocuments(await readFile(join(root, OPENSHIFT_OUT_DIR, 'idms.yaml'), 'utf8')).map((d) => d.toJS())
  const wanted = `${upstream.host}/example/app`
  const entry = idms
    .flatMap((d) => d.spec.imageDigestMirrors as { source: string; mirrors: string[] }[])
    .find((e) => wanted === e.source || wanted.startsWith(`${e.source}/`))
  t.ok(entry, `the installed idms.yaml maps ${wanted}`)
  const viaMirror = `${entry!.mirrors[0]}${wanted.slice(entry!.source.length)}@${INDEX}`
  t.equal(viaMirror, `localhost:${mirrorPort}/example/app@${INDEX}`)
  const raw = spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${viaMirror}`])
  t.equal(raw.status, 0, raw.status === 0 ? 'the mirror serves ...@<index digest> where the mirror set says' : String(raw.stderr))
  t.equal(sha(raw.stdout), INDEX, 'same bytes as the pinned index')
  // A node on amd64 pulling the pinned reference: the index resolves to its amd64 image.
  const pulled = skopeo([
    '--override-arch',
    'amd64',
    'copy',
    '--src-tls-verify=false',
    `docker://${mirror.host}/example/app@${INDEX}`,
    `oci:${join(work, 'pulled')}:x`,
  ])
  t.equal(pulled.status, 0, pulled.stderr)
  const index = JSON.parse(await readFile(join(work, 'pulled/index.json'), 'utf8')) as { manifests: { digest: string }[] }
  t.equal(index.manifests[0]!.digest, imgs.amd.manifest.digest, 'the amd64 image pulled through the index digest')
})

t.test('the registry refuses a sparse index: why the whole index is kept', async (t) => {
  // The amd64 image alone, then the index that also names the absent arm64 image.
  const amdOnly = join(work, 'amd-only')
  await writeLayout(amdOnly, [{ name: 'amd', root: imgs.amd.manifest, images: [imgs.amd] }])
  const child = skopeo([
    'copy',
    '--preserve-digests',
    '--dest-tls-verify=false',
    `oci:${amdOnly}:amd`,
    `docker://${mirror.host}/sparse/app@${imgs.amd.manifest.digest}`,
  ])
  t.equal(child.status, 0, child.stderr)
  const res = await fetch(`http://${mirror.host}/v2/sparse/app/manifests/1.0`, {
    method: 'PUT',
    headers: { 'Content-Type': imgs.multi.mediaType },
    body: new Uint8Array(imgs.multi.data),
  })
  t.equal(res.status, 400, 'distribution 2.8 refuses the index')
  t.match(await res.text(), new RegExp(`MANIFEST_BLOB_UNKNOWN.*${imgs.arm.manifest.digest}`), 'for the missing arm64 image')
})

t.test('a cache narrowed to amd64 by an older fetch is refused, never pushed under another digest', async (t) => {
  const cacheDir = join(work, 'cache-narrowed')
  // What images fetch did before: the amd64 image stored, the index digest only recorded.
  await fetchImages({
    cacheDir,
    images: contentOnly.map((i) => ({ ...i, keepPinnedIndex: false })),
    architecture: 'amd64',
    tlsVerify: false,
  })
  await t.rejects(assemblePayload({ cacheDir, stack: [], content: config.content.images, outDir: join(work, 'payload-narrowed') }), {
    name: 'UserError',
    message: new RegExp(
      `content image content/example/app:1\\.0 .*: the cache holds only its amd64 image ${imgs.amd.manifest.digest}, not the index the config pins; fetch it again to keep the whole index`,
    ),
  })
  const [refetched] = await fetchImages({ cacheDir, images: contentOnly, architecture: 'amd64', tlsVerify: false })
  t.equal(refetched!.skipped, false, 'fetching again replaces the narrowed entry')
  t.equal(refetched!.digest, INDEX)
})

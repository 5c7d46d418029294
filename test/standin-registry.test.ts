// The stand-in for docker.io/library/registry:2.8.3 (test/helpers/standin-registry.ts):
// Debian's docker-registry binary in a two-platform OCI image index, built
// here. Checked with skopeo like any image, run from its own amd64 rootfs to
// show the layers are self-contained, and taken through the product: `images
// import --name REF` into a scratch cache, `validate`, and a distribution
// build whose registry.images.registry names it.
import t from 'tap'
import { spawnSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from './helpers/cli.js'
import { freePort } from './helpers/net.js'
import { standinRegistryImage, standinRegistryImageV2, STANDIN_CONFIG_YML } from './helpers/standin-registry.js'

const sha = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex')
const skopeo = (args: string[]) => spawnSync('skopeo', args, { encoding: 'utf8', maxBuffer: 64 << 20 })
const haveSkopeo = skopeo(['--version']).status === 0

interface Index {
  mediaType: string
  manifests: { digest: string; platform: { architecture: string; os: string }; annotations?: Record<string, string> }[]
}

t.test('the archive is deterministic and holds a two-platform index', async (t) => {
  const reg = await standinRegistryImage()
  t.match(reg.digest, /^sha256:[a-f0-9]{64}$/)
  t.match(reg.ref, /^localhost\/[a-z0-9/-]+:[\w.-]+$/)
  t.same(Object.keys(reg.platformDigests).sort(), ['linux/amd64', 'linux/arm64'])
  // Built again from nothing (another cache dir): the same bytes.
  const scratch = mkdtempSync(join(tmpdir(), 'standin-'))
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
  const saved = process.env.MIRROR_APPLIANCE_TEST_CACHE
  process.env.MIRROR_APPLIANCE_TEST_CACHE = scratch
  try {
    const again = await standinRegistryImage()
    t.not(again.archive, reg.archive)
    t.equal(again.digest, reg.digest, 'same index digest')
    t.ok(readFileSync(again.archive).equals(readFileSync(reg.archive)), 'byte-identical archive')
  } finally {
    if (saved === undefined) delete process.env.MIRROR_APPLIANCE_TEST_CACHE
    else process.env.MIRROR_APPLIANCE_TEST_CACHE = saved
  }
  const v2 = await standinRegistryImageV2()
  t.not(v2.digest, reg.digest, 'v2 has another digest')
  t.not(v2.ref, reg.ref)
  t.not(v2.platformDigests['linux/amd64'], reg.platformDigests['linux/amd64'])
})

t.test('skopeo reads it: raw index, per-arch inspect, config, copy --all', { skip: !haveSkopeo && 'skopeo not installed' }, async (t) => {
  const reg = await standinRegistryImage()
  const raw = skopeo(['inspect', '--raw', `oci-archive:${reg.archive}`])
  t.equal(raw.status, 0, raw.stderr)
  t.equal(sha(raw.stdout), reg.digest, 'the digest is the index digest')
  const index = JSON.parse(raw.stdout) as Index
  t.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json')
  t.same(
    index.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`),
    ['linux/amd64', 'linux/arm64'],
  )
  t.same(
    index.manifests.map((m) => m.digest),
    [reg.platformDigests['linux/amd64'], reg.platformDigests['linux/arm64']],
  )
  t.match(index.manifests[1]!.annotations?.['io.mirror-appliance.standin.note'], /cannot run/, 'the arm64 entry says it is a stand-in')

  for (const arch of ['amd64', 'arm64']) {
    const i = skopeo(['inspect', '--override-arch', arch, `oci-archive:${reg.archive}`])
    t.equal(i.status, 0, i.stderr)
    const j = JSON.parse(i.stdout) as { Architecture: string; Os: string; Layers: string[] }
    t.equal(j.Architecture, arch)
    t.equal(j.Os, 'linux')
    t.equal(j.Layers.length, 2)
  }
  const c = skopeo(['inspect', '--config', '--override-arch', 'amd64', `oci-archive:${reg.archive}`])
  t.equal(c.status, 0, c.stderr)
  const cfg = JSON.parse(c.stdout) as {
    config: { Entrypoint: string[]; Cmd: string[]; ExposedPorts: object; Labels: Record<string, string> }
  }
  t.same(cfg.config.Entrypoint, ['/bin/registry'])
  t.same(cfg.config.Cmd, ['serve', '/etc/docker/registry/config.yml'])
  t.same(cfg.config.ExposedPorts, { '5000/tcp': {} })
  t.match(cfg.config.Labels['io.mirror-appliance.standin'], /stand-in for docker\.io\/library\/registry:2\.8\.3/)

  const dir = mkdtempSync(join(tmpdir(), 'standin-oci-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cp = skopeo(['copy', '--quiet', '--all', `oci-archive:${reg.archive}`, `oci:${join(dir, 'oci')}:standin`])
  t.equal(cp.status, 0, cp.stderr)
  const copied = JSON.parse(readFileSync(join(dir, 'oci', 'index.json'), 'utf8')) as Index
  t.equal(copied.manifests[0]!.digest, reg.digest, 'copy --all keeps the index digest')
})

/** Unpack the amd64 image's layers (from the archive, in order) into dir. */
function unpackAmd64(archive: string, dir: string): void {
  const layout = join(dir, 'layout')
  mkdirSync(layout)
  const x = spawnSync('tar', ['-xf', archive, '-C', layout])
  if (x.status !== 0) throw new Error(`tar: ${x.stderr}`)
  const blob = (d: string) => join(layout, 'blobs', 'sha256', d.slice(7))
  const outer = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }
  const index = JSON.parse(readFileSync(blob(outer.manifests[0]!.digest), 'utf8')) as Index
  const amd = index.manifests.find((m) => m.platform.architecture === 'amd64')!
  const manifest = JSON.parse(readFileSync(blob(amd.digest), 'utf8')) as { layers: { digest: string }[] }
  const root = join(dir, 'rootfs')
  mkdirSync(root)
  for (const l of manifest.layers) {
    const r = spawnSync('tar', ['-xzf', blob(l.digest), '-C', root])
    if (r.status !== 0) throw new Error(`tar: ${r.stderr}`)
  }
}

const asRoot = process.getuid?.() === 0
const canUnshare = spawnSync('unshare', ['-r', 'true']).status === 0
t.test(
  'the amd64 rootfs is self-contained: /bin/registry runs in a chroot of it',
  { skip: !asRoot && !canUnshare && 'needs root or unprivileged user namespaces for chroot' },
  async (t) => {
    const reg = await standinRegistryImage()
    const dir = mkdtempSync(join(tmpdir(), 'standin-root-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    unpackAmd64(reg.archive, dir)
    const root = join(dir, 'rootfs')
    t.equal(readFileSync(join(root, 'etc/docker/registry/config.yml'), 'utf8'), STANDIN_CONFIG_YML)
    t.ok(existsSync(join(root, 'var/lib/registry')), '/var/lib/registry exists')
    // Through a user namespace when possible, so the host's own libraries cannot stand in.
    const pre = canUnshare ? ['unshare', '-r', 'chroot', root] : ['chroot', root]
    const v = spawnSync(pre[0]!, [...pre.slice(1), '/bin/registry', '--version'], { encoding: 'utf8' })
    t.equal(v.status, 0, v.stderr)
    t.match(v.stdout, /github\.com\/docker\/distribution 2\.8/)

    // And it serves the registry API with the image's own default config.
    const port = await freePort()
    const child = spawn(pre[0]!, [...pre.slice(1), '/bin/registry', 'serve', '/etc/docker/registry/config.yml'], {
      env: { ...process.env, REGISTRY_HTTP_ADDR: `127.0.0.1:${port}` },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let log = ''
    child.stderr.on('data', (d) => (log += d))
    t.teardown(() => {
      child.kill('SIGTERM')
    })
    let status = 0
    for (let i = 0; i < 100 && !status; i++) {
      await new Promise((r) => setTimeout(r, 100))
      status = await fetch(`http://127.0.0.1:${port}/v2/`).then(
        (r) => r.status,
        () => 0,
      )
    }
    t.equal(status, 200, `GET /v2/ answers: ${log.slice(-2000)}`)
  },
)

t.test('through the product: images import --name, validate, a distribution build with registry.images.registry', async (t) => {
  const reg = await standinRegistryImage()
  const dir = mkdtempSync(join(tmpdir(), 'standin-build-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cache = join(dir, 'cache')
  const env = { MIRROR_APPLIANCE_CACHE: cache, SOURCE_DATE_EPOCH: '1700000000' }
  const cfg = join(dir, 'appliance.yaml')
  writeFileSync(
    cfg,
    `apiVersion: mirror-appliance/v1
host:
  disk: {device: vda}
registry:
  flavor: distribution
  images:
    registry: {ref: ${reg.ref}, digest: ${reg.digest}}
content:
  architecture: amd64
`,
  )

  // Not in the cache yet: validate warns at the field and says how; build refuses.
  const v0 = await runCli(['validate', '-c', cfg], { env })
  t.equal(v0.code, 0, v0.stderr)
  t.match(
    v0.stderr,
    new RegExp(
      `appliance\\.yaml:7:5 warning: registry\\.images\\.registry: ${reg.ref.replace(/[./]/g, '\\$&')}@${reg.digest} is not in the image cache ${cache.replace(/[./]/g, '\\$&')}`,
    ),
  )
  t.match(v0.stderr, `mirror-appliance images import ARCHIVE --name ${reg.ref} --cache ${cache}`)
  t.match(v0.stderr, `images fetch -c ${cfg} --stack-only`)
  const b0 = await runCli(['build', '-c', cfg, '-o', join(dir, 'dist0')], { env })
  t.equal(b0.code, 2, 'the build refuses without the stack image (exit 2, as for a missing locked image)')
  t.match(
    b0.stderr,
    /stack image stack\/registry \(localhost\/mirror-appliance\/registry:2\.8\.3-standin@sha256:[a-f0-9]{64}\), named by the config's registry\.images\.registry/,
  )
  t.match(b0.stderr, `images import ARCHIVE --name ${reg.ref}`)
  t.notOk(existsSync(join(dir, 'dist0')), 'nothing written')

  const imp = await runCli(['images', 'import', reg.archive, '--name', reg.ref], { env })
  t.equal(imp.code, 0, imp.stderr)
  t.same(imp.stdout.trim().split(/\s+/), ['imported', reg.ref, reg.digest], 'imported under the name, with the INDEX digest')
  const list = await runCli(['images', 'list', '--json'], { env })
  const rows = (JSON.parse(list.stdout) as { images: { name: string; digest: string; mediaType: string; platforms: string[] }[] }).images
  t.same(
    rows.map((r) => [r.name, r.digest, r.mediaType, r.platforms]),
    [[reg.ref, reg.digest, 'application/vnd.oci.image.index.v1+json', ['linux/amd64', 'linux/arm64/v8']]],
  )

  const v1 = await runCli(['validate', '-c', cfg], { env })
  t.equal(v1.code, 0, v1.stderr)
  t.notMatch(v1.stderr, /warning/, 'no warning once the image is in the cache')

  const dist = join(dir, 'dist')
  const b = await runCli(['build', '-c', cfg, '-o', dist], { env })
  t.equal(b.code, 0, b.stderr)
  t.notMatch(b.stderr, /missing/i)
  const m = JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8')) as {
    missingImages: string[]
    images: { role: string; ociName: string; sourceRef: string; digest: string; platforms: string[]; target: string }[]
  }
  t.same(m.missingImages, [])
  const stack = m.images.filter((i) => i.role === 'stack')
  t.same(
    stack.map((i) => [i.ociName, i.sourceRef, i.digest, i.target, [...i.platforms].sort()]),
    [['stack/registry', reg.ref, reg.digest, 'localhost/mirror-appliance/registry', ['linux/amd64', 'linux/arm64/v8']]],
  )

  // The payload on the OEMDRV medium: images.tsv names the override's repo, the index digest.
  const out = join(dir, 'from-iso')
  mkdirSync(out)
  const x = spawnSync(
    'xorriso',
    ['-indev', join(dist, 'oemdrv.iso'), '-osirrox', 'on', '-extract', '/appliance/images.tsv', join(out, 'images.tsv')],
    { encoding: 'utf8' },
  )
  t.equal(x.status, 0, x.stderr)
  t.equal(
    readFileSync(join(out, 'images.tsv'), 'utf8'),
    `stack\tstack/registry\t${reg.digest}\tlocalhost/mirror-appliance/registry\t2.8.3-standin\n`,
  )
  // The host files (Butane keeps text inline): the quadlet, first boot and mirror-registryctl name the override by digest.
  const bu = readFileSync(join(dist, 'host', 'appliance.bu'), 'utf8')
  const pinned = `localhost/mirror-appliance/registry@${reg.digest}`
  t.match(bu, `Image=${pinned}`, 'the quadlet runs the override, by digest')
  // one facts file (host.env) names it; first boot and mirror-registryctl both read it from there
  t.match(
    bu,
    new RegExp(`STACK_REFS=\\('?${pinned.replace(/[./]/g, '\\$&')}'? ?\\)`),
    'the host facts that first boot and mirror-registryctl read name it',
  )
  t.notMatch(bu, /docker\.io\/library\/registry/, 'the locked image is not named anywhere')
})

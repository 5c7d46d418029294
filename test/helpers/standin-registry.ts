// A STAND-IN for docker.io/library/registry:2.8.3, built here from Debian's
// docker-registry package (distribution 2.8.x: the same program the
// registry:2 image runs), for tests that need a registry image the product
// can import, put in a payload and run, without a network.
//
// What it is: an oci-archive (an OCI image layout in a tar, index.json at its
// root) holding one OCI image INDEX of two platforms, like the real
// registry:2.8.3 (an index; its digest is what a config or lock pins):
//
//   linux/amd64  /bin/registry (Debian's /usr/bin/docker-registry), the
//                shared libraries it links and the dynamic loader at their
//                paths, /etc/docker/registry/config.yml (the real image's
//                default), /var/lib/registry, /tmp. Entrypoint
//                ["/bin/registry"], Cmd ["serve", "/etc/docker/registry/config.yml"],
//                ExposedPorts 5000/tcp.
//   linux/arm64  HONESTLY NOT RUNNABLE: the same amd64 layers under a config
//                saying arm64, labelled and annotated as a stand-in. It exists
//                only so the payload and first boot meet an index like the
//                real one (first boot loads one platform).
//
// Deterministic: every tar entry has mtime FIXTURE_EPOCH, uid/gid 0, sorted
// names; gzip from node's zlib (no timestamp); JSON with fixed key order. The
// archive is cached in testCacheDir() under a key over every input (recipe,
// the binary's and libraries' sha256, zlib version, variant), with a JSON
// sidecar holding the digests.
//
// standinRegistryImageV2() is the same program under another digest (a
// `version=2` label and /etc/mirror-appliance-standin-version), for upgrade
// tests; its layers other than the small version layer are shared with v1.

import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { FIXTURE_EPOCH, testCacheDir } from './fixture-iso.js'
import { tarHeader } from './oci-fixtures.js'

export const STANDIN_BINARY = '/usr/bin/docker-registry'
/** Bump when the recipe below changes in a way the inputs do not show. */
const RECIPE = 'standin-registry/4'

/** The real image's /etc/docker/registry/config.yml (distribution/distribution cmd/registry/config-docker.yml). */
export const STANDIN_CONFIG_YML = `version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`

export interface StandinImage {
  /** The oci-archive file (read-only: it is the cache's copy) */
  archive: string
  /** The name to import it under and to name in registry.images.registry */
  ref: string
  /** Digest of the image index (what a config pins) */
  digest: string
  /** Manifest digest per platform, e.g. {'linux/amd64': 'sha256:…', 'linux/arm64': 'sha256:…'} */
  platformDigests: Record<string, string>
}

const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const

const STANDIN_NOTE = "stand-in for docker.io/library/registry:2.8.3 built from Debian's docker-registry package by mirror-appliance's tests"
const ARM_NOTE =
  'stand-in: this arm64 entry carries the amd64 binary and cannot run; it exists so the payload holds an index like the real one'

const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex')

// ---- a deterministic ustar writer ------------------------------------------

interface Entry {
  name: string
  type: 'file' | 'dir' | 'symlink'
  mode: number
  body?: Buffer
  target?: string
}

/** The ustar header of an entry: fixed mtime, root-owned, like the files of a real image layer. */
function header(e: Entry, size: number): Buffer {
  const type = e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0'
  const name = e.type === 'dir' ? `${e.name}/` : e.name
  return tarHeader({ name, type, mode: e.mode, ...(e.target ? { linkname: e.target } : {}) }, size, { mtime: FIXTURE_EPOCH, owner: 'root' })
}

/** A tar of the entries sorted by name, with every parent directory listed. */
function tar(entries: Entry[]): Buffer {
  const all = new Map<string, Entry>()
  for (const e of entries) {
    const parts = e.name.split('/')
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/')
      if (!all.has(d)) all.set(d, { name: d, type: 'dir', mode: 0o755 })
    }
    all.set(e.name, e)
  }
  const out: Buffer[] = []
  for (const e of [...all.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const body = e.type === 'file' ? (e.body ?? Buffer.alloc(0)) : Buffer.alloc(0)
    out.push(header(e, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512))
  }
  out.push(Buffer.alloc(1024))
  return Buffer.concat(out)
}

// ---- what goes into the rootfs ------------------------------------------------

/** The shared libraries and loader the binary needs, by the path it looks them up at (ldd), with their real files. */
function linkedLibraries(binary: string): { path: string; real: string }[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' })
  if (/not a dynamic executable/.test(out)) return []
  const libs: { path: string; real: string }[] = []
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line)
    if (m) libs.push({ path: m[1]!, real: realpathSync(m[1]!) })
  }
  if (!libs.length) throw new Error(`ldd ${binary}: no libraries found in ${JSON.stringify(out)}`)
  return libs
}

/** Layer entries: each library at its real path, plus a symlink where ldd's path differs (e.g. /lib64/ld-linux-x86-64.so.2). */
function libraryEntries(libs: { path: string; real: string }[]): Entry[] {
  const entries = new Map<string, Entry>()
  for (const l of libs) {
    const real = l.real.replace(/^\//, '')
    entries.set(real, { name: real, type: 'file', mode: 0o755, body: readFileSync(l.real) })
    const wanted = l.path.replace(/^\//, '')
    if (wanted !== real && !entries.has(wanted)) {
      // Relative to the link's directory, so it resolves inside any root.
      const depth = wanted.split('/').length - 1
      entries.set(wanted, { name: wanted, type: 'symlink', mode: 0o777, target: '../'.repeat(depth) + real })
    }
  }
  return [...entries.values()]
}

interface Blob {
  mediaType: string
  digest: string
  size: number
  data: Buffer
}

const blob = (mediaType: string, data: Buffer): Blob => ({ mediaType, digest: sha256(data), size: data.length, data })
const desc = (b: Blob, extra: object = {}) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size, ...extra })

function layerBlob(entries: Entry[]): { blob: Blob; diffId: string } {
  const raw = tar(entries)
  return { blob: blob(MT.layer, gzipSync(raw, { level: 6 })), diffId: sha256(raw) }
}

interface Recipe {
  version: 1 | 2
  libs: { path: string; real: string }[]
  binary: Buffer
}

function buildArchive(r: Recipe): { archive: Buffer; digest: string; platformDigests: Record<string, string> } {
  // Layer 1: the C library and the loader (the "base"); layer 2: the registry
  // and its files; v2 adds a third, tiny one.
  const base = layerBlob([...libraryEntries(r.libs), { name: 'tmp', type: 'dir', mode: 0o1777 }])
  const app = layerBlob([
    { name: 'bin/registry', type: 'file', mode: 0o755, body: r.binary },
    { name: 'etc/docker/registry/config.yml', type: 'file', mode: 0o644, body: Buffer.from(STANDIN_CONFIG_YML) },
    { name: 'var/lib/registry', type: 'dir', mode: 0o755 },
  ])
  const layers = [base, app]
  if (r.version === 2)
    layers.push(layerBlob([{ name: 'etc/mirror-appliance-standin-version', type: 'file', mode: 0o644, body: Buffer.from('2\n') }]))

  const labels = (arch: string): Record<string, string> => ({
    'io.mirror-appliance.standin': STANDIN_NOTE,
    ...(arch === 'arm64' ? { 'io.mirror-appliance.standin.runnable': 'false', 'io.mirror-appliance.standin.note': ARM_NOTE } : {}),
    'org.opencontainers.image.version': '2.8.3-standin',
    version: String(r.version),
  })
  const images = (['amd64', 'arm64'] as const).map((arch) => {
    const config = blob(
      MT.config,
      Buffer.from(
        JSON.stringify({
          created: new Date(FIXTURE_EPOCH * 1000).toISOString(),
          architecture: arch,
          os: 'linux',
          config: {
            ExposedPorts: { '5000/tcp': {} },
            Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
            Entrypoint: ['/bin/registry'],
            Cmd: ['serve', '/etc/docker/registry/config.yml'],
            Volumes: { '/var/lib/registry': {} },
            Labels: labels(arch),
          },
          rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
          history: [
            {
              created: new Date(FIXTURE_EPOCH * 1000).toISOString(),
              created_by: `mirror-appliance test helper: libc and loader from ${r.libs.map((l) => l.path).join(', ')}`,
            },
            {
              created: new Date(FIXTURE_EPOCH * 1000).toISOString(),
              created_by: `mirror-appliance test helper: ${STANDIN_BINARY} as /bin/registry`,
            },
            ...(r.version === 2
              ? [{ created: new Date(FIXTURE_EPOCH * 1000).toISOString(), created_by: 'mirror-appliance test helper: version 2 marker' }]
              : []),
          ],
        }),
      ),
    )
    const manifest = blob(
      MT.manifest,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MT.manifest,
          config: desc(config),
          layers: layers.map((l) => desc(l.blob)),
          ...(arch === 'arm64' ? { annotations: { 'io.mirror-appliance.standin.note': ARM_NOTE } } : {}),
        }),
      ),
    )
    return { arch, config, manifest }
  })
  const index = blob(
    MT.index,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.index,
        manifests: images.map((i) =>
          desc(i.manifest, {
            platform: { architecture: i.arch, os: 'linux', ...(i.arch === 'arm64' ? { variant: 'v8' } : {}) },
            ...(i.arch === 'arm64' ? { annotations: { 'io.mirror-appliance.standin.note': ARM_NOTE } } : {}),
          }),
        ),
        annotations: { 'io.mirror-appliance.standin': STANDIN_NOTE },
      }),
    ),
  )
  const blobs = new Map<string, Blob>()
  for (const b of [index, ...images.flatMap((i) => [i.manifest, i.config]), ...layers.map((l) => l.blob)]) blobs.set(b.digest, b)
  const tag = r.version === 2 ? '2.8.3-standin-v2' : '2.8.3-standin'
  const archive = tar([
    { name: 'oci-layout', type: 'file', mode: 0o644, body: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) },
    {
      name: 'index.json',
      type: 'file',
      mode: 0o644,
      body: Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MT.index,
          manifests: [desc(index, { annotations: { 'org.opencontainers.image.ref.name': tag } })],
        }),
      ),
    },
    ...[...blobs.values()].map((b): Entry => ({ name: `blobs/sha256/${b.digest.slice(7)}`, type: 'file', mode: 0o644, body: b.data })),
  ])
  return {
    archive,
    digest: index.digest,
    platformDigests: Object.fromEntries(images.map((i) => [`linux/${i.arch}`, i.manifest.digest])),
  }
}

async function standin(version: 1 | 2): Promise<StandinImage> {
  if (!existsSync(STANDIN_BINARY))
    throw new Error(`${STANDIN_BINARY} is missing: apt-get install docker-registry (Debian's build of the CNCF registry)`)
  const binary = await readFile(STANDIN_BINARY)
  const libs = linkedLibraries(STANDIN_BINARY)
  const ref = `localhost/mirror-appliance/registry:${version === 2 ? '2.8.3-standin-v2' : '2.8.3-standin'}`
  const h = createHash('sha256')
  h.update(JSON.stringify({ RECIPE, version, ref, FIXTURE_EPOCH, zlib: process.versions.zlib, config: STANDIN_CONFIG_YML, libs }))
  h.update(sha256(binary))
  for (const l of libs) h.update(sha256(readFileSync(l.real)))
  const key = h.digest('hex').slice(0, 16)
  const dir = testCacheDir()
  await mkdir(dir, { recursive: true })
  const archive = join(dir, `standin-registry-v${version}-${key}.oci.tar`)
  const meta = `${archive}.json`
  if (existsSync(archive) && existsSync(meta)) {
    const m = JSON.parse(readFileSync(meta, 'utf8')) as Omit<StandinImage, 'archive'>
    return { archive, ...m }
  }
  const built = buildArchive({ version, libs, binary })
  const tmp = `${archive}.tmp-${process.pid}`
  await writeFile(tmp, built.archive)
  await writeFile(
    `${meta}.tmp-${process.pid}`,
    JSON.stringify({ ref, digest: built.digest, platformDigests: built.platformDigests }, null, 2) + '\n',
  )
  await rename(tmp, archive)
  await rename(`${meta}.tmp-${process.pid}`, meta)
  return { archive, ref, digest: built.digest, platformDigests: built.platformDigests }
}

/** The stand-in for registry:2.8.3 (Debian's docker-registry in a two-platform OCI index), built once and cached. */
export async function standinRegistryImage(): Promise<StandinImage> {
  return standin(1)
}

/** The same program under another digest (label version=2 and a marker file), for upgrade tests. */
export async function standinRegistryImageV2(): Promise<StandinImage> {
  return standin(2)
}

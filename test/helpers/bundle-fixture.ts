// A plan, a small payload in the shape assemblePayload writes (images.tsv,
// oci/, payload.json, SHA256SUMS) and the bundle built from them: shared by
// the bundle and mirror-registryctl tests.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfigText } from '../../builder/config/load.js'
import { buildBundle, BUNDLE_TOP } from '../../builder/bundle/bundle.js'
import { VERSION } from '../../builder/context.js'
import { planAppliance } from '../../builder/plan/plan.js'
import type { Plan } from '../../builder/plan/types.js'
import { factsOf } from '../../builder/registry/facts.js'
import { HOST_FACTS } from '../../builder/registry/layout.js'

export const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

export interface PlanOpts {
  flavor?: 'quay' | 'distribution'
  port?: number
  rhel?: string
  extra?: string
  seed?: string
  epoch?: number
}

const plans = new Map<string, Plan>()
export function testPlan(o: PlanOpts = {}): Plan {
  const key = JSON.stringify(o)
  if (!plans.has(key)) {
    const loaded = loadConfigText(
      `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda }${o.rhel ? `, rhel: '${o.rhel}'` : ''} }
registry:
  flavor: ${o.flavor ?? 'quay'}
  port: ${o.port ?? 8443}
${o.extra ?? ''}
`,
      'bundle.yaml',
      { baseDir: '/tmp' },
    )
    plans.set(key, planAppliance(loaded, { epoch: o.epoch ?? 1_700_000_000, seed: o.seed ?? 'bundle' }).plan)
  }
  return plans.get(key)!
}

/**
 * A payload whose stack rows name the plan's stack images (so the units find
 * them) and `content` content rows; blobs are stand-ins, SHA256SUMS is right.
 */
export function fakePayload(dir: string, plan: Plan, content = 1, blobBytes = 0): void {
  mkdirSync(join(dir, 'oci/blobs/sha256'), { recursive: true })
  const rows = factsOf(plan.host).stackRefs.map((ref, i) => {
    const [repo, digest] = ref.split('@') as [string, string]
    return ['stack', `stack/s${i}`, digest, repo, '-']
  })
  for (let i = 1; i <= content; i++)
    rows.push(['content', `content/ocp/release${i}:4.14.${i}`, `sha256:${sha(`{"manifest": ${i}}`)}`, `ocp/release${i}`, `4.14.${i}`])
  const files: Record<string, Buffer | string> = {
    'images.tsv': rows.map((r) => r.join('\t')).join('\n') + '\n',
    'oci/oci-layout': '{"imageLayoutVersion":"1.0.0"}',
    'oci/index.json':
      JSON.stringify({
        schemaVersion: 2,
        manifests: rows.map((r) => ({ digest: r[2], annotations: { 'org.opencontainers.image.ref.name': r[1] } })),
      }) + '\n',
    'payload.json': '{"schema":"mirror-appliance/payload/v1"}\n',
  }
  if (blobBytes > 0) {
    const blob = Buffer.alloc(blobBytes, 7)
    files[`oci/blobs/sha256/${sha(blob)}`] = blob
  }
  for (const [p, c] of Object.entries(files)) writeFileSync(join(dir, p), c)
  const sums = Object.keys(files)
    .sort()
    .map((p) => `${sha(readFileSync(join(dir, p)))}  ${p}`)
  writeFileSync(join(dir, 'SHA256SUMS'), sums.join('\n') + '\n')
}

/** Build the bundle for `plan` into `dir` and extract it there with GNU tar; returns the bundle directory. */
export async function extractedBundle(dir: string, plan: Plan, content = 1): Promise<{ tarball: string; bundleDir: string }> {
  const payload = join(dir, 'payload-src')
  mkdirSync(payload, { recursive: true })
  fakePayload(payload, plan, content)
  const tarball = join(dir, 'mirror-appliance-bundle.tar.gz')
  await buildBundle({ plan, payloadDir: payload, outFile: tarball, epoch: plan.options.epoch })
  const x = join(dir, 'x')
  mkdirSync(x)
  const r = spawnSync('tar', ['-xzf', tarball, '-C', x], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`tar -x failed: ${r.stderr}`)
  return { tarball, bundleDir: join(x, BUNDLE_TOP) }
}

/** What the next release changes: its version, and the stack images it pins (same repositories, other digests). */
export const NEXT_VERSION = VERSION.replace(/^(\d+)\.(\d+)\..*$/, (_, major: string, minor: string) => `${major}.${Number(minor) + 1}.0`)
const nextDigest = (digest: string) => `sha256:${sha(`next release ${digest}`)}`

export interface ReleaseBundle {
  /** The extracted bundle directory (what `mirror-registryctl upgrade DIR` takes) */
  dir: string
  /** Its stack images, repository@digest */
  refs: string[]
  /** Its mirror-registryctl, as upgrade must install it */
  script: string
  /** Its host facts (host.env): what tells this release's host from the installed one's */
  facts: string
}

/**
 * The bundle of the next release, really built (buildBundle) from the same
 * config plus `registry.images` pinning every stack image at a new digest, so
 * its units, images.tsv and host facts (STACK_REFS) all differ from the
 * installed ones. Its version is NEXT_VERSION: the build takes the version
 * from package.json, so the facts' VERSION line and bundle.env are set the
 * way a build of version NEXT_VERSION writes them.
 */
export async function nextReleaseBundle(base: string, o: PlanOpts = {}): Promise<ReleaseBundle> {
  const current = testPlan(o)
  const pins = current.stack.map((img) => `    ${img.name}: { ref: '${img.ref}', digest: '${nextDigest(img.digest)}' }`)
  const plan = testPlan({ ...o, extra: [o.extra ?? '', '  images:', ...pins].join('\n') })
  const dir = join(base, 'next-release')
  mkdirSync(dir, { recursive: true })
  const { bundleDir } = await extractedBundle(dir, plan)
  const setVersion = (p: string, re: RegExp, line: string) => {
    const text = readFileSync(join(bundleDir, p), 'utf8')
    if (!re.test(text)) throw new Error(`${p}: no version line to set`)
    writeFileSync(join(bundleDir, p), text.replace(re, line))
  }
  setVersion(`files${HOST_FACTS}`, /^VERSION=.*$/m, `VERSION='${NEXT_VERSION}'`)
  setVersion('bundle.env', /^VERSION=.*$/m, `VERSION=${NEXT_VERSION}`)
  return {
    dir: bundleDir,
    refs: factsOf(plan.host).stackRefs,
    script: readFileSync(join(bundleDir, 'mirror-registryctl'), 'utf8'),
    facts: readFileSync(join(bundleDir, `files${HOST_FACTS}`), 'utf8'),
  }
}

/** A copy of the extracted bundle whose stack images are new (other digests), as a release with new stack images has. */
export function newStackBundle(h: { base: string; bundleDir: string }, plan: Plan): { dir: string; refs: string[] } {
  const dir = join(h.base, 'new-bundle')
  cpSync(h.bundleDir, dir, { recursive: true })
  const refs: string[] = []
  const swap = (text: string) => {
    let out = text
    for (const ref of factsOf(plan.host).stackRefs) {
      const digest = ref.split('@')[1]!
      const next = `sha256:${sha(`new ${digest}`)}`
      out = out.replaceAll(digest, next)
    }
    return out
  }
  for (const ref of factsOf(plan.host).stackRefs) refs.push(`${ref.split('@')[0]}@sha256:${sha(`new ${ref.split('@')[1]}`)}`)
  const edit = (p: string) => writeFileSync(join(dir, p), swap(readFileSync(join(dir, p), 'utf8')))
  for (const u of factsOf(plan.host).unitFiles) edit(`files${u}`)
  edit(`files${HOST_FACTS}`)
  edit('payload/images.tsv')
  const sums = readFileSync(join(dir, 'payload/SHA256SUMS'), 'utf8').replace(
    /^[0-9a-f]{64}  images\.tsv$/m,
    `${sha(readFileSync(join(dir, 'payload/images.tsv')))}  images.tsv`,
  )
  writeFileSync(join(dir, 'payload/SHA256SUMS'), sums)
  writeFileSync(join(dir, 'bundle.env'), readFileSync(join(dir, 'bundle.env'), 'utf8').replace(/^VERSION=.*$/m, 'VERSION=0.2.0'))
  return { dir, refs }
}

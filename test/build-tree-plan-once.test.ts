// A build plans the payload's registry storage tree once (issue 21 review):
// the plan reads every manifest of the payload, so assembly makes it, writes
// the tree's link files from it, and hands its figures to the data-volume
// check, which reads nothing of the payload again. Observed on a real build
// (the build command in-process, `--bundle`, a distribution payload from a
// cache of images sharing layers): the plan module is loaded through tap's
// mockImport with planPayloadTree wrapped to count its calls, and the check's
// checkDataVolume wrapped to keep the figures it was given. No code of the
// product is changed for the test; the wrappers call the real functions.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BUNDLE_NAME, BUNDLE_TOP } from '../builder/bundle/bundle.js'
import * as check from '../builder/commands/data-volume-check.js'
import type { Ctx } from '../builder/context.js'
import type { BuildOpts } from '../builder/config/flags.js'
import { createLogger, logOptionsFromEnv } from '../builder/log.js'
import { importArchive } from '../builder/payload/import.js'
import { treeVolumeFigures, type VolumeFigures } from '../builder/payload/data-volume.js'
import * as tree from '../builder/payload/registry-tree.js'
import { PAYLOAD_TREE_DIR } from '../builder/registry/layout.js'
import { sampleImages, writeLayout } from './helpers/oci-fixtures.js'

const work = await mkdtemp(join(tmpdir(), 'ma-plan-once-'))
t.teardown(() => rm(work, { recursive: true, force: true }))

// ---- a cache holding content images that share a layer, and an index ----
const imgs = sampleImages()
const src = join(work, 'src')
await writeLayout(src, [
  { name: 'quay.io/example/app:1.0', root: imgs.app.manifest, images: [imgs.app] },
  { name: 'quay.io/example/tool:2.0', root: imgs.tool.manifest, images: [imgs.tool] },
  { name: 'quay.io/example/multi:4.16', root: imgs.multi, images: [imgs.amd, imgs.arm] },
])
const cache = join(work, 'cache')
await importArchive({ cacheDir: cache, path: src })

/** What one build did: how often the tree was planned, and which figures the data-volume check was given. */
interface Observed {
  plans: { dir: string; tree: tree.PayloadTree }[]
  checked: VolumeFigures[]
  log: string
  code: number
}

/** Run `build --bundle` in-process, the plan and the check observed (their real code runs). */
async function observedBuild(flavor: 'distribution' | 'quay', out: string): Promise<Observed> {
  const seen: Observed = { plans: [], checked: [], log: '', code: -1 }
  // The keys name the .ts sources: tap's mock resolves them without tsx's .js -> .ts mapping. A key
  // that matched nothing would leave both lists empty and fail the test, never pass it by accident.
  const { build } = await t.mockImport<typeof import('../builder/commands/build.js')>('../builder/commands/build.js', {
    '../builder/payload/registry-tree.ts': {
      ...tree,
      planPayloadTree: async (dir: string) => {
        const planned = await tree.planPayloadTree(dir)
        seen.plans.push({ dir, tree: planned })
        return planned
      },
    },
    '../builder/commands/data-volume-check.ts': {
      ...check,
      checkDataVolume: (...a: Parameters<typeof check.checkDataVolume>) => {
        seen.checked.push(a[1])
        return check.checkDataVolume(...a)
      },
    },
  })
  const config = join(work, `${flavor}.yaml`)
  writeFileSync(
    config,
    `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda } }
registry: { flavor: ${flavor} }
content:
  images:
    - { ref: quay.io/example/app:1.0, target: example/app }
    - { ref: quay.io/example/tool:2.0, target: example/tool }
    - { ref: quay.io/example/multi:4.16, target: openshift/multi }
`,
  )
  const opts: BuildOpts = {
    config,
    output: out,
    oemdrv: false,
    pxe: false,
    qcow2: false,
    bundle: true,
    cache,
    // the stack images of the lock are not in this cache: the build says so and goes on
    allowMissing: true,
    force: false,
    seed: 'plan-once',
  }
  const ctx: Ctx = {
    log: createLogger({ ...logOptionsFromEnv({ noColor: true }), tty: false }, (s) => (seen.log += s)),
    json: false,
    signal: new AbortController().signal,
    out: () => {},
  }
  seen.code = await build(opts, ctx)
  return seen
}

/** The payload a bundle carries, extracted with GNU tar. */
function bundlePayload(out: string, into: string): string {
  mkdirSync(into)
  const x = spawnSync('tar', ['-xzf', join(out, BUNDLE_NAME), '-C', into], { encoding: 'utf8' })
  if (x.status !== 0) throw new Error(`tar: ${x.stderr}`)
  return join(into, BUNDLE_TOP, 'payload')
}

t.test('distribution: one plan; the check read its figures, which are those of the payload shipped', async (t) => {
  const out = join(work, 'dist')
  const seen = await observedBuild('distribution', out)
  t.equal(seen.code, 0, 'the build succeeds')
  t.equal(seen.plans.length, 1, 'the tree is planned once')
  t.equal(seen.checked.length, 1, 'one host, one check')
  const plan = seen.plans[0]!.tree
  const figures = seen.checked[0]!
  t.same(
    { contentBytes: figures.contentBytes, treeFiles: figures.treeFiles },
    { contentBytes: plan.bytes, treeFiles: plan.links.length + plan.dirs },
    "the check's figures come from that plan",
  )
  // ... and they are right for what went on the media: planned afresh from the bundle's payload
  const shipped = bundlePayload(out, join(work, 'x-dist'))
  t.ok(existsSync(join(shipped, PAYLOAD_TREE_DIR)), "the payload carries the tree's link files, written from the plan")
  const payloadJson = JSON.parse(readFileSync(join(shipped, 'payload.json'), 'utf8')) as { bytes: number }
  t.same(figures, treeVolumeFigures(payloadJson.bytes, await tree.planPayloadTree(shipped)))
  t.ok(figures.contentBytes > 0 && figures.treeFiles > 0)
  t.match(
    seen.log,
    /data volume \/var\/lib\/mirror-registry \(distribution, its storage tree moved into place, no push\)/,
    'the check said its figure',
  )
})

t.test('quay: one plan too (the content bytes Quay stores), no tree on the media', async (t) => {
  const out = join(work, 'dist-quay')
  const seen = await observedBuild('quay', out)
  t.equal(seen.code, 0, 'the build succeeds')
  t.equal(seen.plans.length, 1)
  t.equal(seen.checked.length, 1)
  t.equal(seen.checked[0]!.contentBytes, seen.plans[0]!.tree.bytes)
  t.notOk(existsSync(join(bundlePayload(out, join(work, 'x-quay')), PAYLOAD_TREE_DIR)))
  t.match(seen.log, /\(quay, content pushed at first boot\)/)
})

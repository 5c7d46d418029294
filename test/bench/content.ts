// Bench (issue 21 goal 4, content at scale): a payload of many images sharing
// layers through the whole `build` with the payload on a medium (`--oemdrv`:
// oemdrv.iso holds ks.cfg and the payload under /appliance/), against the
// bare tools doing the same job in the same run: `cp -r` of the same blobs,
// then a bare `xorriso` writing that tree to an ISO. Goal: wall time <= 1.2x
// the bare pair; peak RSS flat (the same build at a size 1/16th as big is
// measured too, for the comparison).
//
// The content: IMAGES images (64) in the cache, each of two layers shared
// with others (BASE_LAYERS, 4: half the bytes) and one of its own (the other
// half), in the distribution flavor (the payload also carries the registry
// tree's link files, issue 21 goal 5). Data is random (randomStream), so
// nothing along the way can shortcut it.
//
// Size: the size asked for (BENCH_CONTENT_GIB, default 16, 1 under --quick),
// else the largest of 8, 4, 2, 1, 0.5, 0.25 GiB below it, that fits the free
// disk of the work directory (about 3.2x the size: the cache, the bare copy
// and an ISO); sizes skipped for lack of disk are said.
// Alone: npx tsx test/bench/content.ts   (BENCH_CONTENT_GIB, BENCH_CONTENT_REPS)

import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MEDIA, OciLayout } from '../../builder/payload/oci.js'
import { spawnCli, spawnWatched, type Proc } from '../helpers/proc.js'
import { randomStream, type BenchRow } from './payload.js'

const GiB = 1024 ** 3
const MiB = 1024 ** 2
/** The sizes tried, largest first: the first that fits the disk (and the size asked for) is used. */
export const CONTENT_SIZES_GIB = [16, 8, 4, 2, 1, 0.5, 0.25]
const IMAGES = 64
const BASE_LAYERS = 4
/** Disk the bench takes at once for a payload of `bytes`: the cache, the bare copy and its ISO, and some room. */
export const diskNeeded = (bytes: number) => 3.2 * bytes + 512 * MiB

export interface ContentSize {
  /** The size used, or none when even the smallest does not fit */
  gib?: number
  /** Sizes not used for lack of disk, with why */
  skipped: string[]
}

/** The size to bench: maxGib, else the largest of CONTENT_SIZES_GIB below it, whose disk need fits the free space of dir. */
export function contentSize(dir: string, maxGib: number): ContentSize {
  const s = statfsSync(dir)
  const free = s.bavail * s.bsize
  const skipped: string[] = []
  for (const gib of [maxGib, ...CONTENT_SIZES_GIB.filter((g) => g < maxGib)]) {
    const need = diskNeeded(gib * GiB)
    if (need <= free) return { gib, skipped }
    skipped.push(`${sizeLabel(gib)} (needs about ${(need / GiB).toFixed(1)} GiB free in ${dir}, ${(free / GiB).toFixed(1)} GiB free)`)
  }
  return { skipped }
}

/**
 * A cache of IMAGES content images sharing layers, `bytes` in all: image i
 * has base layers i and i+1 (of BASE_LAYERS) and a layer of its own. Returns
 * the cache and the config's content.images lines.
 */
async function sharedLayerCache(dir: string, bytes: number): Promise<{ cache: OciLayout; images: string[] }> {
  const cache = await OciLayout.open(dir)
  const put = async (size: number) => {
    const b = await cache.putBlob(randomStream(size))
    return { mediaType: MEDIA.ociLayerGzip, digest: b.digest, size: b.size }
  }
  const bases = []
  for (let i = 0; i < BASE_LAYERS; i++) bases.push(await put(Math.floor(bytes / 2 / BASE_LAYERS)))
  const entries = []
  const images = []
  for (let i = 0; i < IMAGES; i++) {
    const layers = [bases[i % BASE_LAYERS]!, bases[(i + 1) % BASE_LAYERS]!, await put(Math.floor(bytes / 2 / IMAGES))]
    const cfg = await cache.putBlobBytes(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }),
    )
    const man = await cache.putBlobBytes(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, ...cfg }, layers }),
    )
    const ref = `registry.example.com/bench/app-${String(i).padStart(2, '0')}:1`
    entries.push({ name: ref, desc: { mediaType: MEDIA.ociManifest, ...man } })
    images.push(`    - { ref: ${ref}, digest: ${man.digest} }`)
  }
  await cache.setEntries(entries)
  return { cache, images }
}

/** The config the build reads: one host of the distribution flavor serving the images (content.images lines). */
function writeConfig(path: string, images: string[]): string {
  writeFileSync(
    path,
    `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda } }
registry: { flavor: distribution }
content:
  images:
${images.join('\n')}
`,
  )
  return path
}

/** Wall time and peak RSS (process tree) of one run; throws when it fails. */
async function timed(p: Proc, what: string): Promise<{ secs: number; peakMiB: number }> {
  const t0 = process.hrtime.bigint()
  const r = await p.done
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}`)
  return { secs, peakMiB: p.peakKiB() / 1024 }
}

/** A size for a label: GiB from 1 GiB up, else MiB. */
export const sizeLabel = (gib: number) => (gib >= 1 ? `${gib} GiB` : `${Math.round(gib * 1024)} MiB`)

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

export interface ContentResult {
  rows: BenchRow[]
  /** build time / (cp -r + bare xorriso) time, medians */
  ratio: number
  /** Peak RSS of the build's process tree at this size and at the small size */
  peakMiB: number
  smallPeakMiB: number
  smallGib: number
  bareMiB: number
}

/** One size: the cache made (not timed), then the bare pair and the build, interleaved, `reps` rounds. */
export async function benchContent(o: { workDir: string; gib: number; reps: number; settleMs: number }): Promise<ContentResult> {
  const work = mkdtempSync(join(o.workDir, 'ma-bench-content-'))
  try {
    const bytes = Math.round(o.gib * GiB)
    process.stderr.write(`  content: making ${IMAGES} images sharing ${BASE_LAYERS} base layers, ${sizeLabel(o.gib)} (not timed)…\n`)
    const { cache, images } = await sharedLayerCache(join(work, 'cache'), bytes)
    const config = writeConfig(join(work, 'appliance.yaml'), images)
    const ks = join(work, 'ks.cfg')
    writeFileSync(ks, '# a kickstart: its size does not matter here\n')

    const step = async <T>(fn: () => Promise<T>): Promise<T> => {
      spawnSync('sync') // not timed: the previous step's write-back must not slow this one down
      await new Promise((r) => setTimeout(r, o.settleMs))
      return fn()
    }
    // The bare pair: cp -r of the cache's blobs, then xorriso of that tree (as the build maps the payload).
    const bare = async () => {
      const tree = join(work, 'bare-tree')
      await mkdir(tree)
      const cp = await timed(spawnWatched('cp', ['-r', cache.blobsDir, join(tree, 'blobs')]), 'cp -r')
      const iso = join(work, 'bare.iso')
      const x = await timed(
        spawnWatched('xorriso', [
          '-outdev',
          iso,
          '-volid',
          'OEMDRV',
          '-compliance',
          'iso_9660_level=3',
          '-map',
          tree,
          '/appliance',
          '-map',
          ks,
          '/ks.cfg',
        ]),
        'bare xorriso',
      )
      rmSync(tree, { recursive: true, force: true })
      rmSync(iso, { force: true })
      return { secs: cp.secs + x.secs, peakMiB: Math.max(cp.peakMiB, x.peakMiB), cp: cp.secs, xorriso: x.secs }
    }
    const out = join(work, 'dist')
    let isoBytes = 0
    const build = async (configFile: string) => {
      const r = await timed(
        spawnCli(['build', '-c', configFile, '-o', out, '--oemdrv', '--cache', cache.dir, '--allow-missing', '-q'], {
          env: { SOURCE_DATE_EPOCH: '1700000000' },
        }),
        'build --oemdrv',
      )
      isoBytes = statSync(join(out, 'oemdrv.iso')).size
      rmSync(out, { recursive: true, force: true })
      return r
    }

    const runs = { bare: [] as number[], cp: [] as number[], xorriso: [] as number[], build: [] as number[] }
    const peaks = { bare: 0, build: 0 }
    for (let i = 0; i < o.reps; i++) {
      process.stderr.write(`  content ${sizeLabel(o.gib)}: round ${i + 1} of ${o.reps}\n`)
      // each round starts with the other step, so that neither always runs after the same one
      const order = i % 2 ? (['build', 'bare'] as const) : (['bare', 'build'] as const)
      for (const which of order) {
        if (which === 'bare') {
          const r = await step(bare)
          runs.bare.push(r.secs)
          runs.cp.push(r.cp)
          runs.xorriso.push(r.xorriso)
          peaks.bare = Math.max(peaks.bare, r.peakMiB)
        } else {
          const r = await step(() => build(config))
          runs.build.push(r.secs)
          peaks.build = Math.max(peaks.build, r.peakMiB)
        }
      }
    }
    // RSS at a size 1/16th as big, same images: flat means the big build's peak is not much above it.
    const smallGib = o.gib / 16
    const small = await benchSmallBuild(work, smallGib)

    const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ')
    const ratio = median(runs.build) / median(runs.bare)
    const label = `content ${sizeLabel(o.gib)}`
    return {
      ratio,
      peakMiB: peaks.build,
      smallPeakMiB: small.peakMiB,
      smallGib,
      bareMiB: peaks.bare,
      rows: [
        {
          name: `${label}: cp -r of the blobs + bare xorriso of that tree`,
          value: median(runs.bare),
          unit: 's',
          note: `${IMAGES} images, ${BASE_LAYERS} shared base layers; median of ${o.reps}: ${list(runs.bare)} s (cp -r ${list(runs.cp)}, xorriso ${list(runs.xorriso)})`,
        },
        {
          name: `${label}: build --oemdrv (CLI, distribution: payload, registry tree links, oemdrv.iso, manifest)`,
          value: median(runs.build),
          unit: 's',
          note: `median of ${o.reps}: ${list(runs.build)} s; oemdrv.iso ${(isoBytes / GiB).toFixed(2)} GiB`,
        },
        { name: `${label}: build time / bare pair`, value: ratio, unit: 'ratio', note: 'goal <= 1.2 (issue 21 goal 4)' },
        { name: `${label}: peak RSS, bare pair`, value: peaks.bare, unit: 'MiB', note: 'the higher of cp and xorriso' },
        { name: `${label}: peak RSS, build process tree`, value: peaks.build, unit: 'MiB', note: 'node and xorriso, summed' },
        {
          name: `content ${sizeLabel(smallGib)}: build --oemdrv`,
          value: small.secs,
          unit: 's',
          note: `same ${IMAGES} images, 1/16th the bytes, one run: what the build costs whatever the size (start-up, keys, render, manifest)`,
        },
        {
          name: `content ${sizeLabel(smallGib)}: peak RSS, build process tree`,
          value: small.peakMiB,
          unit: 'MiB',
          note: 'for RSS flatness',
        },
      ],
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** The same shape at a smaller size, built once for its peak RSS (a cache of its own beside the big one). */
async function benchSmallBuild(work: string, gib: number): Promise<{ secs: number; peakMiB: number }> {
  const dir = join(work, 'small')
  await mkdir(dir)
  try {
    const { cache, images } = await sharedLayerCache(join(dir, 'cache'), Math.round(gib * GiB))
    const config = writeConfig(join(dir, 'appliance.yaml'), images)
    spawnSync('sync')
    return await timed(
      spawnCli(['build', '-c', config, '-o', join(dir, 'dist'), '--oemdrv', '--cache', cache.dir, '--allow-missing', '-q'], {
        env: { SOURCE_DATE_EPOCH: '1700000000' },
      }),
      'build --oemdrv (small)',
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.env.BENCH_DIR ?? tmpdir()
  const size = contentSize(dir, Number(process.env.BENCH_CONTENT_GIB ?? 16))
  for (const s of size.skipped) process.stderr.write(`content: skipped ${s}\n`)
  if (size.gib === undefined) process.exit(0)
  const r = await benchContent({
    workDir: dir,
    gib: size.gib,
    reps: Number(process.env.BENCH_CONTENT_REPS ?? 1),
    settleMs: Number(process.env.BENCH_SETTLE_MS ?? 1000),
  })
  for (const x of r.rows) console.log(`${x.name}: ${x.value.toFixed(2)} ${x.unit}${x.note ? `  (${x.note})` : ''}`)
}

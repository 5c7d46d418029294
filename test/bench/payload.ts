// Bench: payload assembly of ~2 GiB of layers against a plain `cp -r` of the
// same blobs, in the same run, plus the peak RSS of this process. Run by
// `npm run bench` (test/bench/bench.ts) or alone: npx tsx test/bench/payload.ts

import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { assemblePayload } from '../../builder/payload/assemble.js'
import { MEDIA, OciLayout } from '../../builder/payload/oci.js'

export interface BenchRow {
  name: string
  value: number
  unit: string
  note?: string
}

/** `bytes` of random-looking data, each MiB different, streamed (nothing held in memory). */
export function randomStream(bytes: number): Readable {
  let left = bytes
  const chunk = randomBytes(1 << 20)
  return new Readable({
    read() {
      if (left <= 0) return this.push(null)
      const n = Math.min(left, chunk.length)
      left -= n
      // vary each chunk so no two layers share content
      chunk.writeUInt32LE(left >>> 0, 0)
      this.push(Buffer.from(chunk.subarray(0, n)))
    },
  })
}

export async function benchPayload(opts: { totalBytes?: number; layers?: number } = {}): Promise<BenchRow[]> {
  const total = opts.totalBytes ?? 2 * 1024 ** 3
  const n = opts.layers ?? 16
  const work = await mkdtemp(join(tmpdir(), 'ma-bench-payload-'))
  try {
    const cache = await OciLayout.open(join(work, 'cache'))
    const layers = []
    for (let i = 0; i < n; i++) {
      const b = await cache.putBlob(randomStream(Math.floor(total / n)))
      layers.push({ mediaType: MEDIA.ociLayerGzip, digest: b.digest, size: b.size })
    }
    const cfg = await cache.putBlobBytes(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }))
    const man = await cache.putBlobBytes(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, ...cfg }, layers }),
    )
    const digest = man.digest
    await cache.setEntry('stack/bench', { mediaType: MEDIA.ociManifest, ...man })
    const stack = [{ name: 'bench', ref: 'example.com/bench:1', digest, ociName: 'stack/bench' }]
    spawnSync('sync')

    const time = async (fn: () => Promise<unknown> | unknown) => {
      const t0 = process.hrtime.bigint()
      await fn()
      return Number(process.hrtime.bigint() - t0) / 1e9
    }
    const cp = await time(() => {
      const r = spawnSync('cp', ['-r', cache.blobsDir, join(work, 'cp-copy')])
      if (r.status !== 0) throw new Error(`cp -r failed: ${r.stderr}`)
    })
    const copyMode = await time(() => assemblePayload({ cacheDir: cache.dir, stack, content: [], outDir: join(work, 'out-copy'), link: false }))
    const fullMode = await time(() => assemblePayload({ cacheDir: cache.dir, stack, content: [], outDir: join(work, 'out-full'), link: false, verify: 'full' }))
    const linkMode = await time(() => assemblePayload({ cacheDir: cache.dir, stack, content: [], outDir: join(work, 'out-link') }))
    const rssMiB = process.resourceUsage().maxRSS / 1024
    const gib = total / 1024 ** 3
    return [
      { name: 'payload: cp -r of the blobs', value: cp, unit: 's', note: `${gib.toFixed(1)} GiB, ${n} layers` },
      { name: 'payload: assemble (streamed copy + sha256 check)', value: copyMode, unit: 's' },
      { name: 'payload: assemble speed vs cp -r (copy mode)', value: cp / copyMode, unit: 'ratio', note: 'target >= 0.8' },
      { name: 'payload: assemble (verify all, then kernel copy)', value: fullMode, unit: 's' },
      { name: 'payload: assemble speed vs cp -r (verify + kernel copy)', value: cp / fullMode, unit: 'ratio', note: 'target >= 0.8' },
      { name: 'payload: assemble (hard links, same filesystem)', value: linkMode, unit: 's' },
      { name: 'payload: assemble speed vs cp -r (link mode)', value: cp / linkMode, unit: 'ratio', note: 'target >= 0.8' },
      { name: 'payload: peak RSS of the process', value: rssMiB, unit: 'MiB', note: 'target < 150' },
    ]
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const gib = Number(process.env.BENCH_PAYLOAD_GIB ?? 2)
  for (const r of await benchPayload({ totalBytes: gib * 1024 ** 3 })) console.log(`${r.name}: ${r.value.toFixed(2)} ${r.unit}${r.note ? `  (${r.note})` : ''}`)
}

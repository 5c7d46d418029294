// Bench (not a test): build a 50-host fleet through the real CLI with a
// payload of a few hundred MiB in the image cache, and report the time and
// the disk use: the payload is stored once (payload.iso), each host adds
// only its small OEMDRV and a few text files.
// Alone: npx tsx test/bench/fleet.ts   (BENCH_FLEET_HOSTS, BENCH_FLEET_MIB)

import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MEDIA, OciLayout } from '../../builder/payload/oci.js'
import { runCli } from '../helpers/cli.js'
import { randomStream, type BenchRow } from './payload.js'

export type { BenchRow }

async function treeBytes(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0
  let files = 0
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    bytes += (await stat(join(e.parentPath, e.name))).size
    files++
  }
  return { bytes, files }
}

export async function benchFleet(opts: { hosts?: number; payloadMiB?: number } = {}): Promise<BenchRow[]> {
  const hosts = opts.hosts ?? 50
  const mib = opts.payloadMiB ?? 256
  const work = await mkdtemp(join(tmpdir(), 'ma-bench-fleet-'))
  try {
    // One content image of `mib` MiB in 4 layers, in the cache under its ref.
    const cache = await OciLayout.open(join(work, 'cache'))
    const layers = []
    for (let i = 0; i < 4; i++) {
      const b = await cache.putBlob(randomStream(Math.floor((mib * 1024 * 1024) / 4)))
      layers.push({ mediaType: MEDIA.ociLayerGzip, digest: b.digest, size: b.size })
    }
    const cfg = await cache.putBlobBytes(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }),
    )
    const man = await cache.putBlobBytes(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, ...cfg }, layers }),
    )
    const ref = 'registry.example.com/bench/app:1'
    await cache.setEntry(ref, { mediaType: MEDIA.ociManifest, ...man })

    const list = Array.from({ length: hosts }, (_, i) => {
      const n = i + 1
      const hex = n.toString(16).padStart(4, '0')
      return `    - { hostname: site${n}.fleet.example, address: 10.20.${Math.floor(n / 250)}.${(n % 250) + 1}/16, gateway: 10.20.255.254, mac: "52:54:00:aa:${hex.slice(0, 2)}:${hex.slice(2)}" }`
    })
    const config = join(work, 'fleet.yaml')
    await writeFile(
      config,
      `apiVersion: mirror-appliance/v1
host: { disk: { device: vda } }
registry: { flavor: distribution }
content:
  images:
    - { ref: ${ref}, digest: ${man.digest} }
fleet:
  hosts:
${list.join('\n')}
`,
    )
    const out = join(work, 'dist')
    const t0 = process.hrtime.bigint()
    // Stack images are not in this cache: --allow-missing (the content image is).
    const r = await runCli(['build', '-c', config, '-o', out, '--cache', cache.dir, '--allow-missing'], {
      env: { SOURCE_DATE_EPOCH: '1700000000' },
    })
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    if (r.code !== 0) throw new Error(`fleet build failed (${r.code}):\n${r.stderr}`)

    const total = await treeBytes(out)
    const payload = (await stat(join(out, 'payload.iso'))).size
    const hostDirs = await readdir(join(out, 'hosts'))
    let oemdrv = 0
    let biggest = 0
    for (const h of hostDirs) {
      const s = (await stat(join(out, 'hosts', h, 'oemdrv.iso'))).size
      oemdrv += s
      biggest = Math.max(biggest, s)
    }
    const perHost = (total.bytes - payload) / hosts
    let bigHostFiles = 0
    for (const e of await readdir(join(out, 'hosts'), { withFileTypes: true, recursive: true })) {
      if (e.isFile() && (await stat(join(e.parentPath, e.name))).size > 1024 * 1024) bigHostFiles++
    }
    const MiB = 1024 * 1024
    return [
      { name: 'fleet: build time', value: seconds, unit: 's', note: `${hosts} hosts, ${mib} MiB payload, real keys (no seed)` },
      { name: 'fleet: build time per host', value: seconds / hosts, unit: 's' },
      { name: 'fleet: output size', value: total.bytes / MiB, unit: 'MiB', note: `${total.files} files` },
      { name: 'fleet: payload.iso (stored once)', value: payload / MiB, unit: 'MiB' },
      { name: 'fleet: all OEMDRV media together', value: oemdrv / MiB, unit: 'MiB', note: `largest ${(biggest / 1024).toFixed(0)} KiB` },
      { name: 'fleet: disk per host beyond the payload', value: perHost / 1024, unit: 'KiB' },
      { name: 'fleet: files under hosts/ larger than 1 MiB', value: bigHostFiles, unit: 'files', note: '0 = no payload copy per host' },
      { name: 'fleet: a payload copy per host would take', value: (hosts * payload) / MiB, unit: 'MiB', note: 'for comparison' },
    ]
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await benchFleet({
    hosts: Number(process.env.BENCH_FLEET_HOSTS ?? 50),
    payloadMiB: Number(process.env.BENCH_FLEET_MIB ?? 256),
  })
  for (const r of rows) console.log(`${r.name}: ${r.value.toFixed(2)} ${r.unit}${r.note ? `  (${r.note})` : ''}`)
}

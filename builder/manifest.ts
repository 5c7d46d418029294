// manifest.json and SHA256SUMS: what went into a build (the config, every
// host it made media for, the images, the tools) and checksums of every
// output, written last so that a complete manifest means a complete build.

import { readdir, stat, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileIdentity, sha256File, type PinnedHash } from './hash.js'

export interface ManifestImage {
  role: 'stack' | 'content'
  sourceRef: string
  digest: string
  size: number
  platforms: string[]
  target: string
}

/** One host of the build: the facts of its config, and where its outputs and rendered files are. */
export interface ManifestHost {
  hostname: string
  rhel: string
  flavor: string
  port: number
  /** A fleet host's entry: its role, address/prefix, MAC and disk */
  role?: string
  address?: string
  mac?: string
  disk?: string
  /** Its outputs, relative to the output directory ('' for a site of one) */
  dir: string
  /** Its rendered files (ks.cfg, appliance.bu, appliance.ign, rootfs/) */
  render: string
}

export interface BuildManifest {
  schema: 'mirror-appliance/manifest/v1'
  builder: { version: string; node: string }
  config: { file: string; digest: string }
  /** The first of hosts (the only one of a site of one), as manifests before fleets named it */
  host: { hostname: string; rhel: string; flavor: string; port: number }
  /** Every host the build made media for; absent in manifests of older builds */
  hosts?: ManifestHost[]
  epoch: number
  demo: boolean
  images: ManifestImage[]
  missingImages: string[]
  baseIso?: { path: string; sha256: string; volumeId: string }
  outputs: { path: string; size: number; sha256: string }[]
  tools: Record<string, string>
}

/** Every regular file under dir (relative, sorted), skipping the given top-level names. */
export async function listFiles(dir: string, skip: Set<string>): Promise<string[]> {
  const out: string[] = []
  const walk = async (d: string) => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name)
      const rel = relative(dir, p)
      if (skip.has(rel.split('/')[0]!)) continue
      if (e.isDirectory()) await walk(p)
      else if (e.isFile()) out.push(rel)
    }
  }
  await walk(dir)
  return out
}

/**
 * Checksums of the outputs (not of secrets/), then manifest.json and
 * SHA256SUMS. `early` holds hashes started when a medium was written (by
 * relative path); one is used only if the file is still the version hashed.
 */
export async function writeManifest(
  dir: string,
  m: Omit<BuildManifest, 'outputs'>,
  early: ReadonlyMap<string, Promise<PinnedHash | null>> = new Map(),
): Promise<BuildManifest> {
  const files = await listFiles(dir, new Set(['secrets', '.mirror-appliance', 'manifest.json', 'SHA256SUMS']))
  const outputs: BuildManifest['outputs'] = []
  for (const f of files) {
    const path = join(dir, f)
    const pinned = await early.get(f)
    const sha256 = pinned && pinned.identity === (await fileIdentity(path)) ? pinned.sha256 : await sha256File(path)
    outputs.push({ path: f, size: (await stat(path)).size, sha256 })
  }
  const full: BuildManifest = { ...m, outputs }
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(full, null, 2) + '\n', { mode: 0o644 })
  const sums = [...outputs, { path: 'manifest.json', sha256: await sha256File(join(dir, 'manifest.json')), size: 0 }]
  await writeFile(join(dir, 'SHA256SUMS'), sums.map((o) => `${o.sha256}  ${o.path}\n`).join(''), { mode: 0o644 })
  return full
}

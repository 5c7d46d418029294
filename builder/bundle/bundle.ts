// The install bundle for existing RHEL 8 hosts: one reproducible tar.gz with
// mirror-registryctl, the payload, every host file of the plan under files/
// (with files.tsv: kind, mode, owner, group, path) and the CA certificate.
// The top-level mirror-registryctl is the host's own static script
// (templates/host/); run from the unpacked bundle it sources the facts and
// the library under files/, as installed it sources them where install put
// them.
// Streamed: payload blobs go from disk through gzip to the output file, never
// whole into memory. Written to a temp file and renamed: nothing half-written.

import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { chmod, lstat, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { withTemp } from '../atomic.js'
import { UserError } from '../errors.js'
import { octal } from '../quote.js'
import type { HostFile, Plan } from '../plan/types.js'
import type { ToolNeed } from '../tool-needs.js'
import { factsOf } from '../registry/facts.js'
import { REGISTRYCTL_PATH } from '../registry/layout.js'
import { renderTemplate } from '../render/templates.js'
import { tarChunks, type TarInput } from './tar-writer.js'

export const BUNDLE_NAME = 'mirror-appliance-bundle.tar.gz'
/** Every entry sits under this directory, so extracting never spills into the current one. */
export const BUNDLE_TOP = 'mirror-appliance-bundle'

/** The programs this writer runs (tool-needs.ts): none, tar and gzip are written in-process (tar-writer.ts, node:zlib). */
export const BUNDLE_TOOLS: readonly ToolNeed[] = []

export interface BundleOptions {
  plan: Plan
  /** An assembled payload (assemblePayload's outDir: oci/, images.tsv, payload.json, SHA256SUMS) */
  payloadDir: string
  outFile: string
  /** Seconds since the epoch: every entry's mtime */
  epoch: number
  signal?: AbortSignal
}

export interface BundleResult {
  path: string
  size: number
  sha256: string
  entries: number
}

const text = (s: string) => Buffer.from(s, 'utf8')

/** kind of a host file for mirror-registryctl: units are rebased to the data dir and swapped on upgrade */
function fileKind(plan: Plan, f: HostFile): 'unit' | 'file' {
  return factsOf(plan.host).unitFiles.includes(f.path) ? 'unit' : 'file'
}

/** files.tsv: what install places, with modes and owners. Directories first, in the host spec's order. */
export function filesTsv(plan: Plan): string {
  const field = (s: string) => {
    if (/[\t\n\r]/.test(s)) throw new Error(`host path or owner with a tab or line break: ${JSON.stringify(s)}`)
    return s
  }
  const rows = [
    ...plan.host.dirs.map((d) => ['dir', octal(d.mode), d.owner, d.group, d.path]),
    ...plan.host.files.map((f) => [fileKind(plan, f), octal(f.mode), f.owner, f.group, f.path]),
  ]
  return rows.map((r) => r.map(field).join('\t')).join('\n') + '\n'
}

/** bundle.env: KEY=VALUE lines mirror-registryctl reads (never sources) when upgrading to this bundle. */
export function bundleEnv(plan: Plan): string {
  const c = plan.config
  const d = factsOf(plan.host)
  return (
    [
      `VERSION=${d.version}`,
      `FLAVOR=${c.registry.flavor}`,
      `HOSTNAME=${c.host.hostname}`,
      `PORT=${c.registry.port}`,
      `DATA_DIR=${c.registry.dataDir}`,
      `RHEL=${c.host.rhel}`,
      `PODMAN=${d.podman}`,
      `CONFIG_DIGEST=${plan.configDigest}`,
    ].join('\n') + '\n'
  )
}

async function walkDir(root: string, rel: string, out: { rel: string; abs: string; dir: boolean; size: number }[]): Promise<void> {
  const names = (await readdir(join(root, rel))).sort()
  for (const n of names) {
    const r = rel ? `${rel}/${n}` : n
    const abs = join(root, r)
    const st = await lstat(abs)
    if (st.isDirectory()) {
      out.push({ rel: r, abs, dir: true, size: 0 })
      await walkDir(root, r, out)
    } else if (st.isFile()) {
      out.push({ rel: r, abs, dir: false, size: st.size })
    } else {
      throw new UserError(`payload ${root}: ${r} is not a regular file or directory`, 'rebuild the payload')
    }
  }
}

/** Every entry of the bundle, sorted by name (parents before children). */
export async function bundleEntries(opts: Pick<BundleOptions, 'plan' | 'payloadDir'>): Promise<TarInput[]> {
  const { plan } = opts
  const sums = await stat(join(opts.payloadDir, 'SHA256SUMS')).catch(() => null)
  if (!sums?.isFile()) throw new UserError(`${opts.payloadDir}: not an assembled payload (SHA256SUMS missing)`)
  const byName = new Map<string, TarInput>()
  const addDirs = (name: string, mode = 0o755) => {
    const parts = name.split('/')
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/')
      if (!byName.has(d)) byName.set(d, { name: d, type: 'dir', mode: d === BUNDLE_TOP ? 0o700 : mode })
    }
  }
  const add = (e: TarInput) => {
    const name = `${BUNDLE_TOP}/${e.name}`
    if (byName.has(name)) throw new Error(`bundle entry twice: ${name}`)
    addDirs(name)
    byName.set(name, { ...e, name })
  }
  add({ name: 'mirror-registryctl', type: 'file', mode: 0o755, data: text(hostFile(plan, REGISTRYCTL_PATH)) })
  add({ name: 'README.md', type: 'file', mode: 0o644, data: text(renderTemplate('templates/bundle/README.md.hbs', readmeData(plan))) })
  add({ name: 'bundle.env', type: 'file', mode: 0o644, data: text(bundleEnv(plan)) })
  add({ name: 'files.tsv', type: 'file', mode: 0o644, data: text(filesTsv(plan)) })
  add({ name: 'ca.crt', type: 'file', mode: 0o644, data: text(plan.pki.caCertPem) })
  for (const f of plan.host.files) {
    add({ name: `files${f.path}`, type: 'file', mode: f.mode, data: typeof f.contents === 'string' ? text(f.contents) : f.contents })
  }
  const payload: { rel: string; abs: string; dir: boolean; size: number }[] = []
  await walkDir(opts.payloadDir, '', payload)
  for (const p of payload) {
    if (p.dir) byName.set(`${BUNDLE_TOP}/payload/${p.rel}`, { name: `${BUNDLE_TOP}/payload/${p.rel}`, type: 'dir', mode: 0o755 })
    else add({ name: `payload/${p.rel}`, type: 'file', mode: 0o644, source: p.abs, size: p.size })
  }
  addDirs(`${BUNDLE_TOP}/payload/x`)
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** The contents of one of the plan's host files. */
function hostFile(plan: Plan, path: string): string {
  const f = plan.host.files.find((x) => x.path === path)
  if (!f) throw new Error(`the host spec has no ${path}`)
  return String(f.contents)
}

function readmeData(plan: Plan) {
  const d = factsOf(plan.host)
  return {
    ...d,
    address: `${plan.config.host.hostname}:${plan.config.registry.port}`,
    rhel: plan.config.host.rhel,
    top: BUNDLE_TOP,
    name: BUNDLE_NAME,
  }
}

/** Write the bundle: a reproducible tar.gz (same plan, payload and epoch give the same bytes). */
export async function buildBundle(opts: BundleOptions): Promise<BundleResult> {
  const entries = await bundleEntries(opts)
  const hash = createHash('sha256')
  let size = 0
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk)
      size += chunk.length
      cb(null, chunk)
    },
  })
  await withTemp(opts.outFile, async (tmp) => {
    await pipeline(
      Readable.from(tarChunks(entries, opts.epoch, opts.signal)),
      createGzip({ level: 6 }),
      count,
      // the bundle holds the server key and the registry password
      createWriteStream(tmp, { flags: 'wx', mode: 0o600 }),
      ...(opts.signal ? [{ signal: opts.signal }] : []),
    )
    await chmod(tmp, 0o600)
  })
  return { path: opts.outFile, size, sha256: hash.digest('hex'), entries: entries.length }
}

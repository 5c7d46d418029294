// `mirror-appliance images fetch|import|list|verify`: the image cache from the
// command line. Results go to stdout (one JSON document with --json),
// messages and progress to stderr.

import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { Config } from '../config/types.js'
import { defaultCacheDir } from '../context.js'
import { UserError } from '../errors.js'
import type { Logger } from '../log.js'
import { fetchImages, type FetchImage } from './fetch.js'
import { importArchivesDetailed, type ArchiveFormat } from './import.js'
import { resolveStack } from './lock.js'
import { withDirLock } from './lockfile.js'
import { contentOciName } from './names.js'
import { imagePlatforms, imageSize, OciLayout, REF_NAME, SOURCE_REF, VerifyError } from './oci.js'

export interface ImagesCtx {
  configPath?: string
  json: boolean
  quiet: boolean
  verbose: boolean
  log?: Logger
  signal?: AbortSignal
}

const COMMON = `
Common options:
  --cache DIR      image cache (default $MIRROR_APPLIANCE_CACHE, else
                   $XDG_CACHE_HOME/mirror-appliance/oci or ~/.cache/mirror-appliance/oci)
  --json           print the result as one JSON document on stdout
  -q, --quiet      only errors
  -v, --verbose    more detail
  -h, --help       this help`

export const IMAGES_HELP: Record<string, string> = {
  fetch: `Usage: mirror-appliance images fetch [-c appliance.yaml] [--cache DIR] [--authfile F] [--arch A]

Copies the stack images of the configured registry flavor (pinned in
images/<flavor>.lock.json, or the config's own registry.images.<role>) and
the config's content images into the cache, on a connected machine.
Resumable: run it again after an interruption and only what is missing is
copied. Every digest is checked.

  -c, --config FILE  appliance.yaml (default: the demo config)
  --authfile FILE    registry credentials (default $REGISTRY_AUTH_FILE); a
                     pull secret from console.redhat.com works for registry.redhat.io
  --arch A           all (default: the config's content.architecture), amd64, arm64, ppc64le, s390x;
                     a content image pinned by an index digest keeps its whole
                     index, so that clusters can pull it by that digest
  --stack-only       only the stack images
  --tls-verify=false talk to plain-HTTP or self-signed registries${COMMON}`,
  import: `Usage: mirror-appliance images import ARCHIVE… [--format F] [--cache DIR] [--name NAME]

Imports images you already have: docker-archive (docker save, podman save),
oci-archive, an OCI layout directory, or oc-mirror v2 archives: the
directory oc-mirror wrote the mirror_NNNNNN.tar chunks of one run into, or
all those chunks (a run's chunks are read as one set). An incremental run
goes on top of the earlier runs already imported into the same cache, or
give every run, oldest first. Repositories another ImageSetConfiguration
left in oc-mirror's cache (links without blobs) are skipped and listed.
Archives are checked: traversal, links out, devices and digests that do not
match are refused.

  --format F   auto (default), docker-archive, oci-archive, oci-dir, oc-mirror
  --name NAME  name for the image when the archive carries none

An image the config names as a stack image (registry.images.<role>: {ref,
digest}) is found by its ref or its digest: import it with --name REF, e.g.
  mirror-appliance images import registry.oci.tar --name registry.example.com/ops/registry:2.8.3
An archive holding an image index (several platforms) keeps the index
digest, the digest the config names.${COMMON}`,
  list: `Usage: mirror-appliance images list [--cache DIR] [--json]

Lists the images in the cache: name, digest, size, platforms, source.${COMMON}`,
  verify: `Usage: mirror-appliance images verify [NAME…] [--cache DIR] [--quick]

Re-hashes every blob of every image (or the named ones) against its
descriptor, through indexes, manifests, configs and layers. Exit 1 and a
list of bad blobs when anything is wrong.

  --quick  check sizes and manifests only, not layer contents
  --gc     afterwards, delete blobs no image uses${COMMON}`,
}

const common = {
  cache: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  verbose: { type: 'boolean', short: 'v' },
  'no-color': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

function parse<O extends Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>>(
  sub: string,
  args: string[],
  options: O,
) {
  try {
    return parseArgs({ args, options: { ...common, ...options }, allowPositionals: true, strict: true })
  } catch (e) {
    throw new UserError(`images ${sub}: ${(e as Error).message}`, `run "mirror-appliance images ${sub} --help"`)
  }
}

function say(ctx: ImagesCtx, msg: string): void {
  if (ctx.quiet) return
  if (ctx.log) ctx.log.info(msg)
  else process.stderr.write(msg + '\n')
}

function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < u.length - 1) [n, i] = [n / 1024, i + 1]
  return `${i === 0 ? n : n.toFixed(1)} ${u[i]}`
}

/** Entry point: `images SUB …`. Returns the exit code. */
export async function imagesCommand(
  args: string[],
  ctx: ImagesCtx,
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const [sub, ...rest] = args
  if (!sub || !(sub in IMAGES_HELP)) {
    throw new UserError(`images: unknown subcommand ${JSON.stringify(sub ?? '')}`, 'use one of: fetch, import, list, verify')
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out(IMAGES_HELP[sub] + '\n')
    return 0
  }
  switch (sub) {
    case 'fetch':
      return fetchCmd(rest, ctx, out)
    case 'import':
      return importCmd(rest, ctx, out)
    case 'list':
      return listCmd(rest, ctx, out)
    default:
      return verifyCmd(rest, ctx, out)
  }
}

/**
 * What `images fetch` copies for a config: the stack images, then the content
 * images, which keep the index their pinned digest names (clusters pull them
 * by that digest; the stack is only loaded on the host).
 */
export function imagesToFetch(c: Config, o: { stackOnly?: boolean } = {}): FetchImage[] {
  const images: FetchImage[] = resolveStack(c).map((s) => ({ ref: s.ref, digest: s.digest, ociName: s.ociName, verified: s.verified }))
  if (!o.stackOnly)
    for (const i of c.content.images) images.push({ ref: i.ref, digest: i.digest, ociName: contentOciName(i), keepPinnedIndex: true })
  return images
}

async function fetchCmd(args: string[], ctx: ImagesCtx, out: (s: string) => void): Promise<number> {
  const { values: v, positionals } = parse('fetch', args, {
    config: { type: 'string', short: 'c' },
    authfile: { type: 'string' },
    arch: { type: 'string' },
    'stack-only': { type: 'boolean' },
    'tls-verify': { type: 'string' },
  })
  if (positionals.length) throw new UserError(`images fetch: unexpected argument ${positionals[0]}`)
  const cacheDir = v.cache ? resolve(v.cache) : defaultCacheDir()
  const { loadConfig } = await import('../config/load.js')
  const configPath = (v.config as string | undefined) ?? ctx.configPath
  const loaded = loadConfig(configPath)
  const c = loaded.config
  const images = imagesToFetch(c, { stackOnly: !!v['stack-only'] })
  const arch = (v.arch as string | undefined) ?? c.content.architecture
  const tls = v['tls-verify'] === undefined ? undefined : v['tls-verify'] !== 'false'
  say(ctx, `fetching ${images.length} image(s) into ${cacheDir} (architecture: ${arch})`)
  const progress = ctx.log && !ctx.quiet ? ctx.log.progress('fetch') : undefined
  const results = await fetchImages({
    cacheDir,
    images,
    authfile: v.authfile as string | undefined,
    architecture: arch,
    tlsVerify: tls,
    signal: ctx.signal,
    onProgress: (p) => {
      const head = `[${p.index}/${p.total}] ${p.image}`
      if (p.phase === 'blob') progress?.update(p.bytes, undefined, `${head}: ${p.blobs} blob(s), ${fmtBytes(p.bytes)}`)
      else if (p.phase === 'skip') say(ctx, `${head}: ${p.reason}`)
      else if (p.phase === 'retry') say(ctx, `${head}: ${p.error}; retry ${p.attempt} in ${p.delayMs / 1000}s`)
      else if (p.phase === 'note') say(ctx, `${head}: ${p.message}`)
      else if (p.phase === 'done') say(ctx, `${head}: ${p.digest} (${fmtBytes(p.bytes)})`)
      else if (p.phase === 'start' && ctx.verbose) say(ctx, `${head}: from ${p.source}`)
    },
  })
  progress?.done()
  if (ctx.json) out(JSON.stringify({ cache: cacheDir, images: results }, null, 2) + '\n')
  else out(results.map((r) => `${r.skipped ? 'cached ' : 'fetched'}  ${r.ociName}  ${r.digest}`).join('\n') + '\n')
  return 0
}

async function importCmd(args: string[], ctx: ImagesCtx, out: (s: string) => void): Promise<number> {
  const { values: v, positionals } = parse('import', args, { format: { type: 'string' }, name: { type: 'string' } })
  if (!positionals.length) throw new UserError('images import: give at least one ARCHIVE', 'run "mirror-appliance images import --help"')
  const format = (v.format as string | undefined) ?? 'auto'
  if (!['auto', 'docker-archive', 'oci-archive', 'oci-dir', 'oc-mirror'].includes(format)) {
    throw new UserError(`images import: --format ${format} is not one of auto, docker-archive, oci-archive, oci-dir, oc-mirror`)
  }
  const cacheDir = v.cache ? resolve(v.cache) : defaultCacheDir()
  const r = await importArchivesDetailed({
    cacheDir,
    paths: positionals.map((p) => resolve(p)),
    format: format as ArchiveFormat,
    name: v.name as string | undefined,
  })
  const ocm = r.ocMirror
  if (ctx.json) {
    const oc = ocm && { runs: ocm.runs, skipped: ocm.skipped, releaseSignatures: ocm.releaseSignatures.map(({ data: _, ...s }) => s) }
    out(JSON.stringify({ cache: cacheDir, images: r.images, ...(oc ? { ocMirror: oc } : {}) }, null, 2) + '\n')
    return 0
  }
  for (const run of ocm?.runs ?? [])
    say(ctx, `oc-mirror run ${run.iscTime ?? '(no isc_* file)'}: ${run.chunks.length} chunk(s) in ${run.label}`)
  const lines = r.images.map((i) => `${i.kind === 'signature' ? 'signature' : 'imported '}  ${i.ociName}  ${i.digest}`)
  for (const s of ocm?.releaseSignatures ?? []) lines.push(`release-signature  ${s.file}`)
  for (const s of ocm?.skipped ?? []) lines.push(`skipped   ${s.repo}:${s.tag}  ${s.digest}  (${s.reason})`)
  out(lines.join('\n') + '\n')
  return 0
}

async function listCmd(args: string[], ctx: ImagesCtx, out: (s: string) => void): Promise<number> {
  const { values: v, positionals } = parse('list', args, {})
  if (positionals.length) throw new UserError(`images list: unexpected argument ${positionals[0]}`)
  const cacheDir = v.cache ? resolve(v.cache) : defaultCacheDir()
  const layout = await OciLayout.open(cacheDir)
  const rows = []
  for (const e of await layout.entries()) {
    rows.push({
      name: e.annotations?.[REF_NAME] ?? '',
      digest: e.digest,
      mediaType: e.mediaType,
      size: await imageSize(layout, e),
      platforms: await imagePlatforms(layout, e).catch(() => []),
      source: e.annotations?.[SOURCE_REF] ?? '',
    })
  }
  rows.sort((a, b) => (a.name < b.name ? -1 : 1))
  if (ctx.json || v.json) out(JSON.stringify({ cache: cacheDir, images: rows }, null, 2) + '\n')
  else
    out(
      rows.map((r) => [r.name, r.digest, fmtBytes(r.size), r.platforms.join(',') || '-', r.source || '-'].join('\t')).join('\n') +
        (rows.length ? '\n' : ''),
    )
  return 0
}

async function verifyCmd(args: string[], ctx: ImagesCtx, out: (s: string) => void): Promise<number> {
  const { values: v, positionals } = parse('verify', args, { quick: { type: 'boolean' }, gc: { type: 'boolean' } })
  const cacheDir = v.cache ? resolve(v.cache) : defaultCacheDir()
  const layout = await OciLayout.open(cacheDir, { create: false })
  const r = await withDirLock(cacheDir, async () => {
    const res = await layout.verify({ names: positionals.length ? positionals : undefined, full: !v.quick })
    const gc = v.gc && !res.problems.length ? await layout.gc() : undefined
    return { ...res, gc }
  })
  if (ctx.json || v.json) out(JSON.stringify({ cache: cacheDir, images: r.images, problems: r.problems, gc: r.gc }, null, 2) + '\n')
  if (r.problems.length) throw new VerifyError(r.problems)
  if (!(ctx.json || v.json))
    out(`${r.images} image(s) verified in ${cacheDir}${r.gc ? `; removed ${r.gc.removed} unused blob(s), ${fmtBytes(r.gc.bytes)}` : ''}\n`)
  return 0
}

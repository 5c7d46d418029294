// The stages a single-host build (commands/build.ts) and a fleet build
// (fleet/build.ts) share, so that both check, log and write alike: refusing
// with every problem at once, the output transaction with its scratch inside,
// the payload, and the manifest written last.

import { mkdir, rm } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import type { Ctx } from '../context.js'
import { VERSION } from '../context.js'
import type { LoadedConfig } from '../config/load.js'
import type { Config } from '../config/types.js'
import { FailureError, UserError } from '../errors.js'
import { toolVersion } from '../exec.js'
import { hashPinned, type PinnedHash } from '../hash.js'
import { writeManifest, type BuildManifest } from '../manifest.js'
import { writeOutputDir } from '../output.js'
import { assemblePayload, type AssembleResult } from '../payload/assemble.js'
import { ocMirrorForBuild, SPARSE_INDEXES_PUSHABLE, type OcMirrorForBuild } from '../payload/ocmirror-payload.js'
import { ConfigError } from '../config/diagnostics.js'
import { diagnosticAt } from '../config/load.js'
import { defaultCacheDir } from '../context.js'
import { resolveStack, type StackImage } from '../payload/lock.js'
import { buildEpoch } from '../plan/plan.js'
import { normalizeBaseUrl } from '../media/pxe.js'

/** The build command's options, as parsed from its flags (single host and fleet alike). */
export interface BuildOpts {
  config?: string
  output: string
  iso?: string
  oemdrv?: boolean
  pxe: boolean
  pxeUrl?: string
  qcow2: boolean
  baseImage?: string
  bundle: boolean
  /** A pull secret to merge the registry's auth into (openshift/pull-secret-merged.json) */
  pullSecret?: string
  cache?: string
  allowMissing: boolean
  force: boolean
  seed?: string
}

/** Fail once with every problem the checks found, before anything is written. */
export function refuseProblems(problems: string[]): void {
  if (problems.length)
    throw new UserError(
      problems.join('\n  '),
      problems.length > 1 ? `${problems.length} problems; nothing was written` : 'nothing was written',
    )
}

/**
 * The PXE part of the checks: whether a tree is wanted and the URL it will be
 * served from, normalized (no trailing slash, so the kickstart's URLs have no
 * '//'); problems are added to the list.
 */
export function checkPxe(
  opts: { pxe: boolean; pxeUrl?: string },
  c: Config,
  isoBase: string | undefined,
  problems: string[],
): { wantPxe: boolean; pxeUrl?: string } {
  const wantPxe = opts.pxe || c.outputs.pxe !== undefined
  if (!wantPxe) return { wantPxe }
  const raw = opts.pxeUrl ?? c.outputs.pxe?.baseUrl
  if (!isoBase) problems.push('--pxe needs the RHEL ISO to take the kernel and initrd from: add --iso BASE.iso')
  if (!raw) {
    problems.push('--pxe needs the URL the tree will be served from: add --pxe-url http://HOST:PORT or outputs.pxe.baseUrl')
    return { wantPxe }
  }
  try {
    return { wantPxe, pxeUrl: normalizeBaseUrl(raw) }
  } catch (e) {
    if (!(e instanceof UserError)) throw e
    problems.push(`${opts.pxeUrl !== undefined ? '--pxe-url' : 'outputs.pxe.baseUrl'}: ${e.message}`)
    return { wantPxe }
  }
}

/**
 * The `serve` command under which a tree's URLs resolve: port and path prefix
 * from the URL it was built for, and --bind to the URL's address when it is
 * an IP address: this machine's address on the install network, so that
 * nobody elsewhere reaches the kickstart (and the registry's keys in it).
 */
export function serveCommand(treeDir: string, pxeUrl: string): string {
  const u = new URL(pxeUrl)
  const https = u.protocol === 'https:'
  const prefix = u.pathname.replace(/\/+$/, '')
  const address = u.hostname.replace(/^\[(.*)\]$/, '$1')
  // Behind an HTTPS front end, the front end has the address; serve stays local to it.
  const bind = !https && isIP(address) !== 0 ? ` --bind ${address}` : ''
  return (
    `mirror-appliance serve ${treeDir}${bind} --port ${u.port || (https ? 443 : 80)}${prefix ? ` --prefix ${prefix}` : ''}` +
    (https ? ' behind your HTTPS front end (serve speaks plain HTTP)' : '')
  )
}

/** What to say beside serveCommand when the URL names a host: which address to bind is not known here. */
export function serveBindHint(pxeUrl: string): string | null {
  const u = new URL(pxeUrl)
  if (u.protocol === 'https:' || isIP(u.hostname.replace(/^\[(.*)\]$/, '$1')) !== 0) return null
  return `add --bind with the address ${u.hostname} has on this machine, so that only the install network reaches the kickstart`
}

/** What a build reads once, before its output transaction starts. */
export interface BuildInputs {
  epoch: number
  cacheDir: string
  /** The stack images (resolveStack: the lock with the config's registry.images), for the payload and the plan */
  stack: StackImage[]
}

export function readBuildInputs(opts: { cache?: string }, c: Config): BuildInputs {
  return { epoch: buildEpoch(), cacheDir: opts.cache ? resolve(opts.cache) : defaultCacheDir(), stack: resolveStack(c) }
}

/** Where a build writes: the transaction's temp directory and the scratch inside it. */
export interface BuildDirs {
  /** The temp directory, renamed to dest when the build succeeds */
  dir: string
  /** The final destination */
  dest: string
  /** Scratch (dir/.work): removed before the manifest, never an output */
  work: string
  /** The assembled payload, read by every medium */
  payloadDir: string
  /** Hashes of finished media, started by hashEarly(), for the manifest */
  early: Map<string, Promise<PinnedHash | null>>
}

/**
 * Start hashing a finished output (path relative to dirs.dir) alongside the
 * next stages, while it is still in the page cache: the manifest would
 * otherwise read every medium again at the end, from disk once the media
 * are bigger than the memory. Failures only mean the manifest hashes it.
 */
export function hashEarly(dirs: BuildDirs, rel: string, signal: AbortSignal): void {
  dirs.early.set(
    rel,
    hashPinned(join(dirs.dir, rel), signal).catch(() => null),
  )
}

/**
 * Run the stages inside one output transaction. Scratch files (the media
 * writers' os.tmpdir(), skopeo's TMPDIR) go inside the output's temp dir: on
 * the file system whose free space was checked, and removed with it even on a
 * hard exit (a second Ctrl-C). After a Ctrl-C the error says so, and that
 * nothing was written.
 */
export async function withBuildOutput<T>(output: string, ctx: Ctx, stages: (d: BuildDirs) => Promise<T>): Promise<T> {
  const savedTmpdir = process.env.TMPDIR
  return writeOutputDir(output, async ({ dir, dest }) => {
    const work = join(dir, '.work')
    await mkdir(join(work, 'tmp'), { recursive: true })
    process.env.TMPDIR = join(work, 'tmp')
    return stages({ dir, dest, work, payloadDir: join(work, 'payload'), early: new Map() })
  })
    .catch((e: unknown) => {
      if (ctx.signal.aborted) throw new FailureError(`interrupted; nothing was written to ${output}`)
      throw e
    })
    .finally(() => {
      if (savedTmpdir === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = savedTmpdir
    })
}

/**
 * The payload: the stack's and the config's images from the cache into
 * dirs.payloadDir, with every image of the config's oc-mirror archives
 * (imported into the cache first); what is missing is warned about.
 */
export async function buildPayload(
  ctx: Ctx,
  inputs: BuildInputs,
  dirs: BuildDirs,
  o: { config: Config; allowMissing: boolean; configPath?: string; note?: string; loaded?: Pick<LoadedConfig, 'file' | 'text'> },
): Promise<AssembleResult> {
  const { stack, cacheDir } = inputs
  const ocMirror = await importOcMirrorArchives(ctx, cacheDir, o)
  ctx.log.step(
    `payload: ${stack.length} stack image(s), ${o.config.content.images.length} content image(s)` +
      (ocMirror.content.images.length ? `, ${ocMirror.content.images.length} from oc-mirror archives` : '') +
      ` from ${cacheDir}${o.note ? ` (${o.note})` : ''}`,
  )
  const payload = await assemblePayload({
    cacheDir,
    stack,
    content: o.config.content.images,
    outDir: dirs.payloadDir,
    allowMissing: o.allowMissing,
    ...(o.configPath ? { configPath: o.configPath } : {}),
    ...(ocMirror.content.images.length || ocMirror.content.releaseSignatures.length ? { ocMirror: ocMirror.content } : {}),
    signal: ctx.signal,
  })
  for (const m of payload.missing) ctx.log.warn(`image missing from the cache: ${m}`)
  // For the manifest's missingImages and the summary of what the build still needs
  payload.missing.push(...ocMirror.missing.map((m) => `oc-mirror archive ${m}`), ...ocMirror.leftOut)
  return payload
}

/** content.ocMirrorArchives into the cache (payload/ocmirror-payload.ts); skipped repositories are warned about. */
async function importOcMirrorArchives(
  ctx: Ctx,
  cacheDir: string,
  o: { config: Config; allowMissing: boolean; loaded?: Pick<LoadedConfig, 'file' | 'text'> },
): Promise<OcMirrorForBuild & { leftOut: string[] }> {
  const archives = o.config.content.ocMirrorArchives
  if (archives.length) ctx.log.step(`oc-mirror: ${archives.length} archive(s) into ${cacheDir}`)
  const r = await ocMirrorForBuild({
    cacheDir,
    archives,
    allowMissing: o.allowMissing,
    field: (i, message) =>
      o.loaded ? new ConfigError([diagnosticAt(o.loaded, ['content', 'ocMirrorArchives', i], message)]) : new UserError(`content.ocMirrorArchives[${i}]: ${message}`),
  })
  for (const run of r.runs) ctx.log.info(`oc-mirror run ${run.iscTime ?? '(no isc_* file)'}: ${run.chunks.length} chunk(s) in ${run.label}`)
  for (const s of r.skipped) ctx.log.warn(`oc-mirror: skipped ${s.repo}:${s.tag} (${s.digest}): ${s.reason}`)
  for (const m of r.missing) ctx.log.warn(`oc-mirror archive missing: ${m}`)
  const leftOut = withoutSparseIndexes(r, o.allowMissing)
  for (const m of leftOut) ctx.log.warn(`oc-mirror image left out: ${m}`)
  return { ...r, leftOut }
}

/**
 * Indexes some platforms of which oc-mirror's platforms filter left out
 * cannot reach the registries the appliance runs: distribution 2.8 and Quay
 * before 3.17 refuse an index whose images are not all there (README,
 * "Multi-architecture images and their digests"), and pushing the platforms
 * kept as images of their own would change the digest clusters pull. So the
 * build refuses them rather than a first boot that fails at them (first
 * boot can push them: set SPARSE_INDEXES_PUSHABLE once the registry takes
 * them). With allowMissing they are left out; returns what was.
 */
function withoutSparseIndexes(r: OcMirrorForBuild, allowMissing: boolean): string[] {
  if (SPARSE_INDEXES_PUSHABLE) return []
  const sparse = r.content.images.filter((i) => i.absent?.length)
  if (!sparse.length) return []
  const names = sparse.map((i) => `${i.repo}:${i.tag} (${i.digest}, ${i.absent!.length} platform(s) left out)`)
  if (!allowMissing) {
    throw new UserError(
      `${sparse.length} image(s) of the oc-mirror archives are indexes some platforms of which oc-mirror's platforms filter left out: ${names.join(', ')}. ` +
        'The registry the appliance runs refuses such an index, and pushing only the platforms kept would change the digest clusters pull it by',
      'mirror these images with every platform (no platforms filter for them) and build again, or build with --allow-missing to leave them out',
    )
  }
  r.content.images = r.content.images.filter((i) => !i.absent?.length)
  return names.map((n) => `content ${n}: an index with platforms left out, from an oc-mirror archive`)
}

/** Versions of node and of the tools that wrote the media, for the manifest. */
async function toolVersions(): Promise<Record<string, string>> {
  const tools: Record<string, string> = { node: process.version }
  for (const t of ['xorriso', 'skopeo']) {
    const v = await toolVersion(t)
    if (v) tools[t] = v
  }
  return tools
}

/**
 * The last stage: remove the scratch, then manifest.json and SHA256SUMS over
 * every output. `host` is the config whose host the manifest names.
 */
export async function writeBuildManifest(
  dirs: BuildDirs,
  m: {
    loaded: LoadedConfig
    host: Config
    epoch: number
    demo: boolean
    payload: AssembleResult
    baseIso?: BuildManifest['baseIso']
    signal: AbortSignal
  },
): Promise<BuildManifest> {
  await rm(dirs.work, { recursive: true, force: true })
  const tools = await toolVersions()
  const { host, registry } = m.host
  const manifest = await writeManifest(
    dirs.dir,
    {
      schema: 'mirror-appliance/manifest/v1',
      builder: { version: VERSION, node: process.version },
      config: { file: m.loaded.file, digest: m.loaded.digest },
      host: { hostname: host.hostname, rhel: host.rhel, flavor: registry.flavor, port: registry.port },
      epoch: m.epoch,
      demo: m.demo,
      images: m.payload.images,
      missingImages: m.payload.missing,
      ...(m.baseIso ? { baseIso: m.baseIso } : {}),
      tools,
    },
    dirs.early,
  )
  // Steps that cannot be aborted (hashing the outputs) may have run past a
  // Ctrl-C: do not put the output in place after the user asked to stop.
  if (m.signal.aborted) throw new FailureError('interrupted')
  return manifest
}

// The stages a single-host build (commands/build.ts) and a fleet build
// (fleet/build.ts) share, so that both check, log and write alike: refusing
// with every problem at once, the output transaction with its scratch inside,
// the payload, and the manifest written last.

import { mkdir, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Ctx } from '../cli.js'
import { VERSION } from '../cli.js'
import type { LoadedConfig } from '../config/load.js'
import type { Config } from '../config/types.js'
import { FailureError, UserError } from '../errors.js'
import { toolVersion } from '../exec.js'
import { hashPinned, type PinnedHash } from '../hash.js'
import { writeManifest, type BuildManifest } from '../manifest.js'
import { writeOutputDir } from '../output.js'
import { assemblePayload, type AssembleResult } from '../payload/assemble.js'
import { defaultCacheDir } from '../payload/cli.js'
import { resolveStack, type StackImage } from '../payload/lock.js'
import { buildEpoch } from '../plan/plan.js'
import { normalizeBaseUrl } from '../media/pxe.js'

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
    problems.push(`--pxe-url: ${e.message}`)
    return { wantPxe }
  }
}

/** The `serve` command under which a tree's URLs resolve: port and path prefix from the URL it was built for. */
export function serveCommand(treeDir: string, pxeUrl: string): string {
  const u = new URL(pxeUrl)
  const https = u.protocol === 'https:'
  const prefix = u.pathname.replace(/\/+$/, '')
  return (
    `mirror-appliance serve ${treeDir} --port ${u.port || (https ? 443 : 80)}${prefix ? ` --prefix ${prefix}` : ''}` +
    (https ? ' behind your HTTPS front end (serve speaks plain HTTP)' : '')
  )
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

/** The payload: the stack's and the config's images from the cache into dirs.payloadDir; what is missing is warned about. */
export async function buildPayload(
  ctx: Ctx,
  inputs: BuildInputs,
  dirs: BuildDirs,
  o: { config: Config; allowMissing: boolean; configPath?: string; note?: string },
): Promise<AssembleResult> {
  const { stack, cacheDir } = inputs
  ctx.log.step(
    `payload: ${stack.length} stack image(s), ${o.config.content.images.length} content image(s) from ${cacheDir}${o.note ? ` (${o.note})` : ''}`,
  )
  const payload = await assemblePayload({
    cacheDir,
    stack,
    content: o.config.content.images,
    outDir: dirs.payloadDir,
    allowMissing: o.allowMissing,
    ...(o.configPath ? { configPath: o.configPath } : {}),
    signal: ctx.signal,
  })
  for (const m of payload.missing) ctx.log.warn(`image missing from the cache: ${m}`)
  return payload
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

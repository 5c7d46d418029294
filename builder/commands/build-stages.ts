// The stages of a build that are not media: refusing with every problem at
// once, the output transaction with its scratch inside, the payload
// (assembled once for every host of the site), and the manifest written
// last. The pipeline that calls them, host by host, is build.ts.

import { mkdir, rm } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import type { Ctx } from '../context.js'
import { VERSION } from '../context.js'
import type { LoadedConfig } from '../config/load.js'
import type { Config } from '../config/types.js'
import type { BuildOpts } from '../config/flags.js'
import type { SiteHostPlan, SitePlan } from '../plan/site.js'
import { FailureError, UserError } from '../errors.js'
import { toolVersion } from '../exec.js'
import type { ToolNeed } from '../tool-needs.js'
import { hashPinned, type PinnedHash } from '../hash.js'
import { writeManifest, type BuildManifest, type ManifestHost } from '../manifest.js'
import { writeOutputDir } from '../output.js'
import { assemblePayload, type AssembleResult } from '../payload/assemble.js'
import { ocMirrorForBuild, SPARSE_INDEXES_PUSHABLE, type OcMirrorForBuild } from '../payload/ocmirror-payload.js'
import { ConfigError } from '../config/diagnostics.js'
import { diagnosticAt } from '../config/load.js'
import { defaultCacheDir } from '../context.js'
import { resolveStack, type StackImage } from '../payload/lock.js'
import { laysContentTree } from '../registry/hostspec.js'
import type { VolumeFigures } from '../payload/data-volume.js'
import { checkDataVolume, dataVolumeError } from './data-volume-check.js'
import { buildEpoch } from '../plan/plan.js'

/** What the checks settled: the stages read this, not the flags and the config again. */
export interface Wanted {
  /** Built from the embedded default config */
  demo: boolean
  /** Images may be missing from the cache (--allow-missing, or a demo) */
  allowMissing: boolean
  /** The RHEL ISO to remaster, and to take the PXE tree's and the qcow2 install's installer from */
  isoBase?: string
  /** fileStamp(isoBase) once the checks passed */
  baseStamp?: string
  /** Remaster isoBase into appliance.iso: a site of one (a fleet's ISO is only its PXE tree's installer) */
  remaster: boolean
  oemdrv: boolean
  /** The payload on a medium of its own, payload.iso, beside OEMDRVs holding only ks.cfg (a fleet) */
  payloadMedium: boolean
  /** Where the PXE tree will be served from; set only when a PXE tree is wanted */
  pxeUrl?: string
  qcow2: boolean
  /** The RHEL KVM guest image the qcow2 is made from (else it is installed from isoBase) */
  baseImage?: string
  bundle: boolean
  /** Outputs left out of a demo for want of a tool, said after the summary */
  skipped: string[]
  /** The programs the writers of these outputs declare, checked on this machine */
  tools: ToolNeed[]
}

/** The build of a planned site: what every stage reads. */
export interface SiteBuild {
  ctx: Ctx
  opts: BuildOpts
  loaded: LoadedConfig
  want: Wanted
  inputs: BuildInputs
  dirs: BuildDirs
  site: SitePlan
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
  o: {
    config: Config
    allowMissing: boolean
    configPath?: string
    note?: string
    loaded?: Pick<LoadedConfig, 'file' | 'text'>
    /** The hosts the payload is for: their data volumes are checked against it */
    hosts?: SiteHostPlan[]
  },
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
    // a fleet's hosts share the registry section: one answer for the site
    registryTree: laysContentTree(o.config),
    ...(o.configPath ? { configPath: o.configPath } : {}),
    ...(ocMirror.content.images.length || ocMirror.content.releaseSignatures.length ? { ocMirror: ocMirror.content } : {}),
    signal: ctx.signal,
  })
  for (const m of payload.missing) ctx.log.warn(`image missing from the cache: ${m}`)
  // the figures of the tree plan assembly made: the payload is not read again
  if (o.hosts) checkDataVolumes(ctx, payload.volume, o.hosts)
  // For the manifest's missingImages and the summary of what the build still needs
  payload.missing.push(...ocMirror.missing.map((m) => `oc-mirror archive ${m}`), ...ocMirror.leftOut)
  return payload
}

/** Each host's data volume against the payload's figures (data-volume-check.ts): said for each, refused when one is too small. */
function checkDataVolumes(ctx: Ctx, figures: VolumeFigures, hosts: SiteHostPlan[]): void {
  const tooSmall = []
  const said = new Set<string>()
  for (const h of hosts) {
    const check = checkDataVolume(h.config, figures)
    // a fleet's hosts mostly share their disk: each distinct figure said once
    if (!said.has(check.summary)) ctx.log.info(check.summary)
    said.add(check.summary)
    if (!check.fits) tooSmall.push({ hostname: h.config.host.hostname, config: h.config, check })
  }
  if (tooSmall.length) throw dataVolumeError(tooSmall)
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
      o.loaded
        ? new ConfigError([diagnosticAt(o.loaded, ['content', 'ocMirrorArchives', i], message)])
        : new UserError(`content.ocMirrorArchives[${i}]: ${message}`),
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

/** Versions of node and of the tools that wrote the media (those their writers declare), for the manifest. */
async function toolVersions(needs: readonly ToolNeed[]): Promise<Record<string, string>> {
  const tools: Record<string, string> = { node: process.version }
  for (const t of new Set(needs.map((n) => n.tool))) {
    const v = await toolVersion(t)
    if (v) tools[t] = v
  }
  return tools
}

/** What the manifest says of a host: its config's facts, and where its outputs and its rendered files are. */
function manifestHost(h: SiteHostPlan): ManifestHost {
  const { host, registry } = h.config
  return {
    hostname: host.hostname,
    rhel: host.rhel,
    flavor: registry.flavor,
    port: registry.port,
    ...(h.fleet ? { role: h.fleet.role, address: `${h.fleet.address}/${h.fleet.prefix}`, mac: h.fleet.mac, disk: host.disk.device } : {}),
    dir: h.dir,
    render: join(h.dir, 'host'),
  }
}

/**
 * The last stage: remove the scratch, then manifest.json and SHA256SUMS over
 * every output, naming every host of the site.
 */
export async function writeBuildManifest(
  dirs: BuildDirs,
  m: {
    loaded: LoadedConfig
    hosts: SiteHostPlan[]
    epoch: number
    demo: boolean
    payload: AssembleResult
    baseIso?: BuildManifest['baseIso']
    /** The programs the build's writers declared */
    tools: readonly ToolNeed[]
    signal: AbortSignal
  },
): Promise<BuildManifest> {
  await rm(dirs.work, { recursive: true, force: true })
  const tools = await toolVersions(m.tools)
  const hosts = m.hosts.map(manifestHost)
  const { hostname, rhel, flavor, port } = hosts[0]!
  const manifest = await writeManifest(
    dirs.dir,
    {
      schema: 'mirror-appliance/manifest/v1',
      builder: { version: VERSION, node: process.version },
      config: { file: m.loaded.file, digest: m.loaded.digest },
      host: { hostname, rhel, flavor, port },
      hosts,
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

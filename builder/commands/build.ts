// build: one pipeline for every site, as a flat list of stages over one
// output transaction (mkosi's run_verb over its images). The config is
// loaded with the build's flags merged in, so every refusal is a config
// diagnostic (config/rules.ts); inputs and tools are checked and reported at
// once; then inside a temp directory renamed into place at the end: the site
// is planned once (CA, secrets per host), each host rendered, the payload
// assembled once, each host's hand-off and media written, then the media the
// hosts share, and the manifest naming every host. A config without `fleet`
// is a site of one and keeps the flat layout; a fleet's hosts go under
// hosts/<name>/. The stages are in build-stages.ts and build-media.ts.

import { SEED_WARNING } from './render.js'
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Ctx } from '../context.js'
import { formatDiagnostic } from '../config/diagnostics.js'
import type { BuildOpts } from '../config/flags.js'
import { DEFAULT_CONFIG_NAME, loadConfig, type LoadedConfig } from '../config/load.js'
import { normalizeBaseUrl } from '../config/pxe-url.js'
import { formatBytes } from '../log.js'
import type { BuildManifest } from '../manifest.js'
import type { PxeResult } from '../media/pxe.js'
import { planSite, type SitePlan } from '../plan/site.js'
import {
  checkBaseUnchanged,
  fileStamp,
  remasterBaseIso,
  renderHostFiles,
  writeBundle,
  writeHandoffs,
  writeOemdrv,
  writePayloadMedium,
  writePxeTree,
  writeQcow2,
} from './build-media.js'
import {
  buildPayload,
  readBuildInputs,
  refuseProblems,
  serveBindHint,
  serveCommand,
  withBuildOutput,
  writeBuildManifest,
  type BuildDirs,
  type BuildInputs,
  type SiteBuild,
  type Wanted,
} from './build-stages.js'
import { writeFleetSummary, type FleetRow } from './fleet-summary.js'
import { buildNeeds, toolProblems, type BuildPart } from './tool-check.js'
import { certificateLines, writeSiteSecrets } from './secrets-out.js'

export async function build(opts: BuildOpts, ctx: Ctx): Promise<number> {
  const loaded = loadConfig(opts.config, { build: opts })
  for (const w of loaded.warnings) ctx.log.warn(formatDiagnostic(w))
  if (opts.seed !== undefined) ctx.log.warn(SEED_WARNING)
  const want = await checkInputs(opts, loaded)
  const inputs = readBuildInputs(opts, loaded.config)
  const fleetSize = loaded.config.fleet?.hosts.length
  ctx.log.step(
    fleetSize !== undefined
      ? `building a fleet of ${fleetSize} host(s) from ${loaded.file} into ${opts.output}`
      : `building ${want.demo ? 'the demo appliance (embedded default config)' : loaded.file} into ${opts.output}`,
  )
  let site: SitePlan | undefined
  let fleet: { table: string; rows: FleetRow[] } | undefined
  const manifest = await withBuildOutput(opts.output, ctx, async (dirs) => {
    site = planSiteInto(ctx, opts, loaded, inputs, dirs)
    const b: SiteBuild = { ctx, opts, loaded, want, inputs, dirs, site }
    ctx.log.step(`render: kickstart, Butane, Ignition, host files${site.fleet ? ' of each host' : ''}`)
    for (const h of site.hosts) renderHostFiles(dirs.dir, site, h)
    const payload = await buildPayload(ctx, inputs, dirs, {
      config: loaded.config,
      loaded,
      allowMissing: want.allowMissing,
      hosts: site.hosts,
      ...(opts.config ? { configPath: opts.config } : {}),
      ...(site.fleet ? { note: 'stored once for all hosts' } : {}),
    })
    // Before the media: the payload carries the hand-off to each host.
    await writeHandoffs(b, payload)
    if (want.payloadMedium) await writePayloadMedium(b)
    let baseIso: BuildManifest['baseIso']
    for (const h of site.hosts) {
      if (want.oemdrv) await writeOemdrv(b, h)
      if (want.remaster) baseIso = await remasterBaseIso(b, h, want.isoBase!)
    }
    const pxe = want.isoBase && want.pxeUrl ? await writePxeTree(b, want.isoBase, want.pxeUrl) : undefined
    if (pxe) tellHowToServe(b, pxe)
    checkBaseUnchanged(want)
    for (const h of site.hosts) {
      if (want.qcow2) await writeQcow2(b, h)
      if (want.bundle) await writeBundle(b, h)
    }
    if (site.fleet) fleet = writeFleetSummary(b, pxe)
    return writeBuildManifest(dirs, {
      loaded,
      hosts: site.hosts,
      epoch: inputs.epoch,
      demo: want.demo,
      payload,
      ...(baseIso ? { baseIso } : {}),
      tools: want.tools,
      signal: ctx.signal,
    })
  })
  if (fleet) printFleetSummary(ctx, opts, want, manifest, site!, fleet)
  else printSummary(ctx, opts, want, manifest, site!)
  return 0
}

const isFile = (path: string) => existsSync(path) && statSync(path).isFile()

/**
 * Check inputs and tools; every problem is reported at once, and nothing is
 * written. What the config (with the flags merged in) asks for was checked
 * by the loader's rules: here only what is outside it. The tools are those
 * the writers of the asked-for outputs declare (tool-check.ts).
 */
async function checkInputs(opts: BuildOpts, loaded: LoadedConfig): Promise<Wanted> {
  const c = loaded.config
  const o = c.outputs
  const fleet = c.fleet !== undefined
  const demo = loaded.file === DEFAULT_CONFIG_NAME
  const problems: string[] = []
  const skipped: string[] = []
  const isoBase = o.iso?.base
  const baseImage = o.qcow2?.baseImage
  if (isoBase && !isFile(isoBase)) problems.push(`base ISO ${isoBase}: no such file`)
  if (baseImage && !isFile(baseImage)) problems.push(`base image ${baseImage}: no such file`)
  if (opts.pullSecret && !isFile(opts.pullSecret)) problems.push(`--pull-secret ${opts.pullSecret}: no such file`)
  let oemdrv = o.oemdrv
  // The demo builds what this machine can: an OEMDRV it has no tools for is left out, and said so.
  const oemdrvLacks = oemdrv && demo && !isoBase ? await toolProblems(buildNeeds(['oemdrv'])) : []
  if (oemdrvLacks.length) {
    skipped.push(...oemdrvLacks.map((p) => `oemdrv.iso: ${p}`))
    oemdrv = false
  }
  const want: Wanted = {
    demo,
    allowMissing: opts.allowMissing || demo,
    // The base ISO must not change while we read it (a copy still running, a
    // download being resumed): the remastered ISO would mix two versions.
    ...(isoBase ? { isoBase, baseStamp: fileStamp(isoBase) } : {}),
    // A site of one remasters the ISO; a fleet's is only its PXE tree's installer.
    remaster: isoBase !== undefined && !fleet,
    oemdrv,
    payloadMedium: fleet && oemdrv,
    // The URL passed the config's rules; normalized, the kickstart's URLs have no '//'.
    ...(o.pxe ? { pxeUrl: normalizeBaseUrl(o.pxe.baseUrl) } : {}),
    qcow2: o.qcow2 !== undefined,
    ...(baseImage ? { baseImage } : {}),
    bundle: o.bundle,
    skipped,
    tools: [],
  }
  want.tools = buildNeeds(buildParts(want))
  problems.push(...(await toolProblems(want.tools)))
  refuseProblems(problems)
  return want
}

/** The parts of the build the checks settled on, whose writers' tools it needs. */
function buildParts(w: Wanted): BuildPart[] {
  const parts: BuildPart[] = ['payload']
  if (w.oemdrv) parts.push('oemdrv')
  if (w.remaster) parts.push('remaster')
  if (w.isoBase && w.pxeUrl) parts.push('pxe')
  if (w.qcow2) parts.push(w.baseImage ? 'qcow2FromImage' : 'qcow2ByInstall')
  if (w.bundle) parts.push('bundle')
  return parts
}

/** The site planned (secrets reused from the destination's secrets/), and secrets/ written. */
function planSiteInto(ctx: Ctx, opts: BuildOpts, loaded: LoadedConfig, inputs: BuildInputs, dirs: BuildDirs): SitePlan {
  ctx.log.step(loaded.config.fleet ? 'plan: one CA, secrets and a server certificate per host' : 'plan: secrets, PKI, host spec')
  const site = planSite(loaded, {
    epoch: inputs.epoch,
    stack: inputs.stack,
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    secretsDir: join(dirs.dest, 'secrets'),
  })
  writeSiteSecrets(join(dirs.dir, 'secrets'), site)
  return site
}

/** How to serve the PXE tree, and what its kickstarts hold. */
function tellHowToServe(b: SiteBuild, pxe: PxeResult): void {
  const { log } = b.ctx
  const url = b.want.pxeUrl!
  const serve = serveCommand(join(b.opts.output, 'pxe'), url)
  log.info(b.site.fleet ? `PXE: one tree for the fleet; serve it with: ${serve}` : `PXE: serve the tree with: ${serve}`)
  const hint = serveBindHint(url)
  if (hint) log.info(`PXE: ${hint}`)
  if (b.site.fleet) {
    log.info(`PXE: each hosts/<name>/ks.cfg holds that host's TLS key and passwords: stop serve once the hosts are installed`)
    log.info(
      '  per-MAC entries pxe/pxe/grub.cfg-01-<mac> (UEFI), pxe/pxe/pxelinux.cfg/01-<mac> (BIOS), pxe/pxe/boot.ipxe (iPXE); machines not in the fleet boot their local disk',
    )
    return
  }
  log.info(`PXE: its ks.cfg holds the registry's TLS key and passwords: stop serve once the host is installed`)
  log.info(`GRUB2 (UEFI) snippet, also in pxe/${pxe.files.grub}:\n${pxe.snippets.grub}`)
  log.info(`iPXE snippet, also in pxe/${pxe.files.ipxe}:\n${pxe.snippets.ipxe}`)
  log.info(`pxelinux (BIOS) snippet, also in pxe/${pxe.files.pxelinux}:\n${pxe.snippets.pxelinux}`)
}

/** The outputs (or the manifest with --json), what was skipped, and what a demo or incomplete build still needs. */
function printSummary(ctx: Ctx, opts: BuildOpts, want: Wanted, result: BuildManifest, site: SitePlan): void {
  const { log } = ctx
  if (ctx.json) {
    ctx.out(JSON.stringify(result, null, 2))
    return
  }
  log.info('')
  log.info(`built into ${opts.output}:`)
  for (const o of result.outputs.filter((o) => !o.path.includes('/') || o.path.startsWith('openshift/') || /^host\/[^/]+$/.test(o.path))) {
    log.info(`  ${o.path.padEnd(34)} ${formatBytes(o.size).padStart(10)}`)
  }
  log.info(`  secrets/ (0700; credentials.txt, CA key: keep private, never put on media)`)
  // Reused: the media are byte-identical to the last build's (same config and SOURCE_DATE_EPOCH).
  log.info(`  ${certificateLines(site).join('\n  ')}`)
  for (const s of want.skipped) log.warn(`skipped ${s}`)
  if (want.demo || result.missingImages.length) {
    log.info('')
    log.info(
      want.demo ? 'This is a DEMO build; a production build still needs:' : 'This build is incomplete (--allow-missing); it still needs:',
    )
    if (want.demo) log.info('  - your own config: mirror-appliance init -o appliance.yaml, edit it, then build with -c appliance.yaml')
    if (result.missingImages.length) {
      log.info(`  - the stack images (${result.missingImages.join(', ')}) in the image cache: run on a connected machine`)
      log.info(`      mirror-appliance images fetch${opts.config ? ` -c ${opts.config}` : ''}`)
    }
    if (!want.isoBase && !want.baseImage)
      log.info(
        '  - a RHEL 8 DVD or boot ISO, to remaster into one unattended ISO: --iso rhel-8.10-x86_64-dvd.iso (or boot it unmodified with oemdrv.iso attached)',
      )
  }
}

/** A fleet's summary: the shared payload medium, the table of which medium boots which machine, and its secrets. */
function printFleetSummary(
  ctx: Ctx,
  opts: BuildOpts,
  want: Wanted,
  manifest: BuildManifest,
  site: SitePlan,
  fleet: { table: string; rows: FleetRow[] },
): void {
  const { log } = ctx
  if (ctx.json) {
    ctx.out(JSON.stringify({ manifest, table: fleet.table, hosts: fleet.rows }, null, 2))
    return
  }
  log.info('')
  if (want.oemdrv)
    log.info(
      `built a fleet of ${site.hosts.length} into ${opts.output}: payload.iso ${formatBytes(manifest.outputs.find((o) => o.path === 'payload.iso')?.size ?? 0)} (shared), one OEMDRV per host`,
    )
  for (const line of fleet.table.trimEnd().split('\n')) log.info(`  ${line}`)
  log.info("  secrets/ (0700): the fleet CA key and each host's credentials; never put on media")
  for (const line of certificateLines(site)) log.info(`  ${line}`)
}

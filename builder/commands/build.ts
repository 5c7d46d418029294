// build: the pipeline as a flat list of stages over one output transaction.
// Everything is checked first (inputs, tools, flags) and reported at once;
// then config → plan → render → payload → media → OpenShift hand-off →
// manifest, all inside a temp directory renamed into place at the end.
// The stages a fleet build shares are in build-stages.ts.

import { SEED_WARNING } from './render.js'
import { existsSync, statSync } from 'node:fs'
import { chmod, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Ctx } from '../context.js'
import { formatDiagnostic } from '../config/diagnostics.js'
import { DEFAULT_CONFIG_NAME, loadConfig, type LoadedConfig } from '../config/load.js'
import { FailureError } from '../errors.js'
import { findTool, TOOL_PACKAGES } from '../exec.js'
import { formatBytes } from '../log.js'
import type { BuildManifest } from '../manifest.js'
import type { MediaProgress } from '../media/common.js'
import type { PxeSnippets } from '../media/pxe.js'
import { buildBundle, BUNDLE_NAME } from '../bundle/bundle.js'
import { buildOemdrv } from '../media/oemdrv.js'
import { writeHandoffFromPayload } from '../openshift.js'
import type { AssembleResult } from '../payload/assemble.js'
import { planAppliance } from '../plan/plan.js'
import { caSummary, serverCertSummary } from '../plan/pki.js'
import type { Plan } from '../plan/types.js'
import { renderKickstart } from '../render/kickstart.js'
import { renderHost, writeTree } from '../render/host.js'
import type { BuildOpts } from './build-stages.js'
import { buildPayload, checkPxe, hashEarly, readBuildInputs, refuseProblems, serveBindHint, serveCommand, withBuildOutput, writeBuildManifest, type BuildDirs, type BuildInputs } from './build-stages.js'
import { writeSecrets } from './secrets-out.js'


/** What the checks settled: the stages read this, not the flags and the config again. */
interface Wanted {
  /** Built from the embedded default config */
  demo: boolean
  /** Images may be missing from the cache (--allow-missing, or a demo) */
  allowMissing: boolean
  /** The RHEL ISO to remaster, and to take the PXE tree's and the qcow2 install's installer from */
  isoBase?: string
  /** fileStamp(isoBase) once the checks passed */
  baseStamp?: string
  oemdrv: boolean
  /** Where the PXE tree will be served from; set only when a PXE tree is wanted */
  pxeUrl?: string
  qcow2: boolean
  /** The RHEL KVM guest image the qcow2 is made from (else it is installed from isoBase) */
  baseImage?: string
  bundle: boolean
  /** Outputs left out of a demo for want of a tool, said after the summary */
  skipped: string[]
}

/** One host's build: what every stage reads. */
interface HostBuild {
  ctx: Ctx
  opts: BuildOpts
  loaded: LoadedConfig
  want: Wanted
  inputs: BuildInputs
  dirs: BuildDirs
}

/** How to start the qcow2 in a VM; they name the disk by its final path. */
interface Qcow2Hints {
  domainXml: string
  virtInstall: string
}

export async function build(opts: BuildOpts, ctx: Ctx): Promise<number> {
  const loaded = loadConfig(opts.config)
  for (const w of loaded.warnings) ctx.log.warn(formatDiagnostic(w))
  if (opts.seed !== undefined) ctx.log.warn(SEED_WARNING)
  if (loaded.config.fleet) return buildFleetCommand(opts, ctx, loaded)

  const want = await checkInputs(opts, loaded)
  const inputs = readBuildInputs(opts, loaded.config)
  ctx.log.step(`building ${want.demo ? 'the demo appliance (embedded default config)' : loaded.file} into ${opts.output}`)
  let serverCert = ''
  const manifest = await withBuildOutput(opts.output, ctx, async (dirs) => {
    const b: HostBuild = { ctx, opts, loaded, want, inputs, dirs }
    const plan = planHost(b)
    serverCert = [serverCertSummary(plan.pki), caSummary(plan.pki)].filter(Boolean).join('\n  ')
    renderHostFiles(b, plan)
    const payload = await buildPayload(ctx, inputs, dirs, { config: loaded.config, loaded, allowMissing: want.allowMissing, ...(opts.config ? { configPath: opts.config } : {}) })
    // Before the media: the payload carries the hand-off to the host.
    await writeHandoff(b, plan, payload)
    if (want.oemdrv) await writeOemdrv(b, plan)
    const baseIso = want.isoBase ? await remasterBaseIso(b, plan, want.isoBase) : undefined
    const pxe = want.isoBase && want.pxeUrl ? await writePxeTree(b, plan, want.isoBase, want.pxeUrl) : undefined
    checkBaseUnchanged(want)
    const qcow2 = want.qcow2 ? await writeQcow2(b, plan) : undefined
    if (want.bundle) await writeBundle(b, plan)
    await tellHowToBoot(b, { qcow2, pxe })
    return writeBuildManifest(dirs, { loaded, host: loaded.config, epoch: inputs.epoch, demo: want.demo, payload, ...(baseIso ? { baseIso } : {}), signal: ctx.signal })
  })
  printSummary(ctx, opts, want, manifest, serverCert)
  return 0
}

/** A fleet: one payload medium, one OEMDRV per host (builder/fleet/build.ts). */
async function buildFleetCommand(opts: BuildOpts, ctx: Ctx, loaded: LoadedConfig): Promise<number> {
  const { buildFleet } = await import('../fleet/build.js')
  const r = await buildFleet(opts, ctx, loaded)
  if (ctx.json) ctx.out(JSON.stringify(r, null, 2))
  return 0
}

/** What changes when a file is written, replaced or truncated: any write updates mtime and ctime. */
function fileStamp(path: string): string {
  try {
    const s = statSync(path)
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`
  } catch (e) {
    return `gone: ${(e as Error).message}`
  }
}

/** xorriso reports percent and bytes written; the logger wants a total. */
const totalOf = (e: MediaProgress) => (e.percent > 0 ? Math.round((e.bytesWritten * 100) / e.percent) : undefined)

/** Check inputs, tools and flags; every problem is reported at once, and nothing is written. */
async function checkInputs(opts: BuildOpts, loaded: LoadedConfig): Promise<Wanted> {
  const c = loaded.config
  const demo = loaded.file === DEFAULT_CONFIG_NAME
  const problems: string[] = []
  const skipped: string[] = []
  const isoBase = opts.iso ? resolve(opts.iso) : c.outputs.iso?.base
  const wantOemdrv = opts.oemdrv ?? c.outputs.oemdrv
  if (isoBase && !(existsSync(isoBase) && statSync(isoBase).isFile())) problems.push(`base ISO ${isoBase}: no such file`)
  const { wantPxe, pxeUrl } = checkPxe(opts, c, isoBase, problems)
  const wantQcow2 = opts.qcow2 || c.outputs.qcow2 !== undefined
  const baseImage = opts.baseImage ? resolve(opts.baseImage) : c.outputs.qcow2?.baseImage
  if (opts.baseImage && !wantQcow2) problems.push('--base-image is only used with --qcow2')
  if (wantQcow2 && baseImage && !(existsSync(baseImage) && statSync(baseImage).isFile())) problems.push(`base image ${baseImage}: no such file`)
  if (wantQcow2 && !baseImage && !isoBase) {
    problems.push('--qcow2 needs either a RHEL 8 KVM guest image (--base-image rhel-8.x-x86_64-kvm.qcow2) or the RHEL ISO to install from (--iso BASE.iso)')
  }
  if (wantQcow2) {
    const tools = baseImage ? ['guestfish', 'qemu-img'] : ['qemu-system-x86_64', 'qemu-img']
    for (const tool of tools) if (!(await findTool(tool))) problems.push(`${tool} is needed for --qcow2: apt-get install ${TOOL_PACKAGES[tool] ?? tool}`)
  }
  if (opts.pullSecret && !(existsSync(opts.pullSecret) && statSync(opts.pullSecret).isFile())) problems.push(`--pull-secret ${opts.pullSecret}: no such file`)
  const needXorriso = wantOemdrv || isoBase !== undefined
  if (needXorriso && !(await findTool('xorriso'))) {
    if (demo && !isoBase) skipped.push('oemdrv.iso: xorriso is not installed (apt-get install xorriso)')
    else problems.push('xorriso is needed to write ISO media: apt-get install xorriso')
  }
  if (isoBase) {
    const missing: string[] = []
    for (const tool of ['mdir', 'mtype', 'mcopy']) if (!(await findTool(tool))) missing.push(tool)
    if (missing.length) problems.push(`${missing.join(', ')} (mtools) is needed to patch the ISO's EFI boot image: apt-get install mtools`)
  }
  refuseProblems(problems)
  return {
    demo,
    allowMissing: opts.allowMissing || demo,
    // The base ISO must not change while we read it (a copy still running, a
    // download being resumed): the remastered ISO would mix two versions.
    ...(isoBase ? { isoBase, baseStamp: fileStamp(isoBase) } : {}),
    oemdrv: wantOemdrv && !skipped.some((s) => s.startsWith('oemdrv.iso')),
    ...(wantPxe && pxeUrl ? { pxeUrl } : {}),
    qcow2: wantQcow2,
    ...(baseImage ? { baseImage } : {}),
    bundle: opts.bundle || c.outputs.bundle,
    skipped,
  }
}

/** secrets (reused from the destination's secrets/), PKI and host spec; secrets/ written. */
function planHost(b: HostBuild): Plan {
  b.ctx.log.step('plan: secrets, PKI, host spec')
  const { plan, stored } = planAppliance(b.loaded, { epoch: b.inputs.epoch, stack: b.inputs.stack, ...(b.opts.seed !== undefined ? { seed: b.opts.seed } : {}), secretsDir: join(b.dirs.dest, 'secrets') })
  writeSecrets(join(b.dirs.dir, 'secrets'), plan, stored)
  return plan
}

function renderHostFiles(b: HostBuild, plan: Plan): void {
  b.ctx.log.step('render: kickstart, Butane, Ignition, host files')
  writeTree(join(b.dirs.dir, 'host'), renderHost(plan, { source: 'cdrom' }))
}

/** oemdrv.iso: ks.cfg and the payload, for an unmodified RHEL ISO to find. */
async function writeOemdrv(b: HostBuild, plan: Plan): Promise<void> {
  const { log, signal } = b.ctx
  log.step('media: oemdrv.iso')
  const outFile = join(b.dirs.dir, 'oemdrv.iso')
  const p = log.progress('oemdrv.iso')
  await buildOemdrv({
    ksText: renderKickstart(plan, { source: 'oemdrv' }),
    payloadDir: b.dirs.payloadDir,
    outFile,
    epoch: b.inputs.epoch,
    signal,
    onProgress: (e: MediaProgress) => p.update(e.bytesWritten, totalOf(e)),
  })
  // Its ks.cfg lays down the registry's passwords and keys: private like host/ks.cfg.
  await chmod(outFile, 0o600)
  p.done()
  hashEarly(b.dirs, 'oemdrv.iso', signal)
}

/** appliance.iso: the RHEL ISO remastered to install unattended; returns what the manifest says of the base. */
async function remasterBaseIso(b: HostBuild, plan: Plan, isoBase: string): Promise<NonNullable<BuildManifest['baseIso']>> {
  const { log, signal } = b.ctx
  const c = b.loaded.config
  log.step(`media: remastering ${isoBase}`)
  const { remasterIso } = await import('../media/iso.js')
  const outFile = join(b.dirs.dir, 'appliance.iso')
  const p = log.progress('appliance.iso')
  const r = await remasterIso({
    baseIso: isoBase,
    outFile,
    ksText: renderKickstart(plan, { source: 'cdrom' }),
    payloadDir: b.dirs.payloadDir,
    epoch: b.inputs.epoch,
    force: b.opts.force,
    kernelArgs: c.host.fips ? ['fips=1'] : [],
    hashOutput: false, // the manifest hashes it, once
    hashCacheDir: b.inputs.cacheDir,
    signal,
    onProgress: (e: MediaProgress) => p.update(e.bytesWritten, totalOf(e)),
  })
  p.done()
  await chmod(outFile, 0o600) // carries the same ks.cfg secrets as oemdrv.iso
  hashEarly(b.dirs, 'appliance.iso', signal)
  if (r.baseSha256Cached) log.debug(`base ISO sha256 ${r.baseSha256} (remembered from an earlier build of this file version)`)
  for (const w of r.warnings) log.warn(w)
  return { path: isoBase, sha256: r.baseSha256, volumeId: r.volumeId }
}

/** pxe/: the installer from the ISO, the payload and a kickstart, served over HTTP. */
async function writePxeTree(b: HostBuild, plan: Plan, isoBase: string, pxeUrl: string): Promise<PxeSnippets> {
  b.ctx.log.step(`media: PXE tree for ${pxeUrl}`)
  const { buildPxeTree } = await import('../media/pxe.js')
  const pxe = await buildPxeTree({
    baseIso: isoBase,
    outDir: join(b.dirs.dir, 'pxe'),
    // The tree serves the ISO's contents under repo/ and the payload under appliance/.
    ksText: renderKickstart(plan, { source: 'url', url: `${pxeUrl}/repo`, payloadUrl: `${pxeUrl}/appliance` }),
    payloadDir: b.dirs.payloadDir,
    baseUrl: pxeUrl,
    epoch: b.inputs.epoch,
    signal: b.ctx.signal,
  })
  return pxe.snippets
}

/** The media read from the base ISO must all come from one version of it. */
function checkBaseUnchanged(want: Wanted): void {
  if (want.isoBase && fileStamp(want.isoBase) !== want.baseStamp) {
    throw new FailureError(
      `base ISO ${want.isoBase} changed while it was being read (size, time or inode differ from when the build started); the media would mix two versions, so nothing was written`,
      'wait until the ISO is completely copied or downloaded, then build again',
    )
  }
}

/** The disk every qcow2 way writes. */
interface Qcow2Disk {
  outFile: string
  sizeGiB: number
  compress: boolean
}

/** appliance.qcow2: from a RHEL KVM guest image, or by installing from the ISO in QEMU. */
async function writeQcow2(b: HostBuild, plan: Plan): Promise<Qcow2Hints | undefined> {
  const q = b.loaded.config.outputs.qcow2
  const disk: Qcow2Disk = { outFile: join(b.dirs.dir, 'appliance.qcow2'), sizeGiB: q?.sizeGiB ?? 100, compress: q?.compress ?? false }
  if (b.want.baseImage) return qcow2FromImage(b, plan, b.want.baseImage, disk)
  if (b.want.isoBase) await qcow2ByInstall(b, plan, b.want.isoBase, disk)
  return undefined
}

async function qcow2FromImage(b: HostBuild, plan: Plan, baseImage: string, disk: Qcow2Disk): Promise<Qcow2Hints> {
  const { log, signal } = b.ctx
  const { dir, dest } = b.dirs
  log.step(`media: appliance.qcow2 from ${baseImage} (libguestfs; 1-2 minutes under software emulation)`)
  const { buildQcow2FromImage } = await import('../media/qcow2.js')
  const { noCloudSeedFromPlan, qcow2HostSpec } = await import('../media/qcow2-host.js')
  const r = await buildQcow2FromImage({
    baseImage,
    ...disk,
    host: qcow2HostSpec(plan),
    payloadDir: b.dirs.payloadDir,
    cloudInit: { seed: noCloudSeedFromPlan(plan) },
    epoch: b.inputs.epoch,
    signal,
    onProgress: (e) => log.debug(`qcow2: ${e.step} (${e.percent}%)`),
  })
  for (const w of r.warnings) log.warn(w)
  // They name the disk by its path: the final one, not the temp directory's.
  return { domainXml: r.domainXml.replaceAll(dir, dest), virtInstall: r.virtInstall.replaceAll(dir, dest) }
}

/** Install for real: the same remaster with a kickstart that powers off at the end. */
async function qcow2ByInstall(b: HostBuild, plan: Plan, isoBase: string, disk: Qcow2Disk): Promise<void> {
  const { log, signal } = b.ctx
  log.step('media: appliance.qcow2 by running the unattended install in QEMU')
  const { remasterIso } = await import('../media/iso.js')
  const { buildQcow2ByInstall } = await import('../media/qcow2-install.js')
  const installIso = join(b.dirs.work, 'install.iso')
  await remasterIso({
    baseIso: isoBase,
    outFile: installIso,
    ksText: renderKickstart(plan, { source: 'cdrom', finish: 'poweroff' }),
    payloadDir: b.dirs.payloadDir,
    epoch: b.inputs.epoch,
    force: b.opts.force,
    kernelArgs: ['console=ttyS0,115200', ...(b.loaded.config.host.fips ? ['fips=1'] : [])],
    hashOutput: false,
    signal,
  })
  const r = await buildQcow2ByInstall({
    iso: installIso,
    ...disk,
    timeoutMs: Number(process.env.MIRROR_APPLIANCE_INSTALL_TIMEOUT_MIN ?? 240) * 60_000,
    signal,
    onSerialLine: (l) => log.debug(`install: ${l}`),
    onWarning: (w) => log.warn(w),
  })
  log.info(`installed in ${Math.round(r.seconds)} s with ${r.accel}`)
}

async function writeBundle(b: HostBuild, plan: Plan): Promise<void> {
  b.ctx.log.step(`bundle: ${BUNDLE_NAME} (payload, units, mirror-registryctl)`)
  await buildBundle({ plan, payloadDir: b.dirs.payloadDir, outFile: join(b.dirs.dir, BUNDLE_NAME), epoch: b.inputs.epoch, signal: b.ctx.signal })
  hashEarly(b.dirs, BUNDLE_NAME, b.ctx.signal)
}

/** openshift/ and, the same files, the payload's openshift/<hostname>/ that first boot installs on the host. */
async function writeHandoff(b: HostBuild, plan: Plan, payload: AssembleResult): Promise<void> {
  b.ctx.log.step('OpenShift hand-off: install-config snippet, mirror sets, catalog sources, release signatures, pull secret')
  const warnings = await writeHandoffFromPayload({
    outDir: join(b.dirs.dir, 'openshift'),
    plan,
    payload,
    payloadDir: b.dirs.payloadDir,
    ...(b.opts.pullSecret ? { userPullSecret: resolve(b.opts.pullSecret) } : {}),
  })
  for (const w of warnings) b.ctx.log.warn(`OpenShift hand-off: ${w}`)
}

/** appliance.xml for libvirt, and how to start the VM and serve the PXE tree. */
async function tellHowToBoot(b: HostBuild, hints: { qcow2: Qcow2Hints | undefined; pxe: PxeSnippets | undefined }): Promise<void> {
  const { log } = b.ctx
  const { output } = b.opts
  if (hints.qcow2) {
    await writeFile(join(b.dirs.dir, 'appliance.xml'), hints.qcow2.domainXml)
    log.info(`qcow2: define the VM with: virsh define ${join(output, 'appliance.xml')} (libvirt domain XML), or:\n  ${hints.qcow2.virtInstall}`)
  }
  if (hints.pxe && b.want.pxeUrl) {
    log.info(`PXE: serve the tree with: ${serveCommand(join(output, 'pxe'), b.want.pxeUrl)}`)
    const hint = serveBindHint(b.want.pxeUrl)
    if (hint) log.info(`PXE: ${hint}`)
    log.info(`PXE: its ks.cfg holds the registry's TLS key and passwords: stop serve once the host is installed`)
    log.info(`GRUB2 (UEFI) snippet, also in pxe/pxe/grub.cfg:\n${hints.pxe.grub}`)
    log.info(`iPXE snippet, also in pxe/pxe/boot.ipxe:\n${hints.pxe.ipxe}`)
    log.info(`pxelinux (BIOS) snippet, also in pxe/pxe/pxelinux.cfg/default:\n${hints.pxe.pxelinux}`)
  }
}

/** The outputs (or the manifest with --json), what was skipped, and what a demo or incomplete build still needs. */
function printSummary(ctx: Ctx, opts: BuildOpts, want: Wanted, result: BuildManifest, serverCert: string): void {
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
  log.info(`  ${serverCert}`)
  for (const s of want.skipped) log.warn(`skipped ${s}`)
  if (want.demo || result.missingImages.length) {
    log.info('')
    log.info(want.demo ? 'This is a DEMO build; a production build still needs:' : 'This build is incomplete (--allow-missing); it still needs:')
    if (want.demo) log.info('  - your own config: mirror-appliance init -o appliance.yaml, edit it, then build with -c appliance.yaml')
    if (result.missingImages.length) {
      log.info(`  - the stack images (${result.missingImages.join(', ')}) in the image cache: run on a connected machine`)
      log.info(`      mirror-appliance images fetch${opts.config ? ` -c ${opts.config}` : ''}`)
    }
    if (!want.isoBase && !want.baseImage) log.info('  - a RHEL 8 DVD or boot ISO, to remaster into one unattended ISO: --iso rhel-8.10-x86_64-dvd.iso (or boot it unmodified with oemdrv.iso attached)')
  }
}

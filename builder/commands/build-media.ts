// The build's per-host stages (render, OpenShift hand-off, OEMDRV, remastered
// ISO, qcow2, bundle), each written into the host's directory of the output
// (the output itself for a site of one, hosts/<name>/ for a fleet's hosts),
// and the media the hosts share (a fleet's payload.iso, the PXE tree). The
// pipeline that calls them in order is build.ts.

import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { buildBundle, BUNDLE_NAME } from '../bundle/bundle.js'
import { FailureError } from '../errors.js'
import type { BuildManifest } from '../manifest.js'
import type { MediaProgress } from '../media/common.js'
import { buildOemdrv, buildPayloadMedium, PAYLOAD_LABEL } from '../media/oemdrv.js'
import type { PxeResult } from '../media/pxe.js'
import { writeHandoffFromPayload } from '../openshift.js'
import type { AssembleResult } from '../payload/assemble.js'
import type { SiteHostPlan, SitePlan } from '../plan/site.js'
import { renderHost, writeTree } from '../render/host.js'
import { renderKickstart, type KickstartOptions } from '../render/kickstart.js'
import { hashEarly, type SiteBuild, type Wanted } from './build-stages.js'

/** xorriso reports percent and bytes written; the logger wants a total. */
const totalOf = (e: MediaProgress) => (e.percent > 0 ? Math.round((e.bytesWritten * 100) / e.percent) : undefined)

/** Where a host's outputs go in the output transaction. */
const outDir = (b: SiteBuild, h: SiteHostPlan) => join(b.dirs.dir, h.dir)

/** The kickstart an OEMDRV carries: the payload on the same medium, or for a fleet on the shared payload medium. */
function oemdrvKickstart(site: SitePlan): KickstartOptions {
  return site.fleet ? { source: 'oemdrv', payloadLabel: PAYLOAD_LABEL } : { source: 'oemdrv' }
}

/**
 * host/ of a host in the output directory DIR (hosts/<name>/host/ in a
 * fleet): its rendered files, with the kickstart it installs with: a site of
 * one's remastered ISO, a fleet host's OEMDRV. `render` of a fleet writes its
 * hosts with this too, so that both lay out the same files. Returns the paths
 * written, relative to DIR.
 */
export function renderHostFiles(dir: string, site: SitePlan, h: SiteHostPlan): string[] {
  const tree = renderHost(h.plan, site.fleet ? oemdrvKickstart(site) : { source: 'cdrom' })
  writeTree(join(dir, h.dir, 'host'), tree)
  return tree.map((f) => join(h.dir, 'host', f.path))
}

/**
 * openshift/ of each host and, the same files, the payload's
 * openshift/<hostname>/ that first boot installs on the host; with
 * --pull-secret each host's merged pull secret. The content (and so what is
 * warned about) is the same for every host: said once.
 */
export async function writeHandoffs(b: SiteBuild, payload: AssembleResult): Promise<void> {
  b.ctx.log.step(
    `OpenShift hand-off${b.site.fleet ? ' of each host' : ''}: install-config snippet, mirror sets, catalog sources, release signatures, pull secret`,
  )
  for (const h of b.site.hosts) {
    const warnings = await writeHandoffFromPayload({
      outDir: join(outDir(b, h), 'openshift'),
      plan: h.plan,
      payload,
      payloadDir: b.dirs.payloadDir,
      ...(b.opts.pullSecret ? { userPullSecret: resolve(b.opts.pullSecret) } : {}),
    })
    if (h === b.site.hosts[0]) for (const w of warnings) b.ctx.log.warn(`OpenShift hand-off: ${w}`)
  }
}

/** payload.iso: the payload once, for every host's OEMDRV to install from. */
export async function writePayloadMedium(b: SiteBuild): Promise<void> {
  b.ctx.log.step('media: payload.iso (shared)')
  await buildPayloadMedium({
    payloadDir: b.dirs.payloadDir,
    outFile: join(b.dirs.dir, 'payload.iso'),
    epoch: b.inputs.epoch,
    signal: b.ctx.signal,
  })
  hashEarly(b.dirs, 'payload.iso', b.ctx.signal)
}

/**
 * oemdrv.iso: ks.cfg, for an unmodified RHEL ISO to find, and the payload
 * unless the site has a payload medium (a fleet: its OEMDRVs hold only
 * ks.cfg, kept beside each as hosts/<name>/ks.cfg too).
 */
export async function writeOemdrv(b: SiteBuild, h: SiteHostPlan): Promise<void> {
  const { log, signal } = b.ctx
  const rel = join(h.dir, 'oemdrv.iso')
  log.step(`media: ${rel}`)
  const ksText = renderKickstart(h.plan, oemdrvKickstart(b.site))
  await mkdir(outDir(b, h), { recursive: true })
  if (b.site.fleet) writeFileSync(join(outDir(b, h), 'ks.cfg'), ksText, { mode: 0o600 })
  const outFile = join(b.dirs.dir, rel)
  const p = log.progress(rel)
  await buildOemdrv({
    ksText,
    ...(b.want.payloadMedium ? {} : { payloadDir: b.dirs.payloadDir }),
    outFile,
    epoch: b.inputs.epoch,
    signal,
    onProgress: (e: MediaProgress) => p.update(e.bytesWritten, totalOf(e)),
  })
  // Its ks.cfg lays down the registry's passwords and keys: private like host/ks.cfg.
  await chmod(outFile, 0o600)
  p.done()
  hashEarly(b.dirs, rel, signal)
}

/** appliance.iso: the RHEL ISO remastered to install unattended; returns what the manifest says of the base. */
export async function remasterBaseIso(b: SiteBuild, h: SiteHostPlan, isoBase: string): Promise<NonNullable<BuildManifest['baseIso']>> {
  const { log, signal } = b.ctx
  log.step(`media: remastering ${isoBase}`)
  const { remasterIso } = await import('../media/iso.js')
  const rel = join(h.dir, 'appliance.iso')
  const outFile = join(b.dirs.dir, rel)
  const p = log.progress(rel)
  const r = await remasterIso({
    baseIso: isoBase,
    outFile,
    ksText: renderKickstart(h.plan, { source: 'cdrom' }),
    payloadDir: b.dirs.payloadDir,
    epoch: b.inputs.epoch,
    force: b.opts.force,
    kernelArgs: h.config.host.fips ? ['fips=1'] : [],
    hashOutput: false, // the manifest hashes it, once
    hashCacheDir: b.inputs.cacheDir,
    signal,
    onProgress: (e: MediaProgress) => p.update(e.bytesWritten, totalOf(e)),
  })
  p.done()
  await chmod(outFile, 0o600) // carries the same ks.cfg secrets as oemdrv.iso
  hashEarly(b.dirs, rel, signal)
  if (r.baseSha256Cached) log.debug(`base ISO sha256 ${r.baseSha256} (remembered from an earlier build of this file version)`)
  for (const w of r.warnings) log.warn(w)
  return { path: isoBase, sha256: r.baseSha256, volumeId: r.volumeId }
}

/**
 * pxe/: the installer from the ISO, the payload once and a kickstart per
 * host, served over HTTP: a site of one's host installs from the default
 * entries, a fleet's hosts each from the entry for its MAC.
 */
export async function writePxeTree(b: SiteBuild, isoBase: string, pxeUrl: string): Promise<PxeResult> {
  b.ctx.log.step(`media: PXE tree for ${pxeUrl}${b.site.fleet ? ' (payload once, one entry per MAC; unknown machines boot locally)' : ''}`)
  const { buildPxeTree } = await import('../media/pxe.js')
  return buildPxeTree({
    baseIso: isoBase,
    outDir: join(b.dirs.dir, 'pxe'),
    // The tree serves the ISO's contents under repo/ and the payload under appliance/.
    hosts: b.site.hosts.map((h) => ({
      hostname: h.hostname,
      ...(h.fleet ? { mac: h.fleet.mac } : {}),
      ksText: renderKickstart(h.plan, { source: 'url', url: `${pxeUrl}/repo`, payloadUrl: `${pxeUrl}/appliance` }),
    })),
    payloadDir: b.dirs.payloadDir,
    baseUrl: pxeUrl,
    epoch: b.inputs.epoch,
    signal: b.ctx.signal,
  })
}

/** The disk every qcow2 way writes. */
interface Qcow2Disk {
  outFile: string
  sizeGiB: number
  compress: boolean
}

/**
 * appliance.qcow2: from a RHEL KVM guest image, or by installing from the
 * ISO in QEMU. From an image, appliance.xml (libvirt) beside it and how to
 * start it are said.
 */
export async function writeQcow2(b: SiteBuild, h: SiteHostPlan): Promise<void> {
  const q = h.config.outputs.qcow2
  const disk: Qcow2Disk = { outFile: join(outDir(b, h), 'appliance.qcow2'), sizeGiB: q?.sizeGiB ?? 100, compress: q?.compress ?? false }
  if (b.want.baseImage) await qcow2FromImage(b, h, b.want.baseImage, disk)
  else if (b.want.isoBase) await qcow2ByInstall(b, h, b.want.isoBase, disk)
}

async function qcow2FromImage(b: SiteBuild, h: SiteHostPlan, baseImage: string, disk: Qcow2Disk): Promise<void> {
  const { log, signal } = b.ctx
  const { dir, dest } = b.dirs
  log.step(`media: ${join(h.dir, 'appliance.qcow2')} from ${baseImage} (libguestfs; 1-2 minutes under software emulation)`)
  const { buildQcow2FromImage } = await import('../media/qcow2.js')
  const { noCloudSeedFromPlan, qcow2HostSpec } = await import('../media/qcow2-host.js')
  const r = await buildQcow2FromImage({
    baseImage,
    ...disk,
    host: qcow2HostSpec(h.plan),
    payloadDir: b.dirs.payloadDir,
    cloudInit: { seed: noCloudSeedFromPlan(h.plan) },
    epoch: b.inputs.epoch,
    signal,
    onProgress: (e) => log.debug(`qcow2: ${e.step} (${e.percent}%)`),
  })
  for (const w of r.warnings) log.warn(w)
  // They name the disk by its path: the final one, not the temp directory's.
  const xml = join(h.dir, 'appliance.xml')
  await writeFile(join(dir, xml), r.domainXml.replaceAll(dir, dest))
  log.info(
    `qcow2: define the VM with: virsh define ${join(b.opts.output, xml)} (libvirt domain XML), or:\n  ${r.virtInstall.replaceAll(dir, dest)}`,
  )
}

/** Install for real: the same remaster with a kickstart that powers off at the end. */
async function qcow2ByInstall(b: SiteBuild, h: SiteHostPlan, isoBase: string, disk: Qcow2Disk): Promise<void> {
  const { log, signal } = b.ctx
  log.step(`media: ${join(h.dir, 'appliance.qcow2')} by running the unattended install in QEMU`)
  const { remasterIso } = await import('../media/iso.js')
  const { buildQcow2ByInstall } = await import('../media/qcow2-install.js')
  const scratch = join(b.dirs.work, h.dir)
  await mkdir(scratch, { recursive: true })
  const installIso = join(scratch, 'install.iso')
  await remasterIso({
    baseIso: isoBase,
    outFile: installIso,
    ksText: renderKickstart(h.plan, { source: 'cdrom', finish: 'poweroff' }),
    payloadDir: b.dirs.payloadDir,
    epoch: b.inputs.epoch,
    force: b.opts.force,
    kernelArgs: ['console=ttyS0,115200', ...(h.config.host.fips ? ['fips=1'] : [])],
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

/** bundle.tar.gz: the payload, units and mirror-registryctl, to install on an existing host. */
export async function writeBundle(b: SiteBuild, h: SiteHostPlan): Promise<void> {
  const rel = join(h.dir, BUNDLE_NAME)
  b.ctx.log.step(`bundle: ${rel} (payload, units, mirror-registryctl)`)
  await buildBundle({
    plan: h.plan,
    payloadDir: b.dirs.payloadDir,
    outFile: join(b.dirs.dir, rel),
    epoch: b.inputs.epoch,
    signal: b.ctx.signal,
  })
  hashEarly(b.dirs, rel, b.ctx.signal)
}

/** What changes when a file is written, replaced or truncated: any write updates mtime and ctime. */
export function fileStamp(path: string): string {
  try {
    const s = statSync(path)
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`
  } catch (e) {
    return `gone: ${(e as Error).message}`
  }
}

/** The media read from the base ISO must all come from one version of it. */
export function checkBaseUnchanged(want: Wanted): void {
  if (want.isoBase && fileStamp(want.isoBase) !== want.baseStamp) {
    throw new FailureError(
      `base ISO ${want.isoBase} changed while it was being read (size, time or inode differ from when the build started); the media would mix two versions, so nothing was written`,
      'wait until the ISO is completely copied or downloaded, then build again',
    )
  }
}

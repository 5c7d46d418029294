// build: the pipeline as a flat list of stages over one output transaction.
// Everything is checked first (inputs, tools, flags) and reported at once;
// then config → plan → render → payload → media → OpenShift hand-off →
// manifest, all inside a temp directory renamed into place at the end.

import { existsSync, statSync } from 'node:fs'
import { chmod, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Ctx } from '../cli.js'
import { formatDiagnostic } from '../config/diagnostics.js'
import { DEFAULT_CONFIG_NAME, loadConfig } from '../config/load.js'
import { FailureError } from '../errors.js'
import { findTool, TOOL_PACKAGES } from '../exec.js'
import { formatBytes } from '../log.js'
import type { MediaProgress } from '../media/common.js'
import { buildBundle, BUNDLE_NAME } from '../bundle/bundle.js'
import { buildOemdrv } from '../media/oemdrv.js'
import { writeOpenshift } from '../openshift.js'
import { planAppliance } from '../plan/plan.js'
import { renderKickstart } from '../render/kickstart.js'
import { renderHost, writeTree } from '../render/host.js'
import { buildPayload, readBuildInputs, refuseProblems, withBuildOutput, writeBuildManifest } from './build-stages.js'
import { writeSecrets } from './secrets-out.js'

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

export async function build(opts: BuildOpts, ctx: Ctx): Promise<number> {
  const { log } = ctx
  const loaded = loadConfig(opts.config)
  const demo = loaded.file === DEFAULT_CONFIG_NAME
  const c = loaded.config
  for (const w of loaded.warnings) log.warn(formatDiagnostic(w))
  if (c.fleet) {
    // A fleet: one payload medium, one OEMDRV per host (builder/fleet/build.ts).
    const { buildFleet } = await import('../fleet/build.js')
    const r = await buildFleet(opts, ctx, loaded)
    if (ctx.json) ctx.out(JSON.stringify(r, null, 2))
    return 0
  }

  // ---- check everything first, fail once ----
  const problems: string[] = []
  const skipped: string[] = []
  const isoBase = opts.iso ? resolve(opts.iso) : c.outputs.iso?.base
  const wantOemdrv = opts.oemdrv ?? c.outputs.oemdrv
  const wantPxe = opts.pxe || c.outputs.pxe !== undefined
  const pxeUrl = opts.pxeUrl ?? c.outputs.pxe?.baseUrl
  if (isoBase && !(existsSync(isoBase) && statSync(isoBase).isFile())) problems.push(`base ISO ${isoBase}: no such file`)
  if (wantPxe && !isoBase) problems.push('--pxe needs the RHEL ISO to take the kernel and initrd from: add --iso BASE.iso')
  if (wantPxe && !pxeUrl) problems.push('--pxe needs the URL the tree will be served from: add --pxe-url http://HOST:PORT or outputs.pxe.baseUrl')
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
  const wantBundle = opts.bundle || c.outputs.bundle
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
  // The base ISO must not change while we read it (a copy still running, a
  // download being resumed): the remastered ISO would mix two versions.
  const baseStamp = isoBase ? fileStamp(isoBase) : undefined

  const inputs = readBuildInputs(opts, c)
  const { epoch, cacheDir } = inputs
  const allowMissing = opts.allowMissing || demo

  log.step(`building ${demo ? 'the demo appliance (embedded default config)' : loaded.file} into ${opts.output}`)
  const result = await withBuildOutput(opts.output, ctx, async (dirs) => {
    const { dir, dest, work, payloadDir } = dirs

    log.step('plan: secrets, PKI, host spec')
    const { plan, stored } = planAppliance(loaded, { epoch, ...(opts.seed !== undefined ? { seed: opts.seed } : {}), secretsDir: join(dest, 'secrets') })
    writeSecrets(join(dir, 'secrets'), plan, stored)

    log.step('render: kickstart, Butane, Ignition, host files')
    writeTree(join(dir, 'host'), renderHost(plan, { source: 'cdrom' }))

    const payload = await buildPayload(ctx, inputs, dirs, { config: c, allowMissing, ...(opts.config ? { configPath: opts.config } : {}) })

    if (wantOemdrv && !skipped.some((s) => s.startsWith('oemdrv.iso'))) {
      log.step('media: oemdrv.iso')
      const p = log.progress('oemdrv.iso')
      await buildOemdrv({
        ksText: renderKickstart(plan, { source: 'oemdrv' }),
        payloadDir,
        outFile: join(dir, 'oemdrv.iso'),
        epoch,
        signal: ctx.signal,
        onProgress: (e: MediaProgress) => p.update(e.bytesWritten, totalOf(e)),
      })
      // Its ks.cfg lays down the registry's passwords and keys: private like host/ks.cfg.
      await chmod(join(dir, 'oemdrv.iso'), 0o600)
      p.done()
    }
    let baseIso: { path: string; sha256: string; volumeId: string } | undefined
    let pxeSnippets: { grub: string; ipxe: string; pxelinux: string } | undefined
    let qcow2Hints: { domainXml: string; virtInstall: string } | undefined
    if (isoBase) {
      log.step(`media: remastering ${isoBase}`)
      const { remasterIso } = await import('../media/iso.js')
      const p = log.progress('appliance.iso')
      const r = await remasterIso({
        baseIso: isoBase,
        outFile: join(dir, 'appliance.iso'),
        ksText: renderKickstart(plan, { source: 'cdrom' }),
        payloadDir,
        epoch,
        force: opts.force,
        kernelArgs: c.host.fips ? ['fips=1'] : [],
        hashOutput: false, // the manifest hashes it, once
        hashCacheDir: cacheDir,
        signal: ctx.signal,
        onProgress: (e: MediaProgress) => p.update(e.bytesWritten, totalOf(e)),
      })
      p.done()
      await chmod(join(dir, 'appliance.iso'), 0o600) // carries the same ks.cfg secrets as oemdrv.iso
      baseIso = { path: isoBase, sha256: r.baseSha256, volumeId: r.volumeId }
      if (r.baseSha256Cached) log.debug(`base ISO sha256 ${r.baseSha256} (remembered from an earlier build of this file version)`)
      for (const w of r.warnings) log.warn(w)
      if (wantPxe && pxeUrl) {
        log.step(`media: PXE tree for ${pxeUrl}`)
        const { buildPxeTree } = await import('../media/pxe.js')
        const pxe = await buildPxeTree({
          baseIso: isoBase,
          outDir: join(dir, 'pxe'),
          // The tree serves the ISO's contents under repo/ and the payload under appliance/.
          ksText: renderKickstart(plan, { source: 'url', url: `${pxeUrl}/repo`, payloadUrl: `${pxeUrl}/appliance` }),
          payloadDir,
          baseUrl: pxeUrl,
          epoch,
          signal: ctx.signal,
        })
        pxeSnippets = pxe.snippets
      }
    }
    if (isoBase && fileStamp(isoBase) !== baseStamp) {
      throw new FailureError(
        `base ISO ${isoBase} changed while it was being read (size, time or inode differ from when the build started); the media would mix two versions, so nothing was written`,
        'wait until the ISO is completely copied or downloaded, then build again',
      )
    }

    if (wantQcow2) {
      const sizeGiB = c.outputs.qcow2?.sizeGiB ?? 100
      const compress = c.outputs.qcow2?.compress ?? false
      const outFile = join(dir, 'appliance.qcow2')
      if (baseImage) {
        log.step(`media: appliance.qcow2 from ${baseImage} (libguestfs; 1-2 minutes under software emulation)`)
        const { buildQcow2FromImage } = await import('../media/qcow2.js')
        const { noCloudSeedFromPlan } = await import('../media/qcow2-host.js')
        const r = await buildQcow2FromImage({
          baseImage,
          outFile,
          host: plan.host,
          payloadDir,
          sizeGiB,
          cloudInit: { seed: noCloudSeedFromPlan(plan) },
          compress,
          epoch,
          signal: ctx.signal,
          onProgress: (e) => log.debug(`qcow2: ${e.step} (${e.percent}%)`),
        })
        for (const w of r.warnings) log.warn(w)
        // They name the disk by its path: the final one, not the temp directory's.
        qcow2Hints = { domainXml: r.domainXml.replaceAll(dir, dest), virtInstall: r.virtInstall.replaceAll(dir, dest) }
      } else if (isoBase) {
        // Install for real: the same remaster with a kickstart that powers off at the end.
        log.step('media: appliance.qcow2 by running the unattended install in QEMU')
        const { remasterIso } = await import('../media/iso.js')
        const { buildQcow2ByInstall } = await import('../media/qcow2-install.js')
        const installIso = join(work, 'install.iso')
        await remasterIso({
          baseIso: isoBase,
          outFile: installIso,
          ksText: renderKickstart(plan, { source: 'cdrom', finish: 'poweroff' }),
          payloadDir,
          epoch,
          force: opts.force,
          kernelArgs: ['console=ttyS0,115200', ...(c.host.fips ? ['fips=1'] : [])],
          hashOutput: false,
          signal: ctx.signal,
        })
        const r = await buildQcow2ByInstall({
          iso: installIso,
          outFile,
          sizeGiB,
          compress,
          timeoutMs: Number(process.env.MIRROR_APPLIANCE_INSTALL_TIMEOUT_MIN ?? 240) * 60_000,
          signal: ctx.signal,
          onSerialLine: (l) => log.debug(`install: ${l}`),
          onWarning: (w) => log.warn(w),
        })
        log.info(`installed in ${Math.round(r.seconds)} s with ${r.accel}`)
      }
    }

    if (wantBundle) {
      log.step(`bundle: ${BUNDLE_NAME} (payload, units, mirror-registryctl)`)
      await buildBundle({ plan, payloadDir, outFile: join(dir, BUNDLE_NAME), epoch, signal: ctx.signal })
    }

    log.step('OpenShift hand-off: install-config snippet, pull secret, ImageDigestMirrorSet')
    writeOpenshift(join(dir, 'openshift'), plan, opts.pullSecret ? { userPullSecret: resolve(opts.pullSecret) } : {})

    if (qcow2Hints) {
      await writeFile(join(dir, 'appliance.xml'), qcow2Hints.domainXml)
      log.info(`qcow2: define the VM with: virsh define ${join(opts.output, 'appliance.xml')} (libvirt domain XML), or:\n  ${qcow2Hints.virtInstall}`)
    }
    if (pxeSnippets) {
      log.info(`PXE: serve the tree with: mirror-appliance serve ${join(opts.output, 'pxe')} --port ${new URL(pxeUrl!).port || 80}`)
      log.info(`GRUB2 (UEFI) snippet, also in pxe/pxe/grub.cfg:\n${pxeSnippets.grub}`)
      log.info(`iPXE snippet, also in pxe/pxe/boot.ipxe:\n${pxeSnippets.ipxe}`)
      log.info(`pxelinux (BIOS) snippet, also in pxe/pxe/pxelinux.cfg/default:\n${pxeSnippets.pxelinux}`)
    }
    const manifest = await writeBuildManifest(dirs, { loaded, host: c, epoch, demo, payload, ...(baseIso ? { baseIso } : {}) })
    // Steps that cannot be aborted (hashing the outputs) may have run past a
    // Ctrl-C: do not put the output in place after the user asked to stop.
    if (ctx.signal.aborted) throw new FailureError('interrupted')
    return manifest
  })

  if (ctx.json) {
    ctx.out(JSON.stringify(result, null, 2))
    return 0
  }
  log.info('')
  log.info(`built into ${opts.output}:`)
  for (const o of result.outputs.filter((o) => !o.path.includes('/') || o.path.startsWith('openshift/') || /^host\/[^/]+$/.test(o.path))) {
    log.info(`  ${o.path.padEnd(34)} ${formatBytes(o.size).padStart(10)}`)
  }
  log.info(`  secrets/ (0700; credentials.txt, CA key: keep private, never put on media)`)
  for (const s of skipped) log.warn(`skipped ${s}`)
  if (demo || result.missingImages.length) {
    log.info('')
    log.info(demo ? 'This is a DEMO build; a production build still needs:' : 'This build is incomplete (--allow-missing); it still needs:')
    if (demo) log.info('  - your own config: mirror-appliance init -o appliance.yaml, edit it, then build with -c appliance.yaml')
    if (result.missingImages.length) {
      log.info(`  - the stack images (${result.missingImages.join(', ')}) in the image cache: run on a connected machine`)
      log.info(`      mirror-appliance images fetch${opts.config ? ` -c ${opts.config}` : ''}`)
    }
    if (!isoBase && !baseImage) log.info('  - a RHEL 8 DVD or boot ISO, to remaster into one unattended ISO: --iso rhel-8.10-x86_64-dvd.iso (or boot it unmodified with oemdrv.iso attached)')
  }
  return 0
}

// build for a fleet: one output transaction holding ONE payload medium
// (payload.iso, label MAPAYLOAD, the images stored once) and per host a
// small OEMDRV medium with only that host's ks.cfg, plus the host's
// kickstart, OpenShift hand-off and secrets; a summary table (fleet.txt,
// fleet.json) of which medium goes to which machine.
//
// Installing host N: boot the unmodified RHEL ISO with hosts/N/oemdrv.iso
// and payload.iso attached (the payload medium can be one USB stick carried
// from machine to machine). Anaconda reads ks.cfg from OEMDRV; the
// kickstart copies the payload from the medium labelled MAPAYLOAD.
//
// With --pxe (and --iso BASE.iso for the installer) the output also holds one
// served tree, pxe/: the installer and payload once, hosts/<name>/ks.cfg and
// per-MAC boot entries; unknown machines boot their local disk. With
// --pxe --no-oemdrv the tree is the only medium (no payload.iso).

import { existsSync, statSync, writeFileSync } from 'node:fs'
import { mkdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Ctx } from '../context.js'
import { type BuildOpts, buildPayload, checkPxe, hashEarly, readBuildInputs, refuseProblems, serveBindHint, serveCommand, withBuildOutput, writeBuildManifest } from '../commands/build-stages.js'
import { writeSecrets } from '../commands/secrets-out.js'
import type { LoadedConfig } from '../config/load.js'
import { findTool } from '../exec.js'
import { formatBytes } from '../log.js'
import type { BuildManifest } from '../manifest.js'
import { checkPayloadDir, writeAtomically } from '../media/common.js'
import { buildOemdrv, PAYLOAD_ISO_DIR } from '../media/oemdrv.js'
import { buildFleetPxeTree, macFileId, type FleetPxeEntry } from '../media/pxe.js'
import { writeHandoffFromPayload } from '../openshift.js'
import { renderKickstart } from '../render/kickstart.js'
import { xorrisoWrite } from '../tools/xorriso.js'
import { caSummary, serverCertSummary } from '../plan/pki.js'
import { FLEET_CA_FILE, fleetTable, planFleet } from './plan.js'

/** Volume label of the shared payload medium. */
export const PAYLOAD_LABEL = 'MAPAYLOAD'

export interface FleetBuildResult {
  manifest: BuildManifest
  table: string
  hosts: { hostname: string; role: string; address: string; mac: string; disk: string; oemdrv: string; ks: string }[]
}

/** payload.iso: the payload under /appliance/, labelled MAPAYLOAD. Same inputs and epoch give the same bytes. */
export async function buildPayloadMedium(o: { payloadDir: string; outFile: string; epoch: number; signal?: AbortSignal }): Promise<number> {
  await checkPayloadDir(o.payloadDir)
  return writeAtomically(o.outFile, async (tmp) => {
    await xorrisoWrite({ outFile: tmp, volumeId: PAYLOAD_LABEL, epoch: o.epoch, maps: [{ from: o.payloadDir, to: PAYLOAD_ISO_DIR }], isoLevel: 3 }, { ...(o.signal ? { signal: o.signal } : {}) })
    return (await stat(tmp)).size
  })
}

export async function buildFleet(opts: BuildOpts, ctx: Ctx, loaded: LoadedConfig): Promise<FleetBuildResult> {
  const { log } = ctx
  const c = loaded.config
  const hosts = c.fleet!.hosts
  const problems: string[] = []
  const isoBase = opts.iso ? resolve(opts.iso) : c.outputs.iso?.base
  const wantPxe = opts.pxe || c.outputs.pxe !== undefined
  if (isoBase && !wantPxe) problems.push('a fleet is built as one payload.iso plus one OEMDRV per host; --iso (one remastered ISO per host) is not available for fleets (with --pxe, --iso names the installer ISO for the PXE tree)')
  const { pxeUrl } = checkPxe(opts, c, isoBase, problems)
  if (isoBase && !(existsSync(isoBase) && statSync(isoBase).isFile())) problems.push(`base ISO ${isoBase}: no such file`)
  const wantOemdrv = opts.oemdrv !== false
  if (opts.qcow2 || c.outputs.qcow2) problems.push('qcow2 output is not available for fleets')
  if (opts.bundle || c.outputs.bundle) problems.push('the install bundle is not available for fleets')
  if (!wantOemdrv && !wantPxe) problems.push('a fleet needs its OEMDRV media (or --pxe): drop --no-oemdrv')
  if (!(await findTool('xorriso'))) problems.push('xorriso is needed to write ISO media: apt-get install xorriso')
  refuseProblems(problems)

  const inputs = readBuildInputs(opts, c)
  const { epoch } = inputs
  log.step(`building a fleet of ${hosts.length} host(s) from ${loaded.file} into ${opts.output}`)

  let table = ''
  let rows: FleetBuildResult['hosts'] = []
  let pxeEntries: FleetPxeEntry[] = []
  let serverCerts: string[] = []
  const manifest = await withBuildOutput(opts.output, ctx, async (dirs) => {
    const { dir, dest, payloadDir } = dirs

    log.step('plan: one CA, secrets and a server certificate per host')
    const fleet = planFleet(loaded, { epoch, stack: inputs.stack, ...(opts.seed !== undefined ? { seed: opts.seed } : {}), secretsDir: join(dest, 'secrets') })
    serverCerts = fleet.members.map((m) => `${m.host.hostname}: ${serverCertSummary(m.plan.pki, `secrets/hosts/${m.host.hostname}/`)}`)
    // one CA for all members: said once
    const ca = fleet.members[0] ? caSummary(fleet.members[0].plan.pki, 'secrets/fleet-ca.json') : null
    if (ca) serverCerts.push(ca)
    const secretsDir = join(dir, 'secrets')
    await mkdir(secretsDir, { recursive: true, mode: 0o700 })
    writeFileSync(join(secretsDir, FLEET_CA_FILE), JSON.stringify({ version: 1, ...fleet.ca }, null, 2) + '\n', { mode: 0o600 })
    writeFileSync(join(secretsDir, 'ca.crt'), fleet.ca.caCertPem, { mode: 0o644 })
    writeFileSync(join(secretsDir, 'ca.key'), fleet.ca.caKeyPem, { mode: 0o600 })
    for (const m of fleet.members) {
      // the CA key once, at the top of secrets/; each host's directory has its own secrets only
      const { caKeyPem: _omit, ...pki } = m.plan.pki
      writeSecrets(join(secretsDir, 'hosts', m.host.hostname), { ...m.plan, pki }, m.stored)
    }

    const payload = await buildPayload(ctx, inputs, dirs, {
      config: c,
      loaded,
      allowMissing: opts.allowMissing,
      ...(opts.config ? { configPath: opts.config } : {}),
      note: 'stored once for all hosts',
    })

    // Each host's OpenShift hand-off, into hosts/<name>/openshift/ and the
    // shared payload (openshift/<name>/), before any medium carries it.
    log.step('OpenShift hand-off of each host: install-config snippet, mirror sets, catalog sources, release signatures, pull secret')
    for (const m of fleet.members) {
      const warnings = await writeHandoffFromPayload({ outDir: join(dir, 'hosts', m.host.hostname, 'openshift'), plan: m.plan, payload, payloadDir })
      // The content is the same for every host: say it once.
      if (m === fleet.members[0]) for (const w of warnings) log.warn(`OpenShift hand-off: ${w}`)
    }

    if (wantOemdrv) {
      log.step('media: payload.iso (shared)')
      await buildPayloadMedium({ payloadDir, outFile: join(dir, 'payload.iso'), epoch, signal: ctx.signal })
      hashEarly(dirs, 'payload.iso', ctx.signal)
    }

    rows = []
    for (const m of fleet.members) {
      const h = m.host.hostname
      log.step(`media: hosts/${h}/oemdrv.iso`)
      const hostDir = join(dir, 'hosts', h)
      await mkdir(hostDir, { recursive: true })
      if (wantOemdrv) {
        const ksText = renderKickstart(m.plan, { source: 'oemdrv', payloadLabel: PAYLOAD_LABEL })
        writeFileSync(join(hostDir, 'ks.cfg'), ksText, { mode: 0o600 })
        await buildOemdrv({ ksText, outFile: join(hostDir, 'oemdrv.iso'), epoch, signal: ctx.signal })
      }
      rows.push({
        hostname: h,
        role: m.host.role,
        address: `${m.host.address}/${m.host.prefix}`,
        mac: m.host.mac,
        disk: m.plan.config.host.disk.device,
        oemdrv: wantOemdrv ? `hosts/${h}/oemdrv.iso` : '',
        ks: wantOemdrv ? `hosts/${h}/ks.cfg` : `pxe/hosts/${h}/ks.cfg`,
      })
    }
    if (wantPxe && isoBase && pxeUrl) {
      log.step(`media: PXE tree for ${pxeUrl} (payload once, one entry per MAC; unknown machines boot locally)`)
      const pxe = await buildFleetPxeTree({
        baseIso: isoBase,
        outDir: join(dir, 'pxe'),
        hosts: fleet.members.map((m) => ({
          hostname: m.host.hostname,
          mac: m.host.mac,
          ksText: renderKickstart(m.plan, { source: 'url', url: `${pxeUrl}/repo`, payloadUrl: `${pxeUrl}/appliance` }),
        })),
        payloadDir,
        baseUrl: pxeUrl,
        epoch,
        signal: ctx.signal,
      })
      pxeEntries = pxe.hosts
    }
    const medium = (r: FleetBuildResult['hosts'][number]) =>
      [wantOemdrv ? `${r.oemdrv} + payload.iso` : '', wantPxe ? `PXE ${macFileId(r.mac)}` : ''].filter(Boolean).join(' or ')
    table = fleetTable(rows.map((r) => ({ ...r, medium: medium(r) })))
    writeFileSync(join(dir, 'fleet.txt'), table)
    writeFileSync(join(dir, 'fleet.json'), JSON.stringify({ schema: 'mirror-appliance/fleet/v1', ...(wantOemdrv ? { payload: 'payload.iso', payloadLabel: PAYLOAD_LABEL } : {}), hosts: rows, ...(wantPxe ? { pxe: { baseUrl: pxeUrl, hosts: pxeEntries } } : {}) }, null, 2) + '\n')

    // The manifest names the first host's config, as the single-host manifest names its one host.
    return writeBuildManifest(dirs, { loaded, host: fleet.members[0]!.plan.config, epoch, demo: false, payload, signal: ctx.signal })
  })

  if (!ctx.json) {
    log.info('')
    if (wantOemdrv) log.info(`built a fleet of ${hosts.length} into ${opts.output}: payload.iso ${formatBytes(manifest.outputs.find((o) => o.path === 'payload.iso')?.size ?? 0)} (shared), one OEMDRV per host`)
    if (wantPxe) {
      log.info(`PXE: one tree for the fleet; serve it with: ${serveCommand(join(opts.output, 'pxe'), pxeUrl!)}`)
      const hint = serveBindHint(pxeUrl!)
      if (hint) log.info(`PXE: ${hint}`)
      log.info(`PXE: each hosts/<name>/ks.cfg holds that host's TLS key and passwords: stop serve once the hosts are installed`)
      log.info('  per-MAC entries pxe/pxe/grub.cfg-01-<mac> (UEFI), pxe/pxe/pxelinux.cfg/01-<mac> (BIOS), pxe/pxe/boot.ipxe (iPXE); machines not in the fleet boot their local disk')
    }
    for (const line of table.trimEnd().split('\n')) log.info(`  ${line}`)
    log.info('  secrets/ (0700): the fleet CA key and each host\'s credentials; never put on media')
    for (const line of serverCerts) log.info(`  ${line}`)
  }
  return { manifest, table, hosts: rows }
}

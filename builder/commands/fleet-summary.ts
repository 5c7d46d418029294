// What a fleet build tells: which medium goes to which machine, as a table
// (printed, and kept as fleet.txt) and as fleet.json for scripts.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { macFileId, type PxeResult } from '../media/pxe.js'
import { PAYLOAD_LABEL } from '../media/oemdrv.js'
import type { SiteBuild } from './build-stages.js'

export interface FleetRow {
  hostname: string
  role: string
  address: string
  mac: string
  disk: string
  /** Its OEMDRV, relative to the output ('' without OEMDRV media) */
  oemdrv: string
  /** Its kickstart: beside its OEMDRV, else in the PXE tree */
  ks: string
}

/** The summary table the build prints (and writes to fleet.txt). */
export function fleetTable(rows: { hostname: string; role: string; address: string; mac: string; disk: string; medium: string }[]): string {
  const head = { hostname: 'HOST', role: 'ROLE', address: 'ADDRESS', mac: 'MAC', disk: 'DISK', medium: 'BOOT WITH' }
  const all = [head, ...rows]
  const cols = Object.keys(head) as (keyof typeof head)[]
  const width = Object.fromEntries(cols.map((c) => [c, Math.max(...all.map((r) => r[c].length))])) as Record<keyof typeof head, number>
  return all.map((r) => cols.map((c, i) => (i === cols.length - 1 ? r[c] : r[c].padEnd(width[c]))).join('  ')).join('\n') + '\n'
}

/** fleet.txt and fleet.json; returns the table and the rows. */
export function writeFleetSummary(b: SiteBuild, pxe: PxeResult | undefined): { table: string; rows: FleetRow[] } {
  const { oemdrv } = b.want
  const rows: FleetRow[] = b.site.hosts.map((h) => ({
    hostname: h.hostname,
    role: h.fleet!.role,
    address: `${h.fleet!.address}/${h.fleet!.prefix}`,
    mac: h.fleet!.mac,
    disk: h.config.host.disk.device,
    oemdrv: oemdrv ? `${h.dir}/oemdrv.iso` : '',
    ks: oemdrv ? `${h.dir}/ks.cfg` : `pxe/${h.dir}/ks.cfg`,
  }))
  const medium = (r: FleetRow) =>
    [oemdrv ? `${r.oemdrv} + payload.iso` : '', pxe ? `PXE ${macFileId(r.mac)}` : ''].filter(Boolean).join(' or ')
  const table = fleetTable(rows.map((r) => ({ ...r, medium: medium(r) })))
  writeFileSync(join(b.dirs.dir, 'fleet.txt'), table)
  const fleetJson = {
    schema: 'mirror-appliance/fleet/v1',
    ...(oemdrv ? { payload: 'payload.iso', payloadLabel: PAYLOAD_LABEL } : {}),
    hosts: rows,
    ...(pxe ? { pxe: { baseUrl: b.want.pxeUrl, hosts: pxe.hosts } } : {}),
  }
  writeFileSync(join(b.dirs.dir, 'fleet.json'), JSON.stringify(fleetJson, null, 2) + '\n')
  return { table, rows }
}

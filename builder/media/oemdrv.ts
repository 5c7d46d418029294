// oemdrv.iso: a small second medium labelled OEMDRV with ks.cfg at its root.
// Anaconda looks for a volume with that label and loads /ks.cfg from it when
// no inst.ks= is given, so the user's RHEL ISO can stay unmodified. Needs no
// base ISO. The payload goes under /appliance/ like on the remastered ISO;
// for a fleet it goes once on its own medium instead (payload.iso, labelled
// MAPAYLOAD: buildPayloadMedium), and each host's OEMDRV holds only ks.cfg.

import { withTemp } from '../atomic.js'
import { UserError } from '../errors.js'
import { needTool, type ToolNeed } from '../tool-needs.js'
import { xorrisoWrite, type XorrisoMap } from '../tools/xorriso.js'
import {
  checkFreeSpace,
  checkOutFile,
  checkPayloadDir,
  progressMeter,
  throwIfAborted,
  treeSize,
  withScratchDir,
  writeKickstart,
  type OnProgress,
} from './common.js'
import { stat } from 'node:fs/promises'
import { dirname } from 'node:path'

export const OEMDRV_LABEL = 'OEMDRV'
/** Where the payload lives on every medium we write. */
export const PAYLOAD_ISO_DIR = '/appliance'
/** Volume label of a fleet's shared payload medium. */
export const PAYLOAD_LABEL = 'MAPAYLOAD'

/** The programs this writer runs: the build checks them before any work, `doctor` lists them (tool-needs.ts). */
export const OEMDRV_TOOLS: readonly ToolNeed[] = [needTool('xorriso', 'to write the OEMDRV medium')]

/** payload.iso: the payload under /appliance/, labelled MAPAYLOAD. Same inputs and epoch give the same bytes. */
export async function buildPayloadMedium(o: { payloadDir: string; outFile: string; epoch: number; signal?: AbortSignal }): Promise<number> {
  await checkPayloadDir(o.payloadDir)
  return withTemp(o.outFile, async (tmp) => {
    await xorrisoWrite(
      { outFile: tmp, volumeId: PAYLOAD_LABEL, epoch: o.epoch, maps: [{ from: o.payloadDir, to: PAYLOAD_ISO_DIR }], isoLevel: 3 },
      { ...(o.signal ? { signal: o.signal } : {}) },
    )
    return (await stat(tmp)).size
  })
}

export interface OemdrvOptions {
  ksText: string
  /** Directory whose contents go under /appliance/ */
  payloadDir?: string
  outFile: string
  /** SOURCE_DATE_EPOCH: every timestamp in the image */
  epoch: number
  /** Replace an existing outFile */
  force?: boolean
  signal?: AbortSignal
  onProgress?: OnProgress
}

export interface OemdrvResult {
  outFile: string
  volumeId: string
  bytes: number
}

/** Build oemdrv.iso. Same inputs and epoch give the same bytes. */
export async function buildOemdrv(o: OemdrvOptions): Promise<OemdrvResult> {
  if (!Number.isInteger(o.epoch) || o.epoch < 0) throw new UserError(`epoch must be a non-negative integer, got ${o.epoch}`)
  await checkOutFile(o.outFile, o.force)
  await checkPayloadDir(o.payloadDir)
  const payloadBytes = o.payloadDir ? await treeSize(o.payloadDir) : 0
  await checkFreeSpace(dirname(o.outFile), payloadBytes + o.ksText.length, o.outFile)
  throwIfAborted(o.signal)
  return withScratchDir(async (scratch) => {
    const ks = await writeKickstart(scratch, o.ksText, o.epoch)
    const maps: XorrisoMap[] = [{ from: ks, to: '/ks.cfg' }]
    if (o.payloadDir) maps.push({ from: o.payloadDir, to: PAYLOAD_ISO_DIR })
    const meter = progressMeter(o.onProgress)
    const bytes = await withTemp(o.outFile, async (tmp) => {
      const r = await xorrisoWrite(
        { outFile: tmp, volumeId: OEMDRV_LABEL, epoch: o.epoch, maps, isoLevel: 3 },
        { signal: o.signal, onProgress: meter },
      )
      const size = (await stat(tmp)).size
      meter({ sectors: r.sectors ?? size / 2048, percent: 100 })
      return size
    })
    return { outFile: o.outFile, volumeId: OEMDRV_LABEL, bytes }
  })
}

// Which programs a command needs, and whether this machine has them, from
// the declarations of the stages that run them (tool-needs.ts; osbuild's
// getBuildPackages()). The build's up-front check takes the parts of
// BUILD_TOOL_USES the config asks for and names every missing program at
// once; `doctor` lists every part of it with the other commands' needs. No
// list of programs is written here: add a tool to a writer's declaration
// and both see it.

import { MissingToolError } from '../errors.js'
import { findTool, requireTool } from '../exec.js'
import { BUNDLE_TOOLS } from '../bundle/bundle.js'
import { ISO_TOOLS } from '../media/iso.js'
import { OEMDRV_TOOLS } from '../media/oemdrv.js'
import { PXE_TOOLS } from '../media/pxe.js'
import { QCOW2_IMAGE_TOOLS } from '../media/qcow2.js'
import { QCOW2_INSTALL_TOOLS } from '../media/qcow2-install.js'
import { PAYLOAD_TOOLS } from '../payload/assemble.js'
import { installCommand, type ToolName, type ToolNeed } from '../tool-needs.js'

/** Something a command makes, and the programs the stages that make it run. */
export interface ToolUse {
  /** What it is, as `doctor` says a program enables it */
  label: string
  needs: readonly ToolNeed[]
}

/** Each part of a build, with the declarations of the stages that write it. */
export const BUILD_TOOL_USES = {
  payload: { label: 'build (payload)', needs: PAYLOAD_TOOLS },
  oemdrv: { label: 'oemdrv.iso and payload.iso', needs: OEMDRV_TOOLS },
  remaster: { label: 'remastered ISO', needs: ISO_TOOLS },
  pxe: { label: 'PXE tree', needs: PXE_TOOLS },
  qcow2FromImage: { label: 'qcow2 from a RHEL guest image', needs: QCOW2_IMAGE_TOOLS },
  // The installer it boots is the RHEL ISO remastered on the way, by media/iso.ts.
  qcow2ByInstall: { label: 'qcow2 by installing in a VM', needs: [...ISO_TOOLS, ...QCOW2_INSTALL_TOOLS] },
  bundle: { label: 'bundle.tar.gz', needs: BUNDLE_TOOLS },
} as const satisfies Record<string, ToolUse>

export type BuildPart = keyof typeof BUILD_TOOL_USES

/** The declarations of the given parts of a build, in order. */
export function buildNeeds(parts: readonly BuildPart[]): ToolNeed[] {
  return parts.flatMap((p) => BUILD_TOOL_USES[p].needs)
}

/** One program as the uses need it: what it is, why, and for what. */
export interface ToolDemand {
  need: ToolNeed
  /** Every distinct purpose, in the order declared */
  purposes: string[]
  /** Every distinct use's label, in the order given */
  labels: string[]
}

/** The programs of some uses, each once, in the order first declared. */
export function demandsOf(uses: readonly ToolUse[]): ToolDemand[] {
  const byTool = new Map<ToolName, ToolDemand>()
  for (const use of uses) {
    for (const need of use.needs) {
      const d = byTool.get(need.tool) ?? { need, purposes: [], labels: [] }
      byTool.set(need.tool, d)
      if (!d.purposes.includes(need.for)) d.purposes.push(need.for)
      if (!d.labels.includes(use.label)) d.labels.push(use.label)
    }
  }
  return [...byTool.values()]
}

/** A program on this machine: where, and why it will not do when it is too old. */
export interface ToolState {
  path: string | null
  /** Set when it is there but older than need.minVersion: what it says, what we need */
  tooOld?: string
}

/** Look a program up on the PATH and, with a minimum version, ask it its version (the check run() makes). */
export async function toolState(need: ToolNeed): Promise<ToolState> {
  const path = await findTool(need.tool)
  if (!path) return { path }
  try {
    await requireTool(need.tool, need.for)
  } catch (e) {
    if (e instanceof MissingToolError) return { path, tooOld: e.message }
    throw e
  }
  return { path }
}

/** "a", "a and b", "a, b and c" */
function sayList(items: readonly string[]): string {
  return items.length < 2 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`
}

/**
 * Every program of `needs` this machine lacks or has too old, as lines for
 * the user: programs of one package needed for the same things share a line
 * (mdir, mtype, mcopy: mtools), each says what it is needed for and how to
 * install it.
 */
export async function toolProblems(needs: readonly ToolNeed[]): Promise<string[]> {
  const lines = new Map<string, { names: string[]; demand: ToolDemand; tooOld?: string }>()
  for (const d of demandsOf([{ label: '', needs }])) {
    const state = await toolState(d.need)
    if (state.path && !state.tooOld) continue
    const key = state.tooOld ? d.need.tool : `${d.need.debian}\0${d.purposes.join('\0')}`
    const line = lines.get(key) ?? { names: [], demand: d, ...(state.tooOld ? { tooOld: state.tooOld } : {}) }
    line.names.push(d.need.tool)
    lines.set(key, line)
  }
  return [...lines.values()].map(({ names, demand, tooOld }) =>
    tooOld
      ? `${tooOld}: install a newer one, ${installCommand(demand.need)}`
      : `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} needed ${sayList(demand.purposes)}: ${installCommand(demand.need)}`,
  )
}

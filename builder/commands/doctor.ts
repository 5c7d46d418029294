// doctor: every program the builder, its other commands and its test suite
// run, whether this machine has it (and new enough), its version, how to
// install it and what it enables. The list is not written here: it is every
// declaration the build's check reads (tool-check.ts), those of `images
// fetch` and `vm`, and the test suite's below. Always exit 0: a report.

import type { Ctx } from '../context.js'
import { toolVersion } from '../exec.js'
import { QCOW2_DATA_DISK_TOOLS } from '../media/qcow2.js'
import { VM_TOOLS } from '../media/vm.js'
import { FETCH_TOOLS } from '../payload/fetch.js'
import { installCommand, needTool, type ToolNeed } from '../tool-needs.js'
import { BUILD_TOOL_USES, demandsOf, toolState, type ToolUse } from './tool-check.js'

/** What the test suite runs beside the builder's own tools (test/, .ci/run installs them). */
export const TEST_TOOLS: readonly ToolNeed[] = [
  needTool('qemu-system-x86_64', 'to boot-test the media'),
  needTool('ignition-validate', 'to check appliance.ign'),
  needTool('shellcheck', 'to check the host scripts'),
  needTool('docker-registry', 'to run the end-to-end registry tests'),
]

/** Everything doctor checks: each part of a build, then the other commands, then the tests. */
export const DOCTOR_TOOL_USES: readonly ToolUse[] = [
  ...Object.values(BUILD_TOOL_USES),
  { label: 'images fetch', needs: FETCH_TOOLS },
  { label: 'vm', needs: VM_TOOLS },
  // The qcow2 writer's data disk: no build output asks for it yet, its end-to-end test does.
  { label: 'tests', needs: [...TEST_TOOLS, ...QCOW2_DATA_DISK_TOOLS] },
]

export interface DoctorRow {
  tool: string
  found: boolean
  /** Found and at least minVersion */
  ok: boolean
  /** First line of `tool --version`; null when missing or too old */
  version: string | null
  /** Debian package */
  package: string
  /** Fedora/RHEL package, where one ships the program */
  rpm: string | null
  minVersion: string | null
  /** What it says and what we need, when it is too old */
  tooOld: string | null
  /** What it enables: the labels of the uses that declare it */
  enables: string
}

async function rowsOf(uses: readonly ToolUse[]): Promise<DoctorRow[]> {
  const rows: DoctorRow[] = []
  for (const { need, labels } of demandsOf(uses)) {
    const state = await toolState(need)
    const ok = state.path !== null && !state.tooOld
    rows.push({
      tool: need.tool,
      found: state.path !== null,
      ok,
      version: ok ? await toolVersion(need.tool) : null,
      package: need.debian,
      rpm: need.rpm ?? null,
      minVersion: need.minVersion ?? null,
      tooOld: state.tooOld ?? null,
      enables: labels.join(', '),
    })
  }
  return rows
}

/** The version a program printed, or what to do about it. */
function detailOf(r: DoctorRow): string {
  const install = installCommand({ debian: r.package, ...(r.rpm ? { rpm: r.rpm } : {}) })
  if (r.ok) return (r.version ?? '').slice(0, 50)
  return r.found ? `${r.minVersion} or newer needed: ${install}` : install
}

/** One line of the text report: ok/missing/too old, the program, its version or how to install it, what it enables. */
function rowLine(r: DoctorRow, detailWidth: number): string {
  const status = r.ok ? 'ok' : r.found ? 'too old' : 'missing'
  return `${status.padEnd(7)} ${r.tool.padEnd(20)} ${detailOf(r).padEnd(detailWidth)} ${r.enables}`
}

export async function doctor(ctx: Ctx): Promise<number> {
  const rows = await rowsOf(DOCTOR_TOOL_USES)
  rows.unshift({
    tool: 'node',
    found: true,
    ok: true,
    version: process.version,
    package: 'nodejs',
    rpm: 'nodejs',
    minVersion: null,
    tooOld: null,
    enables: 'everything',
  })
  if (ctx.json) {
    ctx.out(JSON.stringify(rows, null, 2))
    return 0
  }
  const width = Math.max(...rows.map((r) => detailOf(r).length))
  for (const r of rows) ctx.out(rowLine(r, width))
  for (const r of rows) if (r.tooOld) ctx.out(`  ${r.tooOld}`)
  return 0
}

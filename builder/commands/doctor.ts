import type { Ctx } from '../context.js'
import { findTool, TOOL_PACKAGES, toolVersion } from '../exec.js'

/** The external tools, what each enables, and how to ask it for its version. */
export const DOCTOR_TOOLS: { tool: string; enables: string; versionFlag?: string }[] = [
  { tool: 'xorriso', enables: 'oemdrv.iso, remastered ISO, PXE tree (reading the ISO)' },
  { tool: 'mcopy', enables: 'remastered ISO (grub.cfg inside efiboot.img)', versionFlag: '--version' },
  { tool: 'skopeo', enables: 'images fetch/import, payload' },
  { tool: 'qemu-img', enables: 'qcow2' },
  { tool: 'qemu-system-x86_64', enables: 'qcow2 by installing in a VM, boot tests' },
  { tool: 'guestfish', enables: 'qcow2 from a RHEL KVM guest image' },
  { tool: 'ignition-validate', enables: 'checking appliance.ign (tests)', versionFlag: '--version' },
  { tool: 'shellcheck', enables: 'checking generated scripts (tests)' },
  { tool: 'docker-registry', enables: 'end-to-end registry tests' },
]

export async function doctor(ctx: Ctx): Promise<number> {
  const rows: { tool: string; found: boolean; version: string | null; package: string; enables: string }[] = []
  for (const t of DOCTOR_TOOLS) {
    const found = (await findTool(t.tool)) !== null
    rows.push({
      tool: t.tool,
      found,
      version: found ? await toolVersion(t.tool, t.versionFlag) : null,
      package: TOOL_PACKAGES[t.tool] ?? t.tool,
      enables: t.enables,
    })
  }
  rows.unshift({ tool: 'node', found: true, version: process.version, package: 'nodejs', enables: 'everything' })
  if (ctx.json) {
    ctx.out(JSON.stringify(rows, null, 2))
  } else {
    for (const r of rows) {
      ctx.out(
        `${r.found ? 'ok     ' : 'missing'} ${r.tool.padEnd(20)} ${(r.version ?? `apt-get install ${r.package}`).slice(0, 50).padEnd(50)} ${r.enables}`,
      )
    }
  }
  return 0
}

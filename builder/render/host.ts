// The rendered text outputs of one plan, as a tree of files relative to an
// output directory: ks.cfg, appliance.bu, appliance.ign, and rootfs/ with
// every host file at its host path, so each can be checked by its own tool.

import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Plan } from '../plan/types.js'
import { renderButane } from './butane.js'
import { hostModel } from './host-model.js'
import { renderIgnition } from './ignition.js'
import { renderKickstart, type KickstartOptions } from './kickstart.js'

export interface TreeFile {
  /** Relative path in the output, '/'-separated */
  path: string
  contents: string | Buffer
  mode: number
}

export function renderHost(plan: Plan, ks: KickstartOptions = { source: 'cdrom' }): TreeFile[] {
  const files: TreeFile[] = [
    { path: 'ks.cfg', contents: renderKickstart(plan, ks), mode: 0o600 },
    { path: 'appliance.bu', contents: renderButane(plan), mode: 0o600 },
    { path: 'appliance.ign', contents: renderIgnition(plan), mode: 0o600 },
  ]
  for (const f of hostModel(plan).files) files.push({ path: `rootfs${f.path}`, contents: f.contents, mode: f.mode })
  return files
}

/** Write a tree under `dir`; file modes are set exactly (umask does not apply). */
export function writeTree(dir: string, files: TreeFile[], dirMode = 0o755): void {
  for (const f of files) {
    const path = join(dir, f.path)
    mkdirSync(dirname(path), { recursive: true, mode: dirMode })
    writeFileSync(path, f.contents, { mode: f.mode })
    chmodSync(path, f.mode)
  }
}

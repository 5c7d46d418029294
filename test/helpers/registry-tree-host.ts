// The distribution flavor's content on the host, as the product lays it, for
// the tests that prove it with the real registry (registry-tree,
// content-tree-firstboot): the payload copied onto the data volume with
// cp -a (the kickstart's %post copies it so), then first boot's tree step,
// templates/host/lib.sh place_registry_tree, run by bash as first boot runs
// it (errexit, umask 077). The build's half is assemblePayload with
// registryTree: the tree's link files in the payload (assemble.ts).
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PAYLOAD_TREE_DIR } from '../../builder/registry/layout.js'

const LIB = fileURLToPath(new URL('../../templates/host/lib.sh', import.meta.url))

export interface LibRun {
  status: number | null
  /** stdout and stderr: what the function logged and warned */
  out: string
}

/** Run one function of lib.sh with its arguments, sourced as first boot sources it. */
export function runLib(fn: string, ...args: string[]): LibRun {
  const r = spawnSync(
    'bash',
    [
      '-c',
      'set -Eeuo pipefail; umask 077; PROG=firstboot-test; PAYLOAD_TREE_DIR=$1; shift; . "$0"; "$@"',
      LIB,
      PAYLOAD_TREE_DIR,
      fn,
      ...args,
    ],
    { encoding: 'utf8' },
  )
  return { status: r.status, out: r.stdout + r.stderr }
}

/** First boot's tree step: the payload's registry tree made whole and renamed into storage. */
export function placeRegistryTree(payloadDir: string, storage: string): LibRun {
  return runLib('place_registry_tree', payloadDir, storage)
}

/**
 * A host's data volume at dataDir: the payload copied with cp -a to
 * dataDir/.payload (the kickstart's copy) and the registry's storage
 * directory dataDir/registry/storage, empty (made by the host spec).
 */
export async function dataVolume(payloadDir: string, dataDir: string): Promise<{ payload: string; storage: string }> {
  await mkdir(join(dataDir, 'registry/storage'), { recursive: true })
  const cp = spawnSync('cp', ['-a', '--', `${payloadDir}/.`, join(dataDir, '.payload')], { encoding: 'utf8' })
  if (cp.status !== 0) throw new Error(`cp -a ${payloadDir} to ${dataDir}/.payload: ${cp.stderr}`)
  return { payload: join(dataDir, '.payload'), storage: join(dataDir, 'registry/storage') }
}

/** Every file under dir (not directories), as paths that start with dir. */
export function filesUnder(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...filesUnder(p))
    else out.push(p)
  }
  return out
}

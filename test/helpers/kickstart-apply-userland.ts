// Apply a rendered kickstart (./kickstart-apply.ts, the Anaconda stand-in) to
// a scratch root that has no userland of its own: this machine's /usr is
// bind-mounted read-only as the root's /usr, with a tmpfs for /usr/local
// (where the host spec writes), in a private mount namespace
// (`unshare -m`, root only). The install medium is a payload of one file, as
// the cdrom kickstart copies and checks it. Returns the runner's exit status
// and output; its stdout is the report as JSON.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = fileURLToPath(new URL('../..', import.meta.url))
const RUNNER = fileURLToPath(new URL('./kickstart-apply-run.ts', import.meta.url))

export function applyKickstartWithHostUsr(ksFile: string, root: string, workDir: string): SpawnSyncReturns<string> {
  const repo = join(workDir, 'repo')
  mkdirSync(join(repo, 'appliance'), { recursive: true })
  writeFileSync(join(repo, 'appliance/images.tsv'), 'none\n')
  writeFileSync(
    join(repo, 'appliance/SHA256SUMS'),
    spawnSync('sha256sum', ['images.tsv'], { cwd: join(repo, 'appliance'), encoding: 'utf8' }).stdout,
  )
  return spawnSync(
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      'bash',
      '-c',
      'set -e; mount --bind /usr "$2/usr"; mount -o remount,bind,ro "$2/usr"; mount -t tmpfs -o mode=0755 ks-usr-local "$2/usr/local"; exec "$0" --import tsx "$4" "$1" "$2" "$3"',
      process.execPath,
      ksFile,
      root,
      repo,
      RUNNER,
    ],
    { encoding: 'utf8', cwd: REPO, timeout: 120_000 },
  )
}

// applyKickstart (./kickstart-apply.ts) as a command, for tests that must set
// up mounts first in a private mount namespace, e.g. a root whose /usr is this
// machine's, bind-mounted read-only by `unshare -m bash -c '…; exec node …'`,
// so that the kickstart's chrooted %post has a userland without the guest
// image. Usage: kickstart-apply-run.ts KS_FILE ROOT [REPO_DIR]. Prints the
// report as JSON on stdout; on failure the error on stderr and exit 1.
import { readFileSync } from 'node:fs'
import { applyKickstart } from './kickstart-apply.js'

const [ksFile, root, repo] = process.argv.slice(2)
if (!ksFile || !root) {
  process.stderr.write('usage: kickstart-apply-run.ts KS_FILE ROOT [REPO_DIR]\n')
  process.exit(2)
}
try {
  const report = await applyKickstart(readFileSync(ksFile, 'utf8'), root, repo ? { repo } : {})
  process.stdout.write(JSON.stringify(report) + '\n')
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`)
  process.exit(1)
}

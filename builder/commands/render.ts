import { join } from 'node:path'
import type { Ctx } from '../context.js'
import { formatDiagnostic } from '../config/diagnostics.js'
import { loadConfig } from '../config/load.js'
import { writeOutputDir } from '../output.js'
import { buildEpoch, planAppliance } from '../plan/plan.js'
import { caSummary, serverCertSummary } from '../plan/pki.js'
import { renderHost, writeTree } from '../render/host.js'
import { writeSecrets } from './secrets-out.js'

/** render -o DIR: the generated text files only, no media. */
/** Said by every command that takes --seed: predictable secrets must always be loud. */
export const SEED_WARNING = '--seed: secrets are derived from the seed and anyone who knows it can recompute them; use this for tests and demos only'

export async function render(opts: { config?: string; output: string; seed?: string }, ctx: Ctx): Promise<number> {
  const loaded = loadConfig(opts.config)
  for (const w of loaded.warnings) ctx.log.warn(formatDiagnostic(w))
  if (opts.seed !== undefined) ctx.log.warn(SEED_WARNING)
  let serverCert = ''
  const files = await writeOutputDir(opts.output, async ({ dir, dest }) => {
    const { plan, stored } = planAppliance(loaded, { epoch: buildEpoch(), ...(opts.seed !== undefined ? { seed: opts.seed } : {}), secretsDir: join(dest, 'secrets') })
    serverCert = [serverCertSummary(plan.pki), caSummary(plan.pki)].filter(Boolean).join('\n  ')
    const tree = renderHost(plan)
    writeTree(dir, tree)
    writeSecrets(join(dir, 'secrets'), plan, stored)
    return tree.map((f) => f.path)
  })
  if (ctx.json) ctx.out(JSON.stringify({ output: opts.output, files }, null, 2))
  else {
    ctx.log.info(`rendered ${files.length} files into ${opts.output} (secrets in ${join(opts.output, 'secrets')}, mode 0600)`)
    ctx.log.info(serverCert)
  }
  return 0
}

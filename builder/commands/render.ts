import { join, resolve } from 'node:path'
import type { Ctx } from '../context.js'
import { prefetchRsaKeys, rsaKeysNeeded } from '../plan/keygen.js'
import { readStoredSecrets } from '../plan/secrets.js'

/** render -o DIR: the generated text files only, no media. */
/** Said by every command that takes --seed: predictable secrets must always be loud. */
export const SEED_WARNING =
  '--seed: secrets are derived from the seed and anyone who knows it can recompute them; use this for tests and demos only'

/** The RSA keys a render into `output` must make; none when its secrets/ cannot be read (the plan reports that, in its turn). */
function keysToMake(output: string): number[] {
  try {
    return rsaKeysNeeded(readStoredSecrets(join(resolve(output), 'secrets')))
  } catch {
    return []
  }
}

export async function render(opts: { config?: string; output: string; seed?: string }, ctx: Ctx): Promise<number> {
  // The RSA keys this render must make (none with --seed, none that secrets/
  // keeps) are started first, on OpenSSL's threads, and made while the rest
  // of the builder loads: they were most of a render's time (issue 21).
  const keys = opts.seed === undefined ? prefetchRsaKeys(keysToMake(opts.output)) : undefined
  const [
    { formatDiagnostic },
    { loadConfig },
    { writeOutputDir },
    { buildEpoch, planAppliance },
    { caSummary, serverCertSummary },
    { renderHost, writeTree },
    { writeSecrets },
  ] = await Promise.all([
    import('../config/diagnostics.js'),
    import('../config/load.js'),
    import('../output.js'),
    import('../plan/plan.js'),
    import('../plan/pki.js'),
    import('../render/host.js'),
    import('./secrets-out.js'),
  ])
  const loaded = loadConfig(opts.config)
  for (const w of loaded.warnings) ctx.log.warn(formatDiagnostic(w))
  if (opts.seed !== undefined) ctx.log.warn(SEED_WARNING)
  await keys
  let serverCert = ''
  const files = await writeOutputDir(opts.output, async ({ dir, dest }) => {
    const { plan, stored } = planAppliance(loaded, {
      epoch: buildEpoch(),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      secretsDir: join(dest, 'secrets'),
    })
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

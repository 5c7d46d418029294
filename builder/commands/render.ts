import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Ctx } from '../context.js'
import { prefetchRsaKeys, rsaKeysNeeded } from '../plan/keygen.js'
import { FLEET_CA_FILE, readStoredSecrets } from '../plan/secrets.js'

/** render -o DIR: the generated text files only, no media. */
/** Said by every command that takes --seed: predictable secrets must always be loud. */
export const SEED_WARNING =
  '--seed: secrets are derived from the seed and anyone who knows it can recompute them; use this for tests and demos only'

/** The RSA keys a render into `output` must make; none when its secrets/ cannot be read (the plan reports that, in its turn). */
function keysToMake(output: string): number[] {
  const secrets = join(resolve(output), 'secrets')
  try {
    // a fleet rendered before: its CA and each host's keys are stored (the
    // config, not read yet, says which hosts a new one would need)
    if (existsSync(join(secrets, FLEET_CA_FILE))) return []
    return rsaKeysNeeded(readStoredSecrets(secrets))
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
    { buildEpoch },
    { planSite },
    { renderHost, writeTree },
    { certificateLines, writeSiteSecrets },
  ] = await Promise.all([
    import('../config/diagnostics.js'),
    import('../config/load.js'),
    import('../output.js'),
    import('../plan/plan.js'),
    import('../plan/site.js'),
    import('../render/host.js'),
    import('./secrets-out.js'),
  ])
  const loaded = loadConfig(opts.config)
  for (const w of loaded.warnings) ctx.log.warn(formatDiagnostic(w))
  if (opts.seed !== undefined) ctx.log.warn(SEED_WARNING)
  // A fleet's hosts are rendered by build's own code, into build's layout
  // (hosts/<name>/host/, each with the kickstart of its OEMDRV): loaded only
  // for a fleet, since it brings the build's modules.
  const renderHostFiles = loaded.config.fleet ? (await import('./build-media.js')).renderHostFiles : undefined
  await keys
  let certificates: string[] = []
  const files = await writeOutputDir(opts.output, async ({ dir, dest }) => {
    // planned and its secrets written as build does: a fleet's CA once, each host's own under secrets/hosts/<name>/
    const site = planSite(loaded, {
      epoch: buildEpoch(),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      secretsDir: join(dest, 'secrets'),
    })
    certificates = certificateLines(site)
    writeSiteSecrets(join(dir, 'secrets'), site)
    if (renderHostFiles) return site.hosts.flatMap((h) => renderHostFiles(dir, site, h))
    // a site of one: its files at the top of the output, as render always wrote them
    const tree = renderHost(site.hosts[0]!.plan)
    writeTree(dir, tree)
    return tree.map((f) => f.path)
  })
  if (ctx.json) ctx.out(JSON.stringify({ output: opts.output, files }, null, 2))
  else {
    const hosts = loaded.config.fleet ? ` for ${loaded.config.fleet.hosts.length} hosts (hosts/<name>/host/)` : ''
    ctx.log.info(`rendered ${files.length} files${hosts} into ${opts.output} (secrets in ${join(opts.output, 'secrets')}, mode 0600)`)
    ctx.log.info(`${hosts ? '  ' : ''}${certificates.join('\n  ')}`)
  }
  return 0
}

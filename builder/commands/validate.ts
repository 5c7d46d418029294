import { formatDiagnostic, type Diagnostic } from '../config/diagnostics.js'
import { diagnosticAt, loadConfig, type LoadedConfig } from '../config/load.js'
import type { Ctx } from '../context.js'
import { importCommand, missingFromCache } from '../payload/assemble.js'
import { defaultCacheDir } from '../context.js'
import { resolveStack } from '../payload/lock.js'

/**
 * Stack images the config names (registry.images.<role>) that the image
 * cache does not hold: a warning each, at the config field, saying how to
 * put the image there. A build refuses them (unless --allow-missing), as it
 * refuses a missing locked image; validate only looks.
 */
export async function stackOverrideWarnings(loaded: LoadedConfig, cacheDir: string, configArg?: string): Promise<Diagnostic[]> {
  const overrides = resolveStack(loaded.config).filter((s) => s.override)
  if (!overrides.length) return []
  const missing = await missingFromCache(
    cacheDir,
    overrides.map((s) => ({ role: 'stack' as const, ociName: s.ociName, ref: s.ref, digest: s.digest })),
  )
  return missing.map((m) =>
    diagnosticAt(
      loaded,
      ['registry', 'images', m.ociName.replace(/^stack\//, '')],
      `${m.ref}@${m.digest} is not in the image cache ${cacheDir}; a build refuses to go without it (unless --allow-missing). ` +
        `Import an archive of it: ${importCommand(m.ref, cacheDir)}, or fetch it on a connected machine: ` +
        `mirror-appliance images fetch${configArg ? ` -c ${configArg}` : ''} --stack-only --cache ${cacheDir}`,
      { severity: 'warning', atKey: true },
    ),
  )
}

/** Check a config; invalid configs throw ConfigError (exit 2) from the loader. */
export async function validate(opts: { config?: string; cache?: string }, ctx: Ctx): Promise<number> {
  const loaded = loadConfig(opts.config)
  const warnings = [...loaded.warnings, ...(await stackOverrideWarnings(loaded, opts.cache ?? defaultCacheDir(), opts.config))]
  if (ctx.json) {
    ctx.out(
      JSON.stringify(
        {
          valid: true,
          file: loaded.file,
          digest: loaded.digest,
          warnings: warnings.map((d) => formatDiagnostic(d, { caret: false })),
          config: loaded.config,
        },
        null,
        2,
      ),
    )
    return 0
  }
  for (const w of warnings) ctx.log.warn(formatDiagnostic(w))
  ctx.log.info(
    `${loaded.file}: valid (${loaded.config.registry.flavor} registry on ${loaded.config.host.hostname}:${loaded.config.registry.port}, RHEL ${loaded.config.host.rhel})`,
  )
  return 0
}

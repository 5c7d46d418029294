import { formatDiagnostic } from '../config/diagnostics.js'
import { loadConfig } from '../config/load.js'
import type { Ctx } from '../cli.js'

/** Check a config; invalid configs throw ConfigError (exit 2) from the loader. */
export async function validate(opts: { config?: string }, ctx: Ctx): Promise<number> {
  const loaded = loadConfig(opts.config)
  if (ctx.json) {
    ctx.out(
      JSON.stringify(
        { valid: true, file: loaded.file, digest: loaded.digest, warnings: loaded.warnings.map((d) => formatDiagnostic(d, { caret: false })), config: loaded.config },
        null,
        2,
      ),
    )
    return 0
  }
  for (const w of loaded.warnings) ctx.log.warn(formatDiagnostic(w))
  ctx.log.info(`${loaded.file}: valid (${loaded.config.registry.flavor} registry on ${loaded.config.host.hostname}:${loaded.config.registry.port}, RHEL ${loaded.config.host.rhel})`)
  return 0
}

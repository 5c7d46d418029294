import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Ctx } from '../context.js'
import { UserError } from '../errors.js'
import { formatBytes } from '../log.js'
import type { BuildManifest } from '../manifest.js'

/** inspect PATH: print the manifest of a build output directory or manifest.json. */
export async function inspect(opts: { path: string }, ctx: Ctx): Promise<number> {
  if (!existsSync(opts.path)) throw new UserError(`${opts.path}: no such file or directory`)
  const file = statSync(opts.path).isDirectory() ? join(opts.path, 'manifest.json') : opts.path
  if (!existsSync(file)) throw new UserError(`${opts.path}: no manifest.json here; is this a mirror-appliance build output?`)
  let m: BuildManifest
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as BuildManifest
    if (m.schema !== 'mirror-appliance/manifest/v1') throw new Error(`unknown manifest schema ${String(m.schema)}`)
  } catch (e) {
    throw new UserError(`${file}: not a mirror-appliance manifest (${(e as Error).message})`)
  }
  if (ctx.json) {
    ctx.out(JSON.stringify(m, null, 2))
    return 0
  }
  const lines = [
    `mirror-appliance ${m.builder.version} build of ${m.config.file}`,
    `  config digest: ${m.config.digest}`,
    // A fleet's manifest names every host; older manifests and a site of one, the one.
    ...((m.hosts?.length ?? 0) > 1
      ? [
          `  hosts:`,
          ...m.hosts!.map(
            (h) =>
              `    ${h.hostname} (RHEL ${h.rhel}), ${h.flavor} registry on port ${h.port}${h.address ? `, ${h.address}` : ''}: ${h.dir}/`,
          ),
        ]
      : [`  host:          ${m.host.hostname} (RHEL ${m.host.rhel}), ${m.host.flavor} registry on port ${m.host.port}`]),
    `  built:         ${new Date(m.epoch * 1000).toISOString()} (SOURCE_DATE_EPOCH ${m.epoch})`,
    `  demo:          ${m.demo ? 'yes: not for production' : 'no'}`,
    `  images:        ${m.images.length}${m.missingImages.length ? `, ${m.missingImages.length} missing: ${m.missingImages.join(', ')}` : ''}`,
    ...m.images.map((i) => `    ${i.role.padEnd(8)} ${i.sourceRef} ${i.digest} ${formatBytes(i.size)}`),
    `  outputs:`,
    ...m.outputs.map((o) => `    ${o.path.padEnd(28)} ${formatBytes(o.size).padStart(10)}  sha256:${o.sha256}`),
    ...(m.baseIso ? [`  base ISO:      ${m.baseIso.path} (${m.baseIso.volumeId}) sha256:${m.baseIso.sha256}`] : []),
    `  tools:`,
    ...Object.entries(m.tools).map(([k, v]) => `    ${k}: ${v}`),
  ]
  ctx.out(lines.join('\n'))
  return 0
}

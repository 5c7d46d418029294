import { existsSync, statSync } from 'node:fs'
import type { Ctx } from '../cli.js'
import { UserError } from '../errors.js'

/** serve DIR: HTTP for a PXE tree until Ctrl-C. */
export async function serve(opts: { dir: string; port: number; host: string; prefix?: string }, ctx: Ctx): Promise<number> {
  if (!existsSync(opts.dir) || !statSync(opts.dir).isDirectory()) throw new UserError(`${opts.dir}: not a directory`)
  const { serveDir, normalizePrefix } = await import('../media/serve.js')
  const prefix = normalizePrefix(opts.prefix)
  const server = await serveDir({ dir: opts.dir, port: opts.port, host: opts.host, prefix })
  ctx.log.info(`serving ${opts.dir} on http://${opts.host}:${opts.port}${prefix}/ (Ctrl-C to stop)`)
  await new Promise<void>((resolve) => {
    ctx.signal.addEventListener('abort', () => server.close(() => resolve()), { once: true })
  })
  ctx.log.info('stopped')
  return 0
}

import { existsSync, statSync } from 'node:fs'
import type { Ctx } from '../context.js'
import { UserError } from '../errors.js'

/**
 * serve DIR: HTTP for a PXE tree until Ctrl-C. Each request is logged to
 * stderr (client, method, path, status, bytes) whatever --quiet says: the
 * tree's ks.cfg carries the registry's TLS key and passwords, and the log is
 * how an operator sees who fetched it.
 */
export async function serve(opts: { dir: string; port: number; bind: string; prefix?: string }, ctx: Ctx): Promise<number> {
  const { serveDir, normalizePrefix, checkBindAddress, isWildcard, accessLogLine } = await import('../media/serve.js')
  const bind = checkBindAddress(opts.bind)
  if (!existsSync(opts.dir) || !statSync(opts.dir).isDirectory()) throw new UserError(`${opts.dir}: not a directory`)
  const prefix = normalizePrefix(opts.prefix)
  const server = await serveDir({
    dir: opts.dir,
    port: opts.port,
    host: bind,
    prefix,
    onRequest: (line) => process.stderr.write(accessLogLine(line) + '\n'),
  })
  const shown = bind.includes(':') ? `[${bind}]` : bind
  ctx.log.info(`serving ${opts.dir} on http://${shown}:${opts.port}${prefix}/ (Ctrl-C to stop; each request is logged here)`)
  if (isWildcard(bind))
    ctx.log.warn(
      `listening on every address of this machine: anyone who can reach port ${opts.port} can fetch ks.cfg, and with it the registry's TLS key and passwords. ` +
        '--bind ADDR listens on the install network only.',
    )
  ctx.log.info('stop serve as soon as the hosts are installed: the kickstart is only needed during the install')
  await new Promise<void>((resolve) => {
    ctx.signal.addEventListener('abort', () => server.close(() => resolve()), { once: true })
  })
  ctx.log.info('stopped')
  return 0
}

// `mirror-appliance serve DIR`: a small static HTTP server for the PXE tree.
// Installers fetch the kernel, initrd, kickstart and repository over it, and
// some of them (Anaconda's repo code, iPXE) use HEAD and Range requests, so
// those are exact: Content-Length always, 206 with Content-Range for one
// satisfiable range, 416 otherwise. Nothing outside DIR is ever served.

import { createReadStream } from 'node:fs'
import { realpath, stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { extname, resolve, sep } from 'node:path'
import { UserError } from '../errors.js'

export interface ServeOptions {
  dir: string
  port: number
  /** Address to listen on (default all interfaces) */
  host?: string
  /** URL path the tree is served under, e.g. /pxe for http://host:8080/pxe/ks.cfg (default /) */
  prefix?: string
  /** Called once per finished request: for access logs */
  onRequest?: (line: { method: string; path: string; status: number; bytes: number }) => void
}

export type ByteRange = { start: number; end: number }

/**
 * Parse a Range header against a file size. null: no (usable) range, send the
 * whole file; 'unsatisfiable': answer 416. Several ranges are answered with
 * the whole file, which RFC 9110 allows.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null | 'unsatisfiable' {
  if (!header) return null
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header.trim())
  if (!m) return null
  const [, a, b] = m
  if (a === '' && b === '') return null
  if (a === '') {
    const n = Number(b)
    if (n === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(a)
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
  if (start >= size || (b !== '' && Number(b) < start)) return 'unsatisfiable'
  return { start, end }
}

const TEXT = new Set(['.cfg', '.ipxe', '.txt', '.json', '.xml', '.repo', '.treeinfo', '.discinfo', '.sh'])

/** '/pxe/' → '/pxe', '' or '/' → ''; refuses anything that is not a plain absolute path. */
export function normalizePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '' || prefix === '/') return ''
  if (!prefix.startsWith('/') || /[?#%\\]|\/\.\.?(\/|$)|\/\//.test(prefix.replace(/\/+$/, ''))) {
    throw new UserError(`--prefix must be an absolute URL path like /pxe, got '${prefix}'`)
  }
  return prefix.replace(/\/+$/, '')
}

/** The request path with the prefix taken off, or null if the request is not under it. */
export function stripPrefix(prefix: string, url: string): string | null {
  if (!prefix) return url
  if (url === prefix) return '/'
  return url.startsWith(prefix + '/') ? url.slice(prefix.length) : null
}

/** Map a request path to a file under root, or null if it would leave root. */
export function resolveUnder(root: string, urlPath: string): string | null {
  let p: string
  try {
    p = decodeURIComponent(urlPath.split('?')[0]!.split('#')[0]!)
  } catch {
    return null
  }
  if (p.includes('\0') || !p.startsWith('/')) return null
  const full = resolve(root, '.' + p)
  if (full !== root && !full.startsWith(root + sep)) return null
  return full
}

async function handle(root: string, prefix: string, req: IncomingMessage, res: ServerResponse): Promise<number> {
  const send = (status: number, body: string, headers: Record<string, string> = {}): number => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), ...headers })
    res.end(req.method === 'HEAD' ? undefined : body)
    return status
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n', { Allow: 'GET, HEAD' })
  const under = stripPrefix(prefix, req.url ?? '/')
  const path = under === null ? null : resolveUnder(root, under)
  if (!path) return send(404, 'not found\n')
  // Symlinks inside the tree must not lead out of it either.
  const real = await realpath(path).catch(() => null)
  if (!real || (real !== root && !real.startsWith(root + sep))) return send(404, 'not found\n')
  const s = await stat(real).catch(() => null)
  if (!s?.isFile()) return send(404, 'not found\n')

  const size = s.size
  const headers: Record<string, string> = {
    'Accept-Ranges': 'bytes',
    'Content-Type': TEXT.has(extname(real)) ? 'text/plain; charset=utf-8' : 'application/octet-stream',
    'Last-Modified': s.mtime.toUTCString(),
  }
  const range = parseRange(req.headers.range, size)
  if (range === 'unsatisfiable') return send(416, 'range not satisfiable\n', { 'Content-Range': `bytes */${size}` })
  const status = range ? 206 : 200
  const start = range?.start ?? 0
  const end = range?.end ?? size - 1
  headers['Content-Length'] = String(size === 0 ? 0 : end - start + 1)
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`
  res.writeHead(status, headers)
  if (req.method === 'HEAD' || size === 0) {
    res.end()
    return status
  }
  await new Promise<void>((ok) => {
    const stream = createReadStream(real, { start, end })
    stream.on('error', () => {
      res.destroy()
      ok()
    })
    res.on('close', () => {
      stream.destroy()
      ok()
    })
    stream.pipe(res)
  })
  return status
}

/** Start serving dir; resolves once listening. Close with server.close(). */
export async function serveDir(o: ServeOptions): Promise<Server> {
  const s = await stat(o.dir).catch(() => null)
  if (!s?.isDirectory()) throw new UserError(`${o.dir} is not a directory`)
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new UserError(`port must be 0..65535, got ${o.port}`)
  const prefix = normalizePrefix(o.prefix)
  const root = await realpath(resolve(o.dir))
  const server = createServer((req, res) => {
    handle(root, prefix, req, res)
      .then((status) => o.onRequest?.({ method: req.method ?? '', path: req.url ?? '', status, bytes: Number(res.getHeader('Content-Length') ?? 0) }))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500)
        res.end()
      })
  })
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      fail(e.code === 'EADDRINUSE' ? new UserError(`port ${o.port} is already in use`) : e.code === 'EACCES' ? new UserError(`no permission to listen on port ${o.port}`) : e),
    )
    server.listen(o.port, o.host, () => ok())
  })
  return server
}

// `mirror-appliance serve DIR`: a small static HTTP server for the PXE tree.
// Installers fetch the kernel, initrd, kickstart and repository over it, and
// some of them (Anaconda's repo code, iPXE) use HEAD and Range requests, so
// those are exact: Content-Length always, 206 with Content-Range for one
// satisfiable range, 416 otherwise. Nothing outside DIR is ever served.
// Every request is reported (onRequest) with the client's address: the tree's
// ks.cfg holds the registry's keys, so who fetched what must be on record.

import { createReadStream } from 'node:fs'
import { realpath, stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { isIP } from 'node:net'
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
  onRequest?: (line: AccessLine) => void
}

export interface AccessLine {
  /** The client's address, as the socket saw it (IPv4-mapped IPv6 shown as plain IPv4) */
  client: string
  method: string
  /** The request target as sent (path and query) */
  path: string
  status: number
  bytes: number
}

/** Anything but printable ASCII (and the space and quote that separate the fields) as %XX: a request cannot forge log lines. */
const logSafe = (s: string) =>
  s.replace(/[^\x21-\x7e]|"/g, (c) => [...Buffer.from(c)].map((b) => '%' + b.toString(16).toUpperCase().padStart(2, '0')).join(''))

/** One access log line: `2023-11-14T22:13:20Z 192.0.2.7 "GET /ks.cfg" 200 4096`. */
export function accessLogLine(l: AccessLine, now: Date = new Date()): string {
  return `${now.toISOString().replace(/\.\d{3}Z$/, 'Z')} ${logSafe(l.client)} "${logSafe(l.method)} ${logSafe(l.path)}" ${l.status} ${l.bytes}`
}

/** The address a --bind names: an IPv4 or IPv6 literal (brackets allowed), or a UserError saying what to give. */
export function checkBindAddress(addr: string): string {
  const a = addr.replace(/^\[(.*)\]$/, '$1')
  if (isIP(a) === 0)
    throw new UserError(
      `--bind: '${addr}' is not an IP address`,
      'give the address this machine has on the install network, e.g. --bind 192.0.2.1 (0.0.0.0 listens on every address)',
    )
  return a
}

/** True for the addresses that listen on every interface. */
export const isWildcard = (addr: string): boolean => addr === '0.0.0.0' || addr === '::'

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

/** Status and body bytes of an answer, for the access log. */
interface Answered {
  status: number
  bytes: number
}

async function handle(root: string, prefix: string, req: IncomingMessage, res: ServerResponse): Promise<Answered> {
  const head = req.method === 'HEAD'
  const send = (status: number, body: string, headers: Record<string, string> = {}): Answered => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), ...headers })
    res.end(head ? undefined : body)
    return { status, bytes: head ? 0 : Buffer.byteLength(body) }
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
  const length = size === 0 ? 0 : end - start + 1
  headers['Content-Length'] = String(length)
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`
  res.writeHead(status, headers)
  if (head || size === 0) {
    res.end()
    return { status, bytes: 0 }
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
  return { status, bytes: length }
}

/** Start serving dir; resolves once listening. Close with server.close(). */
export async function serveDir(o: ServeOptions): Promise<Server> {
  const s = await stat(o.dir).catch(() => null)
  if (!s?.isDirectory()) throw new UserError(`${o.dir} is not a directory`)
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new UserError(`port must be 0..65535, got ${o.port}`)
  const prefix = normalizePrefix(o.prefix)
  const root = await realpath(resolve(o.dir))
  const server = createServer((req, res) => {
    const client = (req.socket.remoteAddress ?? '?').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1')
    handle(root, prefix, req, res)
      .catch((): Answered => {
        if (!res.headersSent) res.writeHead(500)
        res.end()
        return { status: 500, bytes: 0 }
      })
      .then(({ status, bytes }) => o.onRequest?.({ client, method: req.method ?? '', path: req.url ?? '', status, bytes }))
  })
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      fail(
        e.code === 'EADDRINUSE'
          ? new UserError(`port ${o.port} is already in use`)
          : e.code === 'EACCES'
            ? new UserError(`no permission to listen on port ${o.port}`)
            : e.code === 'EADDRNOTAVAIL'
              ? new UserError(
                  `--bind ${o.host}: no network interface of this machine has that address`,
                  'see "ip -brief address" for the addresses it has',
                )
              : e,
      ),
    )
    server.listen(o.port, o.host, () => ok())
  })
  return server
}

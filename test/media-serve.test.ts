// serveDir with real HTTP requests: lengths, ranges, HEAD, and no way out of the served directory.
import t from 'tap'
import { request } from 'node:http'
import { symlink, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { normalizePrefix, parseRange, resolveUnder, serveDir, stripPrefix } from '../builder/media/serve.js'
import { UserError } from '../builder/errors.js'

interface Res { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

function req(port: number, path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Res> {
  return new Promise((ok, fail) => {
    const r = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
    })
    r.on('error', fail)
    r.end()
  })
}

t.test('parseRange', async (t) => {
  const cases: Array<[string | undefined, number, ReturnType<typeof parseRange>]> = [
    [undefined, 10, null],
    ['bytes=0-3', 10, { start: 0, end: 3 }],
    ['bytes=5-', 10, { start: 5, end: 9 }],
    ['bytes=-3', 10, { start: 7, end: 9 }],
    ['bytes=-30', 10, { start: 0, end: 9 }],
    ['bytes=8-100', 10, { start: 8, end: 9 }],
    ['bytes=10-', 10, 'unsatisfiable'],
    ['bytes=5-2', 10, 'unsatisfiable'],
    ['bytes=-0', 10, 'unsatisfiable'],
    ['bytes=0-1,4-5', 10, null],
    ['items=0-1', 10, null],
  ]
  for (const [h, size, want] of cases) t.same(parseRange(h, size), want, String(h))
  t.equal(resolveUnder('/srv', '/a/../../etc/passwd'), null)
  t.equal(resolveUnder('/srv', '/%2e%2e/etc/passwd'), null)
  t.equal(resolveUnder('/srv', '/a%00b'), null)
  t.equal(resolveUnder('/srv', '/%E0%A4%A'), null, 'bad escapes')
  t.equal(resolveUnder('/srv', '/images/pxeboot/vmlinuz?x=1'), '/srv/images/pxeboot/vmlinuz')
})

t.test('serving a tree', async (t) => {
  const root = t.testdir({ srv: { 'ks.cfg': '#version=RHEL8\ntext\n', 'empty.bin': '', images: { 'a.bin': '' } }, 'secret.txt': 'outside' })
  const srv = join(root, 'srv')
  const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251))
  await writeFile(join(srv, 'images', 'a.bin'), data)
  await mkdir(join(srv, 'space dir'))
  await writeFile(join(srv, 'space dir', 'f i.txt'), 'spaced')
  await symlink(join(root, 'secret.txt'), join(srv, 'link-out'))
  const logs: unknown[] = []
  const server = await serveDir({ dir: srv, port: 0, host: '127.0.0.1', onRequest: (l) => logs.push(l) })
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  const port = (server.address() as AddressInfo).port

  const full = await req(port, '/images/a.bin')
  t.equal(full.status, 200)
  t.equal(full.headers['content-length'], '100000')
  t.equal(full.headers['accept-ranges'], 'bytes')
  t.ok(full.body.equals(data), 'whole file')

  const part = await req(port, '/images/a.bin', { headers: { Range: 'bytes=1000-1999' } })
  t.equal(part.status, 206)
  t.equal(part.headers['content-range'], 'bytes 1000-1999/100000')
  t.equal(part.headers['content-length'], '1000')
  t.ok(part.body.equals(data.subarray(1000, 2000)))

  const tail = await req(port, '/images/a.bin', { headers: { Range: 'bytes=-10' } })
  t.equal(tail.status, 206)
  t.ok(tail.body.equals(data.subarray(99_990)))

  const bad = await req(port, '/images/a.bin', { headers: { Range: 'bytes=100000-' } })
  t.equal(bad.status, 416)
  t.equal(bad.headers['content-range'], 'bytes */100000')

  const head = await req(port, '/ks.cfg', { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers['content-length'], '20')
  t.equal(head.body.length, 0, 'HEAD has no body')
  t.match(head.headers['content-type'], /^text\/plain/)

  const empty = await req(port, '/empty.bin')
  t.equal(empty.status, 200)
  t.equal(empty.headers['content-length'], '0')

  t.equal((await req(port, '/space%20dir/f%20i.txt')).body.toString(), 'spaced', 'percent-decoding')
  for (const p of ['/../secret.txt', '/images/../../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/link-out', '/nope', '/images', '/']) {
    const r = await req(port, p)
    t.equal(r.status, 404, `404 for ${p}`)
    t.notMatch(r.body.toString(), /outside/)
  }
  t.equal((await req(port, '/ks.cfg', { method: 'POST' })).status, 405)
  t.ok(logs.length > 10, 'access log callback')

  await t.rejects(serveDir({ dir: srv, port }), new UserError(`port ${port} is already in use`))
  await t.rejects(serveDir({ dir: join(srv, 'ks.cfg'), port: 0 }), /is not a directory/)
})

t.test('serving under a URL path prefix (a --pxe-url with a path)', async (t) => {
  t.equal(normalizePrefix(undefined), '')
  t.equal(normalizePrefix('/'), '')
  t.equal(normalizePrefix('/pxe/'), '/pxe')
  t.equal(normalizePrefix('/sites/lab1'), '/sites/lab1')
  for (const bad of ['pxe', '/a/../b', '/a/./b', '/a//b', '/a?b', '/a#b', '/a%2fb']) t.throws(() => normalizePrefix(bad), UserError, `refuses ${bad}`)
  t.equal(stripPrefix('/pxe', '/pxe/ks.cfg'), '/ks.cfg')
  t.equal(stripPrefix('/pxe', '/pxe'), '/')
  t.equal(stripPrefix('/pxe', '/pxefoo/ks.cfg'), null)
  t.equal(stripPrefix('', '/ks.cfg'), '/ks.cfg')

  const root = t.testdir({ srv: { 'ks.cfg': '#version=RHEL8\n', repo: { '.treeinfo': '[general]\n' } }, 'secret.txt': 'outside' })
  const server = await serveDir({ dir: join(root, 'srv'), port: 0, host: '127.0.0.1', prefix: '/pxe/' })
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  const port = (server.address() as AddressInfo).port
  t.equal((await req(port, '/pxe/ks.cfg')).body.toString(), '#version=RHEL8\n', 'served under the prefix')
  t.equal((await req(port, '/pxe/repo/.treeinfo')).status, 200)
  for (const p of ['/ks.cfg', '/pxefoo/ks.cfg', '/pxe/../secret.txt', '/pxe/%2e%2e/secret.txt', '/secret.txt']) t.equal((await req(port, p)).status, 404, `404 for ${p}`)
})

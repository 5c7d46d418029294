// serveDir with real HTTP requests: lengths, ranges, HEAD, and no way out of the served directory.
import t from 'tap'
import { request } from 'node:http'
import { symlink, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import {
  accessLogLine,
  checkBindAddress,
  isWildcard,
  normalizePrefix,
  parseRange,
  resolveUnder,
  serveDir,
  stripPrefix,
} from '../builder/media/serve.js'
import { UserError } from '../builder/errors.js'

interface Res {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

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
  for (const p of [
    '/../secret.txt',
    '/images/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/..%2fsecret.txt',
    '/link-out',
    '/nope',
    '/images',
    '/',
  ]) {
    const r = await req(port, p)
    t.equal(r.status, 404, `404 for ${p}`)
    t.notMatch(r.body.toString(), /outside/)
  }
  t.equal((await req(port, '/ks.cfg', { method: 'POST' })).status, 405)
  t.ok(logs.length > 10, 'access log callback')
  t.same(logs[0], { client: '127.0.0.1', method: 'GET', path: '/images/a.bin', status: 200, bytes: 100000 }, 'each with the client address')

  await t.rejects(serveDir({ dir: srv, port }), new UserError(`port ${port} is already in use`))
  await t.rejects(serveDir({ dir: join(srv, 'ks.cfg'), port: 0 }), /is not a directory/)
})

t.test('serving under a URL path prefix (a --pxe-url with a path)', async (t) => {
  t.equal(normalizePrefix(undefined), '')
  t.equal(normalizePrefix('/'), '')
  t.equal(normalizePrefix('/pxe/'), '/pxe')
  t.equal(normalizePrefix('/sites/lab1'), '/sites/lab1')
  for (const bad of ['pxe', '/a/../b', '/a/./b', '/a//b', '/a?b', '/a#b', '/a%2fb'])
    t.throws(() => normalizePrefix(bad), UserError, `refuses ${bad}`)
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
  for (const p of ['/ks.cfg', '/pxefoo/ks.cfg', '/pxe/../secret.txt', '/pxe/%2e%2e/secret.txt', '/secret.txt'])
    t.equal((await req(port, p)).status, 404, `404 for ${p}`)
})

// Issue 18: the tree's ks.cfg holds the registry's keys, so serve says who
// fetched what, and listens where it is told.
t.test('access log lines: client, method, path, status, bytes; nothing a request sends can forge a line', async (t) => {
  const at = new Date(Date.UTC(2023, 10, 14, 22, 13, 20, 512))
  t.equal(
    accessLogLine({ client: '192.0.2.7', method: 'GET', path: '/ks.cfg', status: 200, bytes: 4096 }, at),
    '2023-11-14T22:13:20Z 192.0.2.7 "GET /ks.cfg" 200 4096',
  )
  t.equal(
    accessLogLine(
      { client: '::1', method: 'GET', path: '/a b"\n2023-11-14T00:00:00Z 10.0.0.1 "GET /forged" 200 1', status: 404, bytes: 10 },
      at,
    ),
    '2023-11-14T22:13:20Z ::1 "GET /a%20b%22%0A2023-11-14T00:00:00Z%2010.0.0.1%20%22GET%20/forged%22%20200%201" 404 10',
    'space, quote and line break escaped: one request, one line',
  )
  t.equal(
    accessLogLine({ client: '192.0.2.7', method: 'GET', path: '/é', status: 404, bytes: 0 }, at),
    '2023-11-14T22:13:20Z 192.0.2.7 "GET /%C3%A9" 404 0',
  )
})

t.test('--bind: an IP address, or a usage error that says what to give', async (t) => {
  t.equal(checkBindAddress('192.0.2.1'), '192.0.2.1')
  t.equal(checkBindAddress('::1'), '::1')
  t.equal(checkBindAddress('[fe80::1]'), 'fe80::1', 'brackets as in a URL')
  for (const bad of ['', 'pxe.example.com', '192.0.2', '192.0.2.1:8080', '0.0.0.0; rm -rf /', '-h'])
    t.throws(() => checkBindAddress(bad), { name: 'UserError', message: `--bind: '${bad}' is not an IP address` }, `refuses '${bad}'`)
  t.ok(isWildcard('0.0.0.0') && isWildcard('::') && !isWildcard('127.0.0.1'))
})

t.test('serve (the command): each request logged to stderr with the client; --bind; bad addresses are usage errors', async (t) => {
  const { spawn } = await import('node:child_process')
  const { CLI, runCli } = await import('./helpers/cli.js')
  const { freePort } = await import('./helpers/net.js')
  const root = t.testdir({ 'ks.cfg': '#version=RHEL8\ntext\n' })

  // One serve process: started, fetched from, stopped with Ctrl-C; its stderr.
  const serveWith = async (args: string[], fetches: (port: number) => Promise<void>) => {
    const port = await freePort()
    const child = spawn(process.execPath, [CLI, 'serve', root, '--port', String(port), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    })
    t.teardown(() => {
      child.kill('SIGKILL')
    })
    let err = ''
    child.stderr.on('data', (b) => (err += b))
    for (let i = 0; i < 100 && !err.includes('serving'); i++) await new Promise((r) => setTimeout(r, 100))
    await fetches(port)
    child.kill('SIGINT')
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    return { code, err, port }
  }

  const bound = await serveWith(['--bind', '127.0.0.1'], async (port) => {
    t.equal((await fetch(`http://127.0.0.1:${port}/ks.cfg`)).status, 200)
    t.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404)
    t.equal((await fetch(`http://127.0.0.1:${port}/ks.cfg`, { method: 'HEAD' })).status, 200)
  })
  t.equal(bound.code, 0, bound.err)
  t.match(bound.err, new RegExp(`serving ${root} on http://127\\.0\\.0\\.1:${bound.port}/`), 'it says where it listens')
  const lines = bound.err.split('\n').filter((l) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ /.test(l))
  t.same(
    lines.map((l) => l.split(' ').slice(1).join(' ')),
    ['127.0.0.1 "GET /ks.cfg" 200 20', '127.0.0.1 "GET /nope" 404 10', '127.0.0.1 "HEAD /ks.cfg" 200 0'],
    'one line per request, in order: client, method and path, status, bytes',
  )
  t.notMatch(bound.err, /every address/, 'bound to one address: no warning')
  t.match(bound.err, /stop serve as soon as the hosts are installed/)

  // Without --bind: every address, as before (scripts keep working), said out loud.
  const open = await serveWith([], async (port) => {
    t.equal((await fetch(`http://127.0.0.1:${port}/ks.cfg`)).status, 200)
  })
  t.equal(open.code, 0, open.err)
  t.match(
    open.err,
    /warning: listening on every address of this machine: anyone who can reach port \d+ can fetch ks\.cfg, and with it the registry's TLS key and passwords/,
  )

  const port = String(await freePort())
  for (const [args, msg] of [
    [['--bind', 'pxe.example.com'], /error: --bind: 'pxe\.example\.com' is not an IP address/],
    [['--bind', '192.0.2.123'], /error: --bind 192\.0\.2\.123: no network interface of this machine has that address/],
    [['--bind', '127.0.0.1', '--host', '0.0.0.0'], /error: --bind 127\.0\.0\.1 and --host 0\.0\.0\.0 disagree/],
  ] as const) {
    const r = await runCli(['serve', root, '--port', port, ...args])
    t.equal(r.code, 2, `${args.join(' ')}: exit 2 (usage)`)
    t.match(r.stderr, msg)
  }
})

t.test("the build's serve line: --bind to the --pxe-url's address when it is one, else a hint", async (t) => {
  const { serveCommand, serveBindHint } = await import('../builder/commands/build-stages.js')
  t.equal(serveCommand('dist/pxe', 'http://192.0.2.1:8080'), 'mirror-appliance serve dist/pxe --bind 192.0.2.1 --port 8080')
  t.equal(
    serveCommand('dist/pxe', 'http://[2001:db8::5]:8080/lab'),
    'mirror-appliance serve dist/pxe --bind 2001:db8::5 --port 8080 --prefix /lab',
  )
  t.equal(serveBindHint('http://192.0.2.1:8080'), null)
  t.equal(
    serveCommand('dist/pxe', 'http://pxe.lab.example:8080'),
    'mirror-appliance serve dist/pxe --port 8080',
    'a host name: no address to bind is known here',
  )
  t.equal(
    serveBindHint('http://pxe.lab.example:8080'),
    'add --bind with the address pxe.lab.example has on this machine, so that only the install network reaches the kickstart',
  )
  t.equal(
    serveCommand('dist/pxe', 'https://192.0.2.1/pxe'),
    'mirror-appliance serve dist/pxe --port 443 --prefix /pxe behind your HTTPS front end (serve speaks plain HTTP)',
    'https: the front end has the address',
  )
})

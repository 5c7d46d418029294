// A production-shaped build through the CLI: a config of the user's, a
// RHEL-shaped base ISO, --pxe; then `serve` hands the tree out over HTTP.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, runCli } from './helpers/cli.js'
import { fixtureIso } from './helpers/fixture-iso.js'
import { freePort } from './helpers/net.js'

t.test('build --iso --pxe with a FIPS config; serve the PXE tree', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'ma-iso-'))
  const base = await fixtureIso()
  const port = await freePort()
  const cfg = join(d, 'appliance.yaml')
  writeFileSync(
    cfg,
    `apiVersion: mirror-appliance/v1
host:
  hostname: registry.lab.example
  fips: true
  disk: {device: sda}
registry:
  flavor: distribution
`,
  )
  const env = { MIRROR_APPLIANCE_CACHE: join(d, 'cache'), SOURCE_DATE_EPOCH: '1700000000' }
  const missing = await runCli(['build', '-c', cfg, '-o', join(d, 'dist'), '--iso', base], { env })
  t.equal(missing.code, 2, 'a production build refuses when stack images are missing')
  t.match(missing.stderr, /mirror-appliance images fetch/)
  t.notOk(existsSync(join(d, 'dist')), 'and writes nothing')

  const r = await runCli(
    ['build', '-c', cfg, '-o', join(d, 'dist'), '--iso', base, '--pxe', '--pxe-url', `http://127.0.0.1:${port}`, '--allow-missing'],
    { env },
  )
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /iPXE snippet/)
  const dist = join(d, 'dist')
  for (const f of ['appliance.iso', 'oemdrv.iso', 'pxe/ks.cfg', 'pxe/images/pxeboot/vmlinuz', 'manifest.json'])
    t.ok(existsSync(join(dist, f)), f)
  const m = JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8')) as { baseIso: { volumeId: string; sha256: string } }
  t.equal(m.baseIso.volumeId, 'RHEL-8-10-0-BaseOS-x86_64')
  t.equal(statSync(join(dist, 'pxe/ks.cfg')).mode & 0o777, 0o600, "the PXE kickstart (the registry's keys) is the serving user's only")
  t.equal(m.baseIso.sha256, spawnSync('sha256sum', [base], { encoding: 'utf8' }).stdout.split(' ')[0])
  const sums = spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: dist, encoding: 'utf8' })
  t.equal(sums.status, 0, `SHA256SUMS (media hashed while the next stage ran) checks out: ${sums.stdout}${sums.stderr}`)
  t.match(sums.stdout, /^appliance\.iso: OK$/m)
  const remembered = readdirSync(join(d, 'cache', 'checksums'))
  t.equal(remembered.length, 1, 'the base ISO checksum is remembered in the image cache for the next build')
  t.equal(readFileSync(join(d, 'cache', 'checksums', remembered[0]!), 'utf8'), m.baseIso.sha256 + '\n')

  // The remastered menus carry inst.ks and, for this FIPS config, fips=1.
  const x = spawnSync(
    'xorriso',
    [
      '-osirrox',
      'on',
      '-indev',
      join(dist, 'appliance.iso'),
      '-extract',
      '/isolinux/isolinux.cfg',
      join(d, 'isolinux.cfg'),
      '-extract',
      '/ks.cfg',
      join(d, 'ks.cfg'),
    ],
    { encoding: 'utf8' },
  )
  t.equal(x.status, 0, x.stderr)
  t.match(readFileSync(join(d, 'isolinux.cfg'), 'utf8'), /inst\.ks=hd:LABEL=RHEL-8-10-0-BaseOS-x86_64:\/ks\.cfg fips=1/)
  const ks = readFileSync(join(d, 'ks.cfg'), 'utf8')
  t.match(ks, /^cdrom$/m, 'the ISO kickstart installs from the medium')
  t.match(ks, /fips=1/, 'and sets up FIPS on the installed system')
  const pxeKs = readFileSync(join(dist, 'pxe/ks.cfg'), 'utf8')
  t.match(pxeKs, new RegExp(`^url --url="?http://127\\.0\\.0\\.1:${port}/repo"?$`, 'm'), 'the PXE kickstart installs from the served repo')

  // serve: real HTTP, then Ctrl-C stops it cleanly.
  const child = spawn(process.execPath, [CLI, 'serve', join(dist, 'pxe'), '--port', String(port), '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  child.stderr.on('data', (b) => (err += b))
  for (let i = 0; i < 100 && !err.includes('serving'); i++) await new Promise((r) => setTimeout(r, 100))
  const res = await fetch(`http://127.0.0.1:${port}/ks.cfg`)
  t.equal(res.status, 200)
  const body = await res.text()
  t.equal(body, pxeKs)
  t.equal(Number(res.headers.get('content-length')), Buffer.byteLength(pxeKs))
  const range = await fetch(`http://127.0.0.1:${port}/ks.cfg`, { headers: { range: 'bytes=0-9' } })
  t.equal(range.status, 206)
  t.equal(await range.text(), pxeKs.slice(0, 10))
  child.kill('SIGINT')
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  t.equal(code, 0, err)
})

t.test('--pxe-url with a path and a trailing slash: clean URLs, and the printed serve command serves them', async (t) => {
  const d = t.testdir()
  const base = await fixtureIso()
  const port = await freePort()
  const env = { MIRROR_APPLIANCE_CACHE: join(d, 'cache'), SOURCE_DATE_EPOCH: '1700000000' }

  const bad = await runCli(['build', '-o', join(d, 'bad'), '--iso', base, '--pxe', '--pxe-url', 'ftp://127.0.0.1/x'], { env })
  t.equal(bad.code, 2, 'a URL that is not http(s) is a usage error')
  t.match(bad.stderr, /outputs\.pxe\.baseUrl \(--pxe-url\): base URL 'ftp:\/\/127\.0\.0\.1\/x' must be http:\/\/ or https:\/\//)
  t.notOk(existsSync(join(d, 'bad')), 'nothing written')

  const r = await runCli(
    ['build', '-o', join(d, 'dist'), '--iso', base, '--no-oemdrv', '--pxe', '--pxe-url', `http://127.0.0.1:${port}/sites/lab1/`],
    { env },
  )
  t.equal(r.code, 0, r.stderr)
  const ks = readFileSync(join(d, 'dist/pxe/ks.cfg'), 'utf8')
  t.match(ks, new RegExp(`^url --url="?http://127\\.0\\.0\\.1:${port}/sites/lab1/repo"?$`, 'm'), 'repo URL without a double slash')
  t.notMatch(ks, /lab1\/\//, 'no double slash anywhere')
  const cmd = /serve the tree with: mirror-appliance (serve .*)$/m.exec(r.stdout + r.stderr)?.[1]
  t.equal(
    cmd,
    `serve ${join(d, 'dist', 'pxe')} --bind 127.0.0.1 --port ${port} --prefix /sites/lab1`,
    'the hint carries the address to bind (the URL names one), the port and the path',
  )

  // the printed line as it is: it binds to the URL's address itself
  const child = spawn(process.execPath, [CLI, ...cmd!.split(' ')], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  let err = ''
  child.stderr.on('data', (b) => (err += b))
  for (let i = 0; i < 100 && !err.includes('serving'); i++) await new Promise((r) => setTimeout(r, 100))
  const url = `http://127.0.0.1:${port}/sites/lab1`
  for (const p of ['/ks.cfg', '/repo/.treeinfo', '/images/pxeboot/vmlinuz', '/pxe/boot.ipxe'])
    t.equal((await fetch(url + p)).status, 200, `${url}${p} is served`)
  t.equal((await fetch(`http://127.0.0.1:${port}/ks.cfg`)).status, 404, 'nothing outside the prefix')
})

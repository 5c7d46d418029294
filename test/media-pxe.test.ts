// buildPxeTree from the fixture ISO, then served by serveDir and fetched over HTTP.
import t from 'tap'
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { normalizeBaseUrl, PXE_URL_PATTERN } from '../builder/config/pxe-url.js'
import { buildPxeTree, pxeSnippets } from '../builder/media/pxe.js'
import { serveDir } from '../builder/media/serve.js'
import { UserError } from '../builder/errors.js'
import { fixtureIso, readIsoFile } from './helpers/fixture-iso.js'
import { run } from '../builder/exec.js'

const KS = '#version=RHEL8 pxe\ntext\n'

t.test('snippets and URLs', async (t) => {
  t.equal(normalizeBaseUrl('http://10.0.0.5:8080/'), 'http://10.0.0.5:8080')
  t.equal(normalizeBaseUrl('https://h/pxe//'), 'https://h/pxe')
  t.throws(() => normalizeBaseUrl('ftp://h/'), UserError)
  t.throws(() => normalizeBaseUrl('not a url'), /is not a URL/)
  t.throws(() => normalizeBaseUrl('http://h/?a=b'), /query/)
  const s = pxeSnippets({ baseUrl: 'http://10.0.0.5:8080/', repo: true, title: 'RHEL 8' })
  t.equal(s.cmdline, 'ip=dhcp inst.repo=http://10.0.0.5:8080/repo inst.ks=http://10.0.0.5:8080/ks.cfg')
  t.match(s.snippets.ipxe, /^#!ipxe\n/)
  t.match(
    s.snippets.ipxe,
    /^kernel http:\/\/10\.0\.0\.5:8080\/images\/pxeboot\/vmlinuz initrd=initrd.img ip=dhcp inst\.repo=http:\/\/10\.0\.0\.5:8080\/repo inst\.ks=http:\/\/10\.0\.0\.5:8080\/ks\.cfg$/m,
  )
  t.match(s.snippets.ipxe, /^initrd --name initrd.img http:\/\/10\.0\.0\.5:8080\/images\/pxeboot\/initrd.img$/m)
  t.match(s.snippets.grub, /^\tlinuxefi images\/pxeboot\/vmlinuz ip=dhcp inst\.repo=\S+ inst\.ks=http:\/\/10\.0\.0\.5:8080\/ks\.cfg$/m)
  t.match(s.snippets.grub, /^\tinitrdefi images\/pxeboot\/initrd.img$/m)
  t.match(s.snippets.pxelinux, /^  append initrd=images\/pxeboot\/initrd.img ip=dhcp inst\.repo=\S+ inst\.ks=\S+$/m)
  t.equal(pxeSnippets({ baseUrl: 'http://h', repo: false, title: 'x' }).cmdline, 'ip=dhcp inst.ks=http://h/ks.cfg')
})

t.test('PXE tree from the fixture ISO, served over HTTP', async (t) => {
  const iso = await fixtureIso()
  const dir = t.testdir()
  const payload = join(dir, 'payload')
  await mkdir(payload)
  await writeFile(join(payload, 'x.txt'), 'payload file\n')
  const out = join(dir, 'pxe')
  const r = await buildPxeTree({
    baseIso: iso,
    outDir: out,
    hosts: [{ hostname: 'one.lab.example', ksText: KS }],
    payloadDir: payload,
    baseUrl: 'http://127.0.0.1:1/',
    epoch: 1700000000,
  })
  t.equal(r.hosts[0]!.ksUrl, 'http://127.0.0.1:1/ks.cfg', 'a site of one: ks.cfg at the root, installed by the default entries')
  t.same((await readdir(out)).sort(), ['appliance', 'images', 'ks.cfg', 'pxe', 'repo'])
  t.same((await readdir(dir)).sort(), ['payload', 'pxe'], 'no temp dirs left')
  t.equal(
    (await stat(join(out, 'ks.cfg'))).mode & 0o777,
    0o600,
    "ks.cfg (the registry's keys) readable by the serving user only, like a fleet's",
  )
  t.equal((await stat(join(out, r.files.grub))).mode & 0o777, 0o644, 'the boot loader entries stay readable')
  t.equal(await readFile(join(out, r.files.ipxe), 'utf8'), r.snippets.ipxe)
  t.equal(await readFile(join(out, r.files.grub), 'utf8'), r.snippets.grub)
  t.equal(await readFile(join(out, r.files.pxelinux), 'utf8'), r.snippets.pxelinux)
  t.equal(await readFile(join(out, 'repo', '.treeinfo'), 'utf8'), await readIsoFile(iso, '/.treeinfo'), 'ISO contents as the repo')

  const server = await serveDir({ dir: out, port: 0, host: '127.0.0.1' })
  t.teardown(() => new Promise<void>((ok) => server.close(() => ok())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const kernel = await fetch(`${base}/images/pxeboot/vmlinuz`)
  const kbytes = Buffer.from(await kernel.arrayBuffer())
  const extracted = join(dir, 'vmlinuz')
  await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/images/pxeboot/vmlinuz', extracted])
  t.ok(kbytes.equals(await readFile(extracted)), 'kernel over HTTP = kernel in the ISO')
  t.equal(kernel.headers.get('content-length'), String(kbytes.length))
  t.equal(await (await fetch(`${base}/ks.cfg`)).text(), KS)
  t.equal(await (await fetch(`${base}/appliance/x.txt`)).text(), 'payload file\n')
  const part = await fetch(`${base}/images/pxeboot/initrd.img`, { headers: { Range: 'bytes=0-5' } })
  t.equal(part.status, 206)
  t.equal(Buffer.from(await part.arrayBuffer()).toString('latin1'), '070701', 'initrd is a newc cpio')

  const one = [{ hostname: 'one.lab.example', ksText: KS }]
  await t.rejects(buildPxeTree({ baseIso: iso, outDir: out, hosts: one, baseUrl: 'http://h' }), /already exists/)
  await t.rejects(
    buildPxeTree({ baseIso: join(dir, 'payload', 'x.txt'), outDir: join(dir, 'p2'), hosts: one, baseUrl: 'http://h' }),
    /not an ISO 9660 image/,
  )
  await t.rejects(buildPxeTree({ baseIso: iso, outDir: join(dir, 'p3'), hosts: one, baseUrl: 'tftp://h' }), UserError)
  await t.rejects(
    buildPxeTree({
      baseIso: iso,
      outDir: join(dir, 'p4'),
      hosts: [...one, { hostname: 'two', mac: '52:54:00:00:00:02', ksText: KS }],
      baseUrl: 'http://h',
    }),
    /one\.lab\.example has no MAC address/,
  )
})

// Issue 18: the base URL goes unquoted into GRUB, iPXE and pxelinux entries and
// the kernel command line, where ; $ & quotes # % and spaces mean something.
t.test('--pxe-url / outputs.pxe.baseUrl: URL characters only', async (t) => {
  for (const ok of ['http://192.0.2.1:8080', 'https://pxe.lab.example/sites/lab-1/', 'http://[2001:db8::1]:8080/pxe', 'http://h/a_b.c~d'])
    t.doesNotThrow(() => normalizeBaseUrl(ok), ok)
  const bad: [string, RegExp][] = [
    ['http://192.0.2.1:8080/x;reboot', /not ;/],
    ['http://192.0.2.1/${net0/ip}', /not \$ \{ \}/],
    ["http://h/a'b", /not '/],
    ['http://h/a&b', /not &/],
    ['http://h/a%20b', /not %/],
    ['http://h/a"b', /not "/],
    ['http://user:pw@h/', /must not carry a user name or password/],
  ]
  for (const [url, why] of bad) t.throws(() => normalizeBaseUrl(url), why, url)
  // the config schema refuses the same (with the file, line and column)
  const { SCHEMA_PATH } = await import('../builder/config/load.js')
  const schema = JSON.parse(await readFile(SCHEMA_PATH, 'utf8'))
  t.equal(schema.definitions.outputs.properties.pxe.properties.baseUrl.pattern, PXE_URL_PATTERN, 'schema.json has the same pattern')
  const { loadConfigText } = await import('../builder/config/load.js')
  t.throws(
    () =>
      loadConfigText(
        'apiVersion: mirror-appliance/v1\noutputs:\n  pxe:\n    baseUrl: "http://192.0.2.1:8080/x;reboot"\n',
        'appliance.yaml',
        { baseDir: '/' },
      ),
    /appliance\.yaml:4:14 outputs\.pxe\.baseUrl: .* is not valid/,
  )
  // the flag: refused with its name, exit 2, before anything is written
  const { runCli } = await import('./helpers/cli.js')
  const dir = t.testdir()
  const r = await runCli(['build', '-o', join(dir, 'out'), '--pxe', '--pxe-url', 'http://192.0.2.1:8080/$(reboot)'])
  t.equal(r.code, 2, r.stderr)
  t.match(
    r.stderr,
    /<default config>: outputs\.pxe\.baseUrl \(--pxe-url\): base URL 'http:\/\/192\.0\.2\.1:8080\/\$\(reboot\)' may hold only letters, digits and \. _ ~ - \/ after http\(s\):\/\/HOST\[:PORT\], not \$ \( \)/,
  )
  t.same(await readdir(dir), [], 'nothing written')
})

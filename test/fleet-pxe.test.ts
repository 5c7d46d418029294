// Fleet PXE: one served tree for the 3-host inventory (test/fixtures/fleet-3)
// with one boot entry per MAC for GRUB2 (grub.cfg-01-<mac>), pxelinux
// (pxelinux.cfg/01-<mac>) and iPXE, each naming that host's kickstart in the
// tree; the default entries boot the local disk, so a machine that is not in
// the fleet never installs. Golden files, then `build --pxe` through the CLI
// (the fixture ISO as installer), then the tree served over HTTP by serveDir.
// GRUB files are checked by grub-script-check.
// Refresh after a reviewed change:
//   UPDATE_GOLDEN=1 npx tap test/fleet-pxe.test.ts
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../builder/config/load.js'
import { macFileId, pxeTreeFiles } from '../builder/media/pxe.js'
import { planSite } from '../builder/plan/site.js'
import { serveDir } from '../builder/media/serve.js'
import { renderKickstart } from '../builder/render/kickstart.js'
import { runCli } from './helpers/cli.js'
import { fixtureIso } from './helpers/fixture-iso.js'
import { golden as checkGolden } from './helpers/golden.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/fleet-3/', import.meta.url))
const URL_ = 'http://192.0.2.1:8080'
const EPOCH = 1_700_000_000
const loaded = loadConfig(join(FIXTURE, 'appliance.yaml'))
const fleet = planSite(loaded, { epoch: EPOCH, seed: 'pxe-golden' })
const HOSTS = fleet.hosts.map((m) => ({ hostname: m.hostname, mac: m.fleet!.mac }))
const ks = (i: number) => renderKickstart(fleet.hosts[i]!.plan, { source: 'url', url: `${URL_}/repo`, payloadUrl: `${URL_}/appliance` })

const golden = (t: Test, rel: string, text: string) => checkGolden(t, join(FIXTURE, 'expected-pxe', rel), text, rel)

const { files, hosts } = pxeTreeFiles({ baseUrl: URL_ + '/', repo: true, title: 'Red Hat Enterprise Linux 8', hosts: HOSTS })

t.test('golden: per-MAC entries, local-boot defaults, per-host kickstarts', async (t) => {
  t.same(Object.keys(files).sort(), [
    'pxe/boot.ipxe',
    'pxe/grub.cfg',
    'pxe/grub.cfg-01-52-54-00-00-00-11',
    'pxe/grub.cfg-01-52-54-00-00-00-12',
    'pxe/grub.cfg-01-52-54-00-00-00-13',
    'pxe/ipxe/01-52-54-00-00-00-11.ipxe',
    'pxe/ipxe/01-52-54-00-00-00-12.ipxe',
    'pxe/ipxe/01-52-54-00-00-00-13.ipxe',
    'pxe/pxelinux.cfg/01-52-54-00-00-00-11',
    'pxe/pxelinux.cfg/01-52-54-00-00-00-12',
    'pxe/pxelinux.cfg/01-52-54-00-00-00-13',
    'pxe/pxelinux.cfg/default',
  ])
  for (const [rel, text] of Object.entries(files)) golden(t, rel, text)
  fleet.hosts.forEach((m, i) => golden(t, `hosts/${m.hostname}/ks.cfg`, ks(i)))
})

t.test('each MAC boots its own kickstart; unknown machines never install', async (t) => {
  for (const h of hosts) {
    const ksUrl = `${URL_}/hosts/${h.hostname}/ks.cfg`
    t.equal(h.ksUrl, ksUrl)
    t.match(
      files[h.files.grub],
      new RegExp(`^\\tlinuxefi images/pxeboot/vmlinuz ip=dhcp inst\\.repo=${URL_}/repo inst\\.ks=${ksUrl}$`, 'm'),
      `${h.hostname}: GRUB entry`,
    )
    t.match(
      files[h.files.pxelinux],
      new RegExp(`^  append initrd=images/pxeboot/initrd\\.img ip=dhcp inst\\.repo=${URL_}/repo inst\\.ks=${ksUrl}$`, 'm'),
      `${h.hostname}: pxelinux entry`,
    )
    t.match(
      files[h.files.ipxe],
      new RegExp(`^kernel ${URL_}/images/pxeboot/vmlinuz initrd=initrd\\.img ip=dhcp inst\\.repo=\\S+ inst\\.ks=${ksUrl}$`, 'm'),
      `${h.hostname}: iPXE entry`,
    )
    for (const other of hosts.filter((o) => o !== h))
      t.notMatch(files[h.files.grub], other.hostname, `${h.hostname}'s entry names no other host`)
  }
  t.equal(macFileId('52:54:00:AB:cd:0F'), '01-52-54-00-ab-cd-0f', 'lower case, dashes, ARP type 01')
  t.throws(() => macFileId('52:54:00:ab:cd'), /not a MAC address/)
  for (const def of ['pxe/grub.cfg', 'pxe/pxelinux.cfg/default', 'pxe/boot.ipxe']) {
    t.notMatch(files[def], /inst\.ks|vmlinuz|initrd/, `${def}: installs nothing`)
  }
  t.match(files['pxe/grub.cfg'], /^menuentry 'Not a fleet machine: boot from the local disk' \{\n\texit\n\}$/m)
  t.match(files['pxe/pxelinux.cfg/default'], /^default local$/m)
  t.match(files['pxe/pxelinux.cfg/default'], /^  localboot 0$/m)
  t.match(
    files['pxe/boot.ipxe'],
    /^chain --autofree http:\/\/192\.0\.2\.1:8080\/pxe\/ipxe\/01-\$\{net0\/mac:hexhyp\}\.ipxe \|\| goto local$/m,
  )
  t.match(files['pxe/boot.ipxe'], /^:local\n.*\nexit$/m)
  // GRUB's own parser on every GRUB file
  const dir = t.testdir()
  for (const [rel, text] of Object.entries(files).filter(([r]) => r.includes('grub.cfg'))) {
    const f = join(dir, rel.replaceAll('/', '_'))
    writeFileSync(f, text)
    const r = spawnSync('grub-script-check', [f], { encoding: 'utf8' })
    t.equal(r.status, 0, `grub-script-check ${rel}: ${r.stderr}`)
  }
  t.throws(
    () =>
      pxeTreeFiles({ baseUrl: URL_, repo: true, title: 'x', hosts: [HOSTS[0]!, { hostname: 'dup', mac: HOSTS[0]!.mac.toUpperCase() }] }),
    /have the same MAC/,
  )
})

t.test('build --pxe for the fleet through the CLI, served over HTTP', async (t) => {
  const iso = await fixtureIso()
  const dir = mkdtempSync(join(tmpdir(), 'fleet-pxe-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = join(dir, 'dist')
  const base = [
    'build',
    '-c',
    join(FIXTURE, 'appliance.yaml'),
    '--allow-missing',
    '--cache',
    join(dir, 'empty-cache'),
    '--seed',
    'pxe-golden',
  ]
  const env = { SOURCE_DATE_EPOCH: String(EPOCH) }

  const noUrl = await runCli([...base, '-o', join(dir, 'x'), '--pxe', '--iso', iso], { env })
  t.equal(noUrl.code, 2, noUrl.stderr)
  t.match(noUrl.stderr, /appliance\.yaml: outputs\.pxe \(--pxe\): needs the URL the tree will be served from: add --pxe-url URL/)
  const noIso = await runCli([...base, '-o', join(dir, 'x'), '--pxe', '--pxe-url', URL_], { env })
  t.equal(noIso.code, 2)
  t.match(noIso.stderr, /appliance\.yaml: outputs\.pxe \(--pxe\): a PXE tree needs the RHEL ISO/)
  t.notOk(existsSync(join(dir, 'x')), 'refused before writing anything')

  const r = await runCli([...base, '-o', out, '--pxe', '--iso', iso, '--pxe-url', URL_, '--no-oemdrv'], { env })
  t.equal(r.code, 0, r.stderr)
  t.match(
    r.stdout + r.stderr,
    /mirror-a\.lab\.example\s+registry\s+192\.0\.2\.11\/24\s+52:54:00:00:00:11\s+vda\s+PXE 01-52-54-00-00-00-11/,
    "the summary names each host's PXE entry",
  )
  t.notOk(existsSync(join(out, 'payload.iso')), '--no-oemdrv: the tree is the only medium')
  const tree = join(out, 'pxe')
  t.same(readdirSync(tree).sort(), ['appliance', 'hosts', 'images', 'pxe', 'repo'], 'one tree: installer, repo, payload once, hosts')
  t.ok(existsSync(join(tree, 'appliance/SHA256SUMS')), 'payload under appliance/')
  for (const [rel, text] of Object.entries(files)) t.equal(readFileSync(join(tree, rel), 'utf8'), text, `${rel} as golden`)
  fleet.hosts.forEach((m, i) => {
    const p = join(tree, 'hosts', m.hostname, 'ks.cfg')
    t.equal(readFileSync(p, 'utf8'), ks(i), `${m.hostname}: kickstart as golden (source url)`)
    t.equal(statSync(p).mode & 0o777, 0o600, "kickstart 0600 (it carries the host's secrets)")
  })
  const fj = JSON.parse(readFileSync(join(out, 'fleet.json'), 'utf8')) as { pxe: { hosts: { mac: string; ksUrl: string }[] } }
  t.same(
    fj.pxe.hosts.map((h) => h.ksUrl),
    hosts.map((h) => h.ksUrl),
    'fleet.json lists the entries',
  )

  const server = await serveDir({ dir: tree, port: 0, host: '127.0.0.1' })
  t.teardown(() => new Promise<void>((ok) => server.close(() => ok())))
  const http = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  for (const h of hosts) {
    for (const rel of [h.files.grub, h.files.pxelinux, h.files.ipxe]) {
      const res = await fetch(`${http}/${rel}`)
      t.equal(res.status, 200, `GET /${rel}`)
      t.equal(await res.text(), files[rel], `/${rel} served`)
    }
    const k = await fetch(`${http}/hosts/${h.hostname}/ks.cfg`)
    t.equal(k.status, 200)
    t.match(await k.text(), `--hostname=${h.hostname}`, `${h.hostname}: its kickstart served at the URL its entry names`)
  }
  t.equal(
    (await fetch(`${http}/pxe/grub.cfg-01-52-54-00-99-99-99`)).status,
    404,
    'no entry for an unknown MAC: GRUB falls back to the local-boot grub.cfg',
  )
  t.equal(await (await fetch(`${http}/pxe/grub.cfg`)).text(), files['pxe/grub.cfg'])
  t.equal((await fetch(`${http}/appliance/SHA256SUMS`)).status, 200)
  t.equal((await fetch(`${http}/images/pxeboot/vmlinuz`)).status, 200)

  // with the OEMDRV media as well: both ways to install, payload.iso beside the tree
  const both = await runCli([...base, '-o', join(dir, 'both'), '--pxe', '--iso', iso, '--pxe-url', URL_], { env })
  t.equal(both.code, 0, both.stderr)
  t.ok(
    existsSync(join(dir, 'both/payload.iso')) && existsSync(join(dir, 'both/hosts/mirror-a.lab.example/oemdrv.iso')),
    'payload.iso and OEMDRVs too',
  )
  t.match(both.stdout + both.stderr, /hosts\/mirror-a\.lab\.example\/oemdrv\.iso \+ payload\.iso or PXE 01-52-54-00-00-00-11/)
})

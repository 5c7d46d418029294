// `build` with a fleet config, through the real CLI: one payload.iso
// (label MAPAYLOAD, the payload once), per host an OEMDRV holding ONLY that
// host's ks.cfg (read back with xorriso), the summary table, secrets modes
// and a rebuild that keeps the fleet CA. Checked with xorriso, the consumer.
// A fleet is built by the same pipeline as one host (issue 17): each host
// gets the --pull-secret merge (read back by skopeo), its host/ render and
// its entry in the manifest, as a single host does.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCli } from './helpers/cli.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/fleet-3/appliance.yaml', import.meta.url))
const HOSTS = ['mirror-a.lab.example', 'mirror-b.lab.example', 'mirror-c.lab.example']
const dir = mkdtempSync(join(tmpdir(), 'fleet-build-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const out = join(dir, 'dist')
const env = { SOURCE_DATE_EPOCH: '1700000000' }
const userPullSecret = join(dir, 'pull-secret.json')
writeFileSync(userPullSecret, JSON.stringify({ auths: { 'cloud.openshift.com': { auth: Buffer.from('me:token').toString('base64') } } }))
const args = ['build', '-c', FIXTURE, '-o', out, '--allow-missing', '--cache', join(dir, 'empty-cache'), '--pull-secret', userPullSecret]
const mode = (p: string) => statSync(p).mode & 0o777

const xorriso = (iso: string, ...cmd: string[]) => spawnSync('xorriso', ['-indev', iso, ...cmd], { encoding: 'utf8' })
const isoFiles = (iso: string) =>
  xorriso(iso, '-find', '/', '-type', 'f')
    .stdout.split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^'|'$/g, ''))

t.test('a 3-host fleet: one payload medium, a ks.cfg-only OEMDRV per host, a summary', async (t) => {
  const r = await runCli(args, { env })
  t.equal(r.code, 0, r.stderr)
  const text = r.stdout + r.stderr
  t.match(text, /HOST\s+ROLE\s+ADDRESS\s+MAC\s+DISK\s+BOOT WITH/, 'summary table printed')
  for (const h of HOSTS) t.match(text, new RegExp(`${h.replace(/\./g, '\\.')}\\s+\\S+\\s+[0-9./]+\\s+52:54:00:00:00:1\\d`))
  t.equal(
    readFileSync(join(out, 'fleet.txt'), 'utf8'),
    readFileSync(join(FIXTURE, '../expected/fleet.txt'), 'utf8'),
    'fleet.txt is the golden table',
  )

  const payload = join(out, 'payload.iso')
  t.match(xorriso(payload, '-pvd_info').stdout, /Volume Id\s*:\s*MAPAYLOAD/, 'payload medium labelled MAPAYLOAD')
  const payloadFiles = isoFiles(payload)
  t.ok(payloadFiles.includes('/appliance/SHA256SUMS'), 'payload under /appliance')

  for (const h of HOSTS) {
    const iso = join(out, 'hosts', h, 'oemdrv.iso')
    t.match(xorriso(iso, '-pvd_info').stdout, /Volume Id\s*:\s*OEMDRV/, `${h}: OEMDRV label`)
    t.same(isoFiles(iso), ['/ks.cfg'], `${h}: the OEMDRV holds only ks.cfg (the payload is stored once)`)
    const got = join(dir, `${h}.ks.cfg`)
    t.equal(spawnSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/ks.cfg', got]).status, 0, 'xorriso extracts ks.cfg')
    const ks = readFileSync(got, 'utf8')
    t.equal(ks, readFileSync(join(out, 'hosts', h, 'ks.cfg'), 'utf8'), `${h}: the medium's ks.cfg is hosts/${h}/ks.cfg`)
    t.match(ks, `--hostname=${h}`)
    t.ok(statSync(iso).size < 1024 * 1024, `${h}: OEMDRV is small (${statSync(iso).size} bytes)`)
    t.equal(statSync(join(out, 'secrets/hosts', h, 'secrets.json')).mode & 0o777, 0o600)
    t.equal(mode(iso), 0o600, `${h}: its OEMDRV (its ks.cfg carries its keys) is private, like a single host's`)
  }
  t.equal(statSync(join(out, 'secrets/ca.key')).mode & 0o777, 0o600, 'CA key 0600')
  t.equal(statSync(join(out, 'secrets')).mode & 0o777, 0o700)
  const sums = readFileSync(join(out, 'SHA256SUMS'), 'utf8')
  t.notMatch(sums, /secrets\//, 'secrets are not listed as outputs')
  t.match(sums, /payload\.iso/)

  const ca = readFileSync(join(out, 'secrets/ca.crt'), 'utf8')
  const again = await runCli(args, { env })
  t.equal(again.code, 0, again.stderr)
  t.equal(readFileSync(join(out, 'secrets/ca.crt'), 'utf8'), ca, 'a rebuild keeps the fleet CA')
})

// Drift fixed by one pipeline (issue 17): --pull-secret was ignored for fleets.
t.test("--pull-secret reaches every host: each host's openshift/ has its merged pull secret", async (t) => {
  for (const h of HOSTS) {
    const merged = join(out, 'hosts', h, 'openshift/pull-secret-merged.json')
    t.ok(existsSync(merged), `${h}: pull-secret-merged.json`)
    if (!existsSync(merged)) continue
    t.equal(mode(merged), 0o600, `${h}: private`)
    // skopeo (containers-auth.json, the format OpenShift's pull secret is) reads both entries back.
    const login = (registry: string) => spawnSync('skopeo', ['login', '--get-login', '--authfile', merged, registry], { encoding: 'utf8' })
    t.equal(login(`${h}:8443`).stdout.trim(), 'init', `${h}: skopeo finds this host's registry login`)
    t.equal(login('cloud.openshift.com').stdout.trim(), 'me', "and the user's own")
    for (const other of HOSTS.filter((o) => o !== h)) t.notOk(login(`${other}:8443`).status === 0, `not ${other}'s`)
  }
})

// Drift fixed by one pipeline (issue 17): a fleet had no host/ render, and its manifest named the first host only.
t.test("each host's render under hosts/<name>/host/, and every host in the manifest", async (t) => {
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
    host: { hostname: string }
    hosts?: {
      hostname: string
      rhel: string
      flavor: string
      port: number
      address?: string
      mac?: string
      role?: string
      disk?: string
      dir: string
      render: string
    }[]
    outputs: { path: string }[]
  }
  t.same(
    manifest.hosts?.map((h) => [h.hostname, h.address, h.mac, h.role, h.disk, h.dir, h.render]),
    [
      [
        'mirror-a.lab.example',
        '192.0.2.11/24',
        '52:54:00:00:00:11',
        'registry',
        'vda',
        'hosts/mirror-a.lab.example',
        'hosts/mirror-a.lab.example/host',
      ],
      [
        'mirror-b.lab.example',
        '192.0.2.12/24',
        '52:54:00:00:00:12',
        'registry',
        'vda',
        'hosts/mirror-b.lab.example',
        'hosts/mirror-b.lab.example/host',
      ],
      [
        'mirror-c.lab.example',
        '198.51.100.13/24',
        '52:54:00:00:00:13',
        'standby',
        '/dev/disk/by-path/pci-0000:00:05.0',
        'hosts/mirror-c.lab.example',
        'hosts/mirror-c.lab.example/host',
      ],
    ],
    'manifest.hosts names every host with its config and its render',
  )
  for (const h of manifest.hosts ?? []) t.match(h, { rhel: '8.10', flavor: 'quay', port: 8443 })
  for (const h of HOSTS) {
    const render = join(out, 'hosts', h, 'host')
    for (const f of ['ks.cfg', 'appliance.bu', 'appliance.ign']) {
      t.ok(existsSync(join(render, f)), `${h}: host/${f}`)
      t.ok(
        manifest.outputs.some((o) => o.path === `hosts/${h}/host/${f}`),
        `${h}: host/${f} is an output of the manifest`,
      )
    }
    if (!existsSync(join(render, 'ks.cfg'))) continue
    t.equal(mode(join(render, 'ks.cfg')), 0o600)
    t.equal(
      readFileSync(join(render, 'ks.cfg'), 'utf8'),
      readFileSync(join(out, 'hosts', h, 'ks.cfg'), 'utf8'),
      `${h}: the rendered kickstart is the one its OEMDRV carries`,
    )
    t.ok(existsSync(join(render, `rootfs/etc/containers/certs.d/${h}:8443/ca.crt`)), `${h}: rootfs/ holds its own files`)
    const ign = JSON.parse(readFileSync(join(render, 'appliance.ign'), 'utf8')) as { ignition: { version: string } }
    t.match(ign.ignition.version, /^3\./, `${h}: Ignition`)
  }
  const sums = spawnSync('sha256sum', ['--quiet', '--strict', '-c', 'SHA256SUMS'], { cwd: out, encoding: 'utf8' })
  t.equal(sums.status, 0, `SHA256SUMS covers the renders: ${sums.stdout}${sums.stderr}`)
  const inspect = await runCli(['inspect', out])
  t.equal(inspect.code, 0, inspect.stderr)
  for (const h of HOSTS)
    t.match(
      inspect.stdout,
      new RegExp(
        `^ {4}${h.replace(/\./g, '\\.')} \\(RHEL 8\\.10\\), quay registry on port 8443, [0-9./]+: hosts/${h.replace(/\./g, '\\.')}/$`,
        'm',
      ),
      `inspect names ${h}`,
    )
})

t.test('fleet refuses what it does not build, before any work: config diagnostics at the key, or the flag that set it', async (t) => {
  const r = await runCli(['build', '-c', FIXTURE, '-o', join(dir, 'nope'), '--iso', FIXTURE, '--bundle', '--qcow2'], { env })
  t.equal(r.code, 2)
  const file = FIXTURE
  t.match(r.stderr, `${file}: outputs.iso (--iso): one remastered ISO per host is not available for fleets`)
  t.match(r.stderr, `${file}: outputs.bundle (--bundle): the install bundle is not available for fleets`)
  t.match(r.stderr, `${file}: outputs.qcow2 (--qcow2): qcow2 output is not available for fleets`)
  t.match(r.stderr, /3 errors in /)
  t.notOk(existsSync(join(dir, 'nope')), 'nothing was written')
  // The same refusal from the file: its line and column.
  const cfg = join(dir, 'fleet-bundle.yaml')
  writeFileSync(
    cfg,
    readFileSync(FIXTURE, 'utf8').replace('registry:\n  flavor: quay\n', 'registry:\n  flavor: quay\noutputs:\n  bundle: true\n'),
  )
  const f = await runCli(['build', '-c', cfg, '-o', join(dir, 'nope')], { env })
  t.equal(f.code, 2)
  t.match(f.stderr, /fleet-bundle\.yaml:15:11 outputs\.bundle: the install bundle is not available for fleets\n {2}15 \| {3}bundle: true\n/)
  const v = await runCli(['validate', '-c', cfg], { env })
  t.equal(v.code, 2, 'validate refuses it too')
  // --no-oemdrv without --pxe: nothing would install the hosts.
  const n = await runCli(['build', '-c', FIXTURE, '-o', join(dir, 'nope'), '--no-oemdrv'], { env })
  t.equal(n.code, 2)
  t.match(n.stderr, `${file}: outputs.oemdrv (--no-oemdrv): a fleet needs its OEMDRV media, or a PXE tree`)
})

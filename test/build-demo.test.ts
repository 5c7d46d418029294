// The demo a new user runs first: `build -o dist` with the embedded config.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from './helpers/cli.js'

const mode = (p: string) => statSync(p).mode & 0o777

t.test('demo build: media, host files, hand-off, manifest and checksums; inspect reads it back', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'ma-demo-'))
  const dist = join(d, 'dist')
  // An empty cache: the demo must still build, and say what production needs.
  const env = { MIRROR_APPLIANCE_CACHE: join(d, 'cache'), SOURCE_DATE_EPOCH: '1700000000' }
  const r = await runCli(['build', '-o', dist], { env })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /This is a DEMO build; a production build still needs:/)
  t.match(r.stderr, /mirror-appliance images fetch/)
  t.match(r.stderr, /--iso rhel-8\.10-x86_64-dvd\.iso/)

  for (const f of [
    'oemdrv.iso',
    'host/ks.cfg',
    'host/appliance.bu',
    'host/appliance.ign',
    'manifest.json',
    'SHA256SUMS',
    'openshift/install-config-snippet.yaml',
    'openshift/idms.yaml',
    'openshift/pull-secret.json',
  ]) {
    t.ok(existsSync(join(dist, f)), f)
  }
  t.equal(mode(join(dist, 'secrets')), 0o700, 'secrets/ is 0700')
  for (const f of readdirSync(join(dist, 'secrets'))) t.equal(mode(join(dist, 'secrets', f)), 0o600, `secrets/${f} is 0600`)
  t.equal(mode(join(dist, 'openshift/pull-secret.json')), 0o600, 'the pull secret is private')
  t.same(
    readdirSync(d).sort(),
    ['cache', 'dist'].filter((x) => existsSync(join(d, x))).sort(),
    'no temp, old or lock directories left beside dist',
  )

  const sums = spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: dist, encoding: 'utf8' })
  t.equal(sums.status, 0, sums.stdout + sums.stderr)
  t.notMatch(readFileSync(join(dist, 'SHA256SUMS'), 'utf8'), /secrets\//, 'secrets are not listed as outputs')

  const m = JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8')) as {
    demo: boolean
    missingImages: string[]
    config: { digest: string }
    epoch: number
  }
  t.equal(m.demo, true)
  t.equal(m.epoch, 1700000000)
  t.ok(m.missingImages.length >= 2, 'stack images are recorded as missing')
  t.match(m.config.digest, /^sha256:[a-f0-9]{64}$/)

  // The OEMDRV medium really carries the kickstart at its root, under the OEMDRV label.
  const x = spawnSync(
    'xorriso',
    ['-indev', join(dist, 'oemdrv.iso'), '-pvd_info', '-osirrox', 'on', '-extract', '/ks.cfg', join(d, 'ks-from-iso.cfg')],
    { encoding: 'utf8' },
  )
  t.equal(x.status, 0, x.stderr)
  t.match(x.stdout + x.stderr, /Volume Id\s*:\s*OEMDRV/)
  const ks = readFileSync(join(d, 'ks-from-iso.cfg'), 'utf8')
  t.match(ks, /^# Kickstart for RHEL 8\.10/)
  t.match(ks, /LABEL=OEMDRV|by-label\/OEMDRV/, 'the OEMDRV kickstart takes its payload from the OEMDRV medium')

  const i = await runCli(['inspect', dist])
  t.equal(i.code, 0, i.stderr)
  t.match(i.stdout, /demo:\s+yes/)
  t.match(i.stdout, /oemdrv\.iso/)
  const ij = await runCli(['inspect', dist, '--json'])
  t.equal(JSON.parse(ij.stdout).schema, 'mirror-appliance/manifest/v1')

  // A second build into the same dist keeps the credentials and the CA.
  const before = readFileSync(join(dist, 'secrets', 'secrets.json'), 'utf8')
  const again = await runCli(['build', '-o', dist, '-q'], { env })
  t.equal(again.code, 0, again.stderr)
  t.equal(readFileSync(join(dist, 'secrets', 'secrets.json'), 'utf8'), before)
})

t.test('inspect refuses what is not a build output', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'ma-inspect-'))
  const r = await runCli(['inspect', d])
  t.equal(r.code, 2)
  t.match(r.stderr, /no manifest\.json here/)
})

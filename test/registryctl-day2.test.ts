// mirror-registryctl day 2 under bash with recording fakes: upgrade (new
// stack images, data kept, rollback when health fails), rotate-cert (new
// self-signed pair or a user CA, judged by openssl; old certificate back when
// health fails), status, backup/restore, import, and the help. (shellcheck
// reads the static script itself: test/host-scripts.test.ts.)
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { VERSION } from '../builder/context.js'
import { NEXT_VERSION, nextReleaseBundle, testPlan } from './helpers/bundle-fixture.js'
import { ctlHarness, type CtlHarness } from './helpers/ctl-harness.js'
import type { Plan } from '../builder/plan/types.js'
import { factsOf } from '../builder/registry/facts.js'
import { REPO_ROOT } from '../builder/render/templates.js'
import { rmSync } from 'node:fs'
const await_rm = (d: string) => rmSync(d, { recursive: true, force: true })

const NOW = Math.floor(Date.now() / 1000) - 60
const installed = async (t: Test, plan: Plan): Promise<CtlHarness & { ctl: string }> => {
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  const r = h.run(['install'])
  if (r.status !== 0) throw new Error(r.out)
  return Object.assign(h, { ctl: join(h.root, 'usr/local/bin/mirror-registryctl') })
}

const unitTexts = (h: CtlHarness, plan: Plan) => factsOf(plan.host).unitFiles.map((u) => h.read(u.slice(1)))

t.test('upgrade: new stack images loaded, new units and script, restart, healthy; data untouched', async (t) => {
  const plan = testPlan()
  const h = await installed(t, plan)
  writeFileSync(join(h.root, 'var/lib/mirror-registry/quay-storage/blob'), 'data')
  const oldUnits = unitTexts(h, plan)
  const oldFacts = h.read('etc/mirror-appliance/host.env')
  const nb = await nextReleaseBundle(h.base)
  t.not(nb.facts, oldFacts, 'the next release ships other host facts (its version, its stack images)')
  const n = h.calls().length
  const r = h.run(['upgrade', nb.dir], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.match(r.out, new RegExp(`upgraded to mirror-appliance ${NEXT_VERSION.replaceAll('.', '\\.')}; data kept in /var/lib/mirror-registry`))
  const calls = h.calls().slice(n)
  for (const ref of nb.refs)
    t.ok(
      calls.some((c) => c.startsWith('skopeo copy --quiet oci:') && c.endsWith(`containers-storage:${ref}`)),
      `loaded ${ref}`,
    )
  const load = calls.findIndex((c) => c.includes('containers-storage:'))
  const restart = calls.indexOf('systemctl start quay-redis.service quay-app.service')
  t.ok(load >= 0 && restart > load, 'images loaded before the restart')
  const newUnits = unitTexts(h, plan)
  t.not(newUnits.join(), oldUnits.join())
  for (const ref of nb.refs)
    t.ok(
      newUnits.some((u) => u.includes(ref)),
      `a unit runs ${ref}`,
    )
  // the new release's Quay unit, as it runs on a host whose init user exists: on every address
  const quayApp = h.read('etc/containers/systemd/quay-app.container')
  t.match(quayApp, /^PublishPort=8443:8443$/m, 'Quay stays published on every address')
  t.equal(
    quayApp,
    readFileSync(join(nb.dir, 'files/etc/mirror-appliance/open-units/quay-app.container'), 'utf8'),
    "the new release's open unit",
  )
  t.equal(h.read('var/lib/mirror-registry/quay-storage/blob'), 'data')
  t.equal(h.read('usr/local/bin/mirror-registryctl'), nb.script, "the new release's script replaced the old one")
  t.equal(h.read('etc/mirror-appliance/host.env'), nb.facts, 'and its facts the old ones')
  for (const p of ['usr/local/libexec/mirror-appliance/lib.sh', 'usr/local/libexec/mirror-appliance/firstboot'])
    t.equal(h.read(p), readFileSync(join(nb.dir, 'files', p), 'utf8'), `${p}: the new release's`)
  t.match(
    h.read('etc/mirror-appliance/registryctl.conf'),
    new RegExp(`^VERSION=${NEXT_VERSION.replaceAll('.', '\\.')}$`, 'm'),
    'the state file records the new version',
  )
  const v = h.run(['--version'], {}, h.ctl)
  t.equal(v.out.trim(), `mirror-registryctl (mirror-appliance ${NEXT_VERSION})`, 'the installed script is the new release')
  // a host installed before the timers existed gets them from the upgrade
  const timers = [...nb.facts.matchAll(/[\w-]+\.timer/g)].map((m) => m[0])
  t.ok(timers.length > 0, `the new release's facts list timers (${timers.join(' ')})`)
  for (const u of new Set(timers)) {
    t.ok(
      calls.some((c) => c.startsWith('systemctl enable') && c.includes(u)),
      `upgrade enables ${u}`,
    )
    t.ok(
      calls.some((c) => c.startsWith('systemctl start') && c.includes(u)),
      `upgrade starts ${u}`,
    )
  }
})

t.test('upgrade as a .tar.gz bundle (the real archive)', async (t) => {
  const plan = testPlan({ flavor: 'distribution' })
  const h = await installed(t, plan)
  const r = h.run(['upgrade', h.tarball], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.match(r.out, /unpacking .*mirror-appliance-bundle\.tar\.gz/)
  t.same(readdirSync(join(h.root, 'var/tmp')), [], 'unpacked copy removed')
})

t.test('upgrade whose new images are unhealthy: rolled back to the previous units and script, which run again', async (t) => {
  const plan = testPlan()
  const h = await installed(t, plan)
  const before = new Map(factsOf(plan.host).unitFiles.map((u) => [u, readFileSync(join(h.root, u))]))
  const oldScript = h.read('usr/local/bin/mirror-registryctl')
  const oldFacts = h.read('etc/mirror-appliance/host.env')
  const oldState = h.read('etc/mirror-appliance/registryctl.conf')
  const nb = await nextReleaseBundle(h.base)
  t.not(nb.facts, oldFacts, 'the next release ships other host facts')
  const n = h.calls().length
  const r = h.run(['upgrade', nb.dir], { FAKE_BROKEN_IMAGE: nb.refs[0]! }, h.ctl)
  t.equal(r.status, 1)
  t.match(r.out, /not healthy after the upgrade: rolling back to the previous units/)
  t.match(r.out, /upgrade failed; rolled back: the previous units and images run again and are healthy/)
  for (const [u, text] of before) t.same(readFileSync(join(h.root, u)), text, `${u} restored byte for byte`)
  const calls = h.calls().slice(n)
  t.equal(
    calls.filter((c) => c === 'systemctl start quay-redis.service quay-app.service').length,
    2,
    'started with the new units, then with the old',
  )
  t.equal(calls.filter((c) => c.endsWith('/health/instance')).length, 2, 'health checked after each')
  t.equal(h.read('usr/local/bin/mirror-registryctl'), oldScript, 'the old script is kept, byte for byte')
  t.equal(h.read('etc/mirror-appliance/host.env'), oldFacts, 'and the old facts')
  t.equal(h.read('etc/mirror-appliance/registryctl.conf'), oldState, 'the state file still names the old version')
  t.match(oldState, new RegExp(`^VERSION=${VERSION.replaceAll('.', '\\.')}$`, 'm'))
})

t.test('upgrade refuses another flavor and a damaged payload, changing nothing', async (t) => {
  const plan = testPlan()
  const h = await installed(t, plan)
  const nb = await nextReleaseBundle(h.base)
  writeFileSync(join(nb.dir, 'payload/images.tsv'), 'tampered\n')
  const snap = h.snapshot()
  let r = h.run(['upgrade', nb.dir], {}, h.ctl)
  t.match(r.out, /payload in .* is damaged \(sha256sum -c failed\); nothing was changed/)
  writeFileSync(join(nb.dir, 'bundle.env'), 'FLAVOR=distribution\n')
  r = h.run(['upgrade', nb.dir], {}, h.ctl)
  t.match(r.out, /is a distribution bundle; this host runs quay/)
  t.same(h.snapshot(), snap)
})

const openssl = (args: string[]) => spawnSync('openssl', args, { encoding: 'utf8' })
function checkCertSet(t: Test, h: CtlHarness, plan: Plan, caPem?: string) {
  const d = factsOf(plan.host)
  const cert = join(h.root, d.certFiles[0]!)
  const key = join(h.root, d.keyFiles[0]!)
  const ca = join(h.root, d.caFiles[0]!)
  for (const f of d.caFiles) t.equal(h.read(f.slice(1)), readFileSync(ca, 'utf8'), `${f} holds the same CA`)
  if (caPem) t.equal(readFileSync(ca, 'utf8'), caPem)
  const v = openssl(['verify', '-CAfile', ca, cert])
  t.equal(v.status, 0, `new certificate verifies against the CA in place: ${v.stdout}${v.stderr}`)
  t.equal(openssl(['x509', '-in', cert, '-noout', '-pubkey']).stdout, openssl(['pkey', '-in', key, '-pubout']).stdout, 'key matches')
  const text = openssl(['x509', '-in', cert, '-noout', '-text']).stdout
  for (const n of d.sanDns) t.match(text, `DNS:${n}`)
  t.match(text, /TLS Web Server Authentication/)
  t.equal(
    openssl(['x509', '-in', cert, '-noout', '-checkhost', 'registry.lab.example']).stdout.trim(),
    'Hostname registry.lab.example does match certificate',
  )
}

t.test('rotate-cert: a new self-signed pair everywhere, CA trusted, registry restarted', async (t) => {
  const plan = testPlan({ epoch: NOW })
  const h = await installed(t, plan)
  const d = factsOf(plan.host)
  const oldCert = h.read(d.certFiles[0]!.slice(1))
  const oldKey = h.read(d.keyFiles[0]!.slice(1))
  const n = h.calls().length
  const r = h.run(['rotate-cert', '--days', '30'], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.not(h.read(d.certFiles[0]!.slice(1)), oldCert)
  t.not(h.read(d.keyFiles[0]!.slice(1)), oldKey)
  t.not(h.read(d.caFiles[0]!.slice(1)), plan.pki.caCertPem, 'a new CA')
  checkCertSet(t, h, plan)
  // issue 18 point 6: the new CA signs no other CA and no other name
  const caText = openssl(['x509', '-in', join(h.root, d.caFiles[0]!), '-noout', '-text']).stdout
  t.match(caText, /X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0/, 'pathlen:0')
  const permitted = (caText.split('Permitted:')[1] ?? '').split(/Excluded:|X509v3|Signature Algorithm/)[0]!
  t.same(
    permitted
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
    [...d.sanDns.map((n) => `DNS:${n}`), ...d.sanIp.map((ip) => `IP:${ip}/255.255.255.255`)],
    'name constraints: exactly the names of the certificate it signed',
  )
  if (d.sanIp.length === 0) t.match(caText, /Excluded:\s+IP:0\.0\.0\.0\/0\.0\.0\.0/, 'no address configured: no address at all')
  const end = openssl(['x509', '-in', join(h.root, d.certFiles[0]!), '-noout', '-enddate']).stdout
  const days = (Date.parse(end.split('=')[1]!) - Date.now()) / 86400e3
  t.ok(days > 29 && days <= 30.01, `valid for 30 days (${days.toFixed(2)})`)
  const calls = h.calls().slice(n)
  const trust = calls.indexOf('update-ca-trust extract')
  const start = calls.indexOf('systemctl start quay-redis.service quay-app.service')
  t.ok(trust >= 0 && start > trust && calls.indexOf('systemctl stop quay-redis.service quay-app.service') < start, 'trust, stop, start')
  t.notOk(
    readdirSync(h.base).some((f) => f.startsWith('tmp.')),
    'work dir with the CA key removed',
  )
  t.equal((await import('node:fs')).statSync(join(h.root, d.keyFiles[0]!)).mode & 0o777, 0o640, 'key file keeps its mode')
})

t.test('rotate-cert --ca-cert/--ca-key: signed by the user CA, which clients are told to trust', async (t) => {
  const plan = testPlan({ epoch: NOW, flavor: 'distribution' })
  const h = await installed(t, plan)
  const { userCa } = await import('./helpers/user-ca.js')
  const u = userCa(h.base)
  const r = h.run(['rotate-cert', '--ca-cert', u.ca, '--ca-key', u.caKey], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  checkCertSet(t, h, plan, readFileSync(u.ca, 'utf8'))
  const bad = h.run(['rotate-cert', '--ca-cert', u.ca, '--ca-key', u.key], {}, h.ctl)
  t.match(bad.out, /does not belong to/)
  t.match(h.run(['rotate-cert', '--days', '900'], {}, h.ctl).out, /--days must be 1\.\.825/)
})

t.test('rotate-cert that leaves the registry unhealthy: the previous certificate comes back', async (t) => {
  const plan = testPlan({ epoch: NOW })
  const h = await installed(t, plan)
  const d = factsOf(plan.host)
  const files = [...d.certFiles, ...d.keyFiles, ...d.caFiles]
  const before = files.map((f) => h.read(f.slice(1)))
  const r = h.run(['rotate-cert'], { FAKE_HEALTH_CODE: '503' }, h.ctl)
  t.equal(r.status, 1)
  t.match(r.out, /rotate-cert failed; the previous certificate is back in place/)
  t.same(
    files.map((f) => h.read(f.slice(1))),
    before,
    'every certificate, key and CA file restored',
  )
})

t.test('status: units, health, disk, certificate expiry, images; exit 1 when a unit is down', async (t) => {
  const plan = testPlan({ epoch: NOW, flavor: 'distribution' })
  const h = await installed(t, plan)
  const r = h.run(['status'], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.match(r.out, /^unit: +registry\.service active$/m)
  t.match(r.out, /^health: +ok \(https:\/\/registry\.lab\.example:8443\/v2\/ answered 401\)$/m)
  t.match(r.out, /^disk: +\S+ used in \/var\/lib\/mirror-registry; \S+ free of \S+ on \//m)
  const days = Math.floor((plan.pki.notAfter.getTime() - Date.now()) / 86400e3)
  t.match(r.out, new RegExp(`^cert: +expires .* GMT \\((${days}|${days - 1}) days\\)$`, 'm'))
  t.match(r.out, /^images: /m)
  const down = h.run(['status'], { FAKE_INACTIVE: '1', FAKE_HEALTH_CODE: '000' }, h.ctl)
  t.equal(down.status, 1)
  t.match(down.out, /^unit: +registry\.service inactive$/m)
  t.match(down.out, /^health: +FAILING/m)
  const expired = await installed(t, testPlan({ flavor: 'distribution' }))
  t.match(expired.run(['status'], {}, expired.ctl).out, /^cert: +EXPIRED on .*; run: mirror-registryctl rotate-cert$/m)
})

t.test('backup and restore of data and configuration', async (t) => {
  const plan = testPlan({ flavor: 'distribution' })
  const h = await installed(t, plan)
  const store = join(h.root, 'var/lib/mirror-registry/registry/storage')
  writeFileSync(join(store, 'blob'), 'before')
  const out = join(h.base, 'backups')
  mkdirSync(out)
  const b = h.run(['backup', out], {}, h.ctl)
  t.equal(b.status, 0, b.out)
  const [file] = readdirSync(out)
  t.match(file!, /^mirror-registry-backup-\d{8}T\d{6}Z\.tar\.gz$/)
  const archive = join(out, file!)
  t.equal((await import('node:fs')).statSync(archive).mode & 0o777, 0o600)
  const list = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' }).stdout
  for (const p of [
    'var/lib/mirror-registry/registry/storage/blob',
    'etc/mirror-appliance/registry-auth.curl',
    'etc/containers/systemd/registry.container',
    'root/mirror-appliance/pull-secret.json',
  ])
    t.match(list, new RegExp(`^${p.replace(/[.]/g, '\\.')}$`, 'm'), `backup holds ${p}`)
  t.ok(h.calls().includes('systemctl stop registry.service'), 'stopped for a consistent copy')
  writeFileSync(join(store, 'blob'), 'after')
  writeFileSync(join(store, 'extra'), 'new')
  t.match(h.run(['restore', archive], {}, h.ctl).out, /refusing without a terminal/)
  t.equal(readFileSync(join(store, 'blob'), 'utf8'), 'after')
  const r = h.run(['restore', archive, '--yes'], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  t.equal(readFileSync(join(store, 'blob'), 'utf8'), 'before')
  t.notOk(existsSync(join(store, 'extra')), 'data written after the backup is gone')
  // an archive with other paths is refused
  const evil = join(h.base, 'evil.tar.gz')
  mkdirSync(join(h.base, 'e/etc'), { recursive: true })
  writeFileSync(join(h.base, 'e/etc/passwd'), 'x')
  spawnSync('tar', ['-C', join(h.base, 'e'), '-czf', evil, 'etc/passwd'])
  t.match(h.run(['restore', evil, '--yes'], {}, h.ctl).out, /holds paths a backup of this registry does not: etc\/passwd/)
})

t.test('import: an OCI layout directory and an OCI archive are pushed under their names', async (t) => {
  const plan = testPlan({ flavor: 'distribution' })
  const h = await installed(t, plan)
  const lay = join(h.base, 'usb')
  mkdirSync(lay)
  writeFileSync(join(lay, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  writeFileSync(
    join(lay, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { digest: 'sha256:' + 'a'.repeat(64), annotations: { 'org.opencontainers.image.ref.name': 'content/ocp/extra:1.0' } },
        { digest: 'sha256:' + 'b'.repeat(64), annotations: { 'org.opencontainers.image.ref.name': 'tools/jq:1.7' } },
        { digest: 'sha256:' + 'c'.repeat(64), annotations: { 'org.opencontainers.image.ref.name': 'stack/registry' } },
      ],
    }),
  )
  const n = h.calls().length
  const r = h.run(['import', lay, '--prefix', 'site'], {}, h.ctl)
  t.equal(r.status, 0, r.out)
  const pushes = h
    .calls()
    .slice(n)
    .filter((c) => c.startsWith('skopeo copy --quiet --all'))
  t.equal(pushes.length, 2, 'stack images are not content')
  t.match(pushes[0]!, new RegExp(`oci:${lay}:content/ocp/extra:1\\.0 docker://registry\\.lab\\.example:8443/site/ocp/extra:1\\.0$`))
  t.match(pushes[1]!, /docker:\/\/registry\.lab\.example:8443\/site\/tools\/jq:1\.7$/)
  t.match(pushes[0]!, /--dest-cert-dir ROOT\/etc\/containers\/certs\.d\/registry\.lab\.example:8443 /)
  const tarball = join(h.base, 'img.tar')
  spawnSync('tar', ['-C', lay, '-cf', tarball, '.'])
  t.equal(h.run(['import', tarball], {}, h.ctl).status, 0)
  const ocm = join(h.base, 'mirror_000001.tar')
  mkdirSync(join(h.base, 'ocm/working-dir'), { recursive: true })
  spawnSync('tar', ['-C', join(h.base, 'ocm'), '-cf', ocm, 'working-dir'])
  t.match(h.run(['import', ocm], {}, h.ctl).out, /is an oc-mirror archive: push it with oc-mirror itself/)
  t.match(h.run(['import', join(h.base, 'nothing')], {}, h.ctl).out, /no such file or directory/)
})

t.test('help: the header comment, without facts or library (it works anywhere, for anyone)', async (t) => {
  const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'ctl-help-'))
  t.teardown(() => await_rm(dir))
  writeFileSync(join(dir, 'ctl'), readFileSync(join(REPO_ROOT, 'templates/host/mirror-registryctl')))
  const h = spawnSync('bash', [join(dir, 'ctl'), 'help'], { encoding: 'utf8', env: { PATH: process.env.PATH!, MA_ROOT: dir } })
  t.equal(h.status, 0)
  t.match(
    h.stdout,
    /^ *mirror-registryctl install \[--quayHostname H\[:PORT\] \[--caKey F\]\] \[--quayRoot DIR\]/m,
    'help is the header comment',
  )
  t.notMatch(h.stdout, /set -Eeuo/)
  t.notMatch(h.stdout, /MA_ROOT|scratch tree|destroy\(\)/, "no test plumbing in the administrator's help")
  t.match(
    h.stdout,
    /mirror-registryctl restore FILE \[--yes\]\n\n"mirror-registryctl COMMAND --help" \(or "help COMMAND"\) shows a command's options\./,
    "the last command, then where each command's options are (test/registryctl-args.test.ts)",
  )
  t.match(h.stdout, /change nothing here\.\n$/, 'the help ends with the header comment')
})

t.test('usage errors exit 2', async (t) => {
  const plan = testPlan()
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  for (const args of [['frobnicate'], ['install', '--bogus'], ['upgrade'], ['rotate-cert', '--ca-cert', 'x']]) {
    const r = h.run(args)
    t.equal(r.status, 2, `${args.join(' ')}: ${r.out}`)
  }
  t.match(h.run(['status']).out, /no registry installed here/)
})

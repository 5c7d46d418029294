// End to end, distribution flavor: Debian's docker-registry (the program in
// registry:2) runs from the GENERATED config.yml, htpasswd, certificate and
// key that mirror-registryctl installed under a scratch root. skopeo pushes
// images to it; then mirror-registryctl rotate-cert (real openssl, real curl
// health check) and upgrade (new units, data dir kept) run against it, and
// every pushed image must still be pullable, bit for bit, trusting the CA the
// script left in place (and, after a new self-signed pair, not the old CA).
//
// Faked: systemctl here REALLY stops and starts the docker-registry process,
// with the unit's Volume= host paths put where podman would mount them;
// loading stack images into containers-storage (podman cannot run here) and
// the preflight probes (getent, ss, firewall-cmd, …) are recording fakes.
// The install step itself runs under the full fake harness.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { newStackBundle, sha, testPlan } from '../helpers/bundle-fixture.js'
import { ctlHarness } from '../helpers/ctl-harness.js'
import { freePort, realRegistry } from '../helpers/ctl-real-registry.js'
import { sampleImages, writeLayout } from '../helpers/oci-fixtures.js'

t.test('rotate-cert and upgrade against a real registry keep every pushed image pullable', async (t) => {
  const port = await freePort()
  const plan = testPlan({
    flavor: 'distribution',
    port,
    epoch: Math.floor(Date.now() / 1000) - 120,
    extra: '  tls: { extraSANs: [127.0.0.1] }',
    seed: 'e2e-ctl',
  })
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  const inst = h.run(['install'])
  t.equal(inst.status, 0, inst.out)
  const { env, state, ctl, sysctl } = realRegistry(h, port, (fn) => t.teardown(fn))
  sysctl(['start'])
  const ctlRun = (args: string[]) => h.run(args, env, ctl)
  const st = ctlRun(['status'])
  t.equal(st.status, 0, `${st.out}\n${existsSync(join(state, 'registry.log')) ? readFileSync(join(state, 'registry.log'), 'utf8') : ''}`)
  t.match(st.out, new RegExp(`health: +ok \\(https://127\\.0\\.0\\.1:${port}/v2/ answered 401\\)`), 'real health check through our CA')

  // push images the way first boot does: generated credentials, our CA
  const imgs = sampleImages()
  const layout = join(h.base, 'images')
  await writeLayout(layout, [
    { name: 'app', root: imgs.app.manifest, images: [imgs.app] },
    { name: 'multi', root: imgs.multi, images: [imgs.amd, imgs.arm] },
  ])
  const certDir = (ca: string) => {
    const d = join(h.base, `certs-${sha(ca).slice(0, 8)}`)
    mkdirSync(d, { recursive: true })
    writeFileSync(join(d, 'ca.crt'), ca)
    return d
  }
  const creds = `init:${plan.secrets.initPassword}`
  const addr = `127.0.0.1:${port}`
  const pushed: Record<string, string> = {}
  for (const [name, repo] of [
    ['app', 'team/app:1.0'],
    ['multi', 'ocp/multi:4.16'],
  ] as const) {
    const p = spawnSync(
      'skopeo',
      [
        '--insecure-policy',
        'copy',
        '--all',
        '--dest-cert-dir',
        certDir(plan.pki.caCertPem),
        '--dest-creds',
        creds,
        `oci:${layout}:${name}`,
        `docker://${addr}/${repo}`,
      ],
      { encoding: 'utf8' },
    )
    t.equal(p.status, 0, p.stderr)
    const raw = spawnSync('skopeo', [
      'inspect',
      '--raw',
      '--cert-dir',
      certDir(plan.pki.caCertPem),
      '--creds',
      creds,
      `docker://${addr}/${repo}`,
    ])
    pushed[repo] = sha(raw.stdout)
  }
  t.equal(pushed['ocp/multi:4.16'], imgs.multi.digest.slice(7), 'multi-arch index digest preserved')
  const storage = join(h.root, 'var/lib/mirror-registry/registry/storage/docker/registry/v2/repositories')
  t.ok(existsSync(join(storage, 'team/app')), 'stored in the installed data dir')

  const pullAll = (ca: string, label: string) => {
    for (const [repo, digest] of Object.entries(pushed)) {
      const out = join(h.base, `pull-${sha(label + repo).slice(0, 8)}`)
      rmSync(out, { recursive: true, force: true })
      const p = spawnSync(
        'skopeo',
        [
          '--insecure-policy',
          'copy',
          '--all',
          '--src-cert-dir',
          certDir(ca),
          '--src-creds',
          creds,
          `docker://${addr}/${repo.split(':')[0]}@sha256:${digest}`,
          `oci:${out}:x`,
        ],
        { encoding: 'utf8' },
      )
      t.equal(p.status, 0, `${label}: ${repo} pullable: ${p.stderr}`)
      if (p.status === 0) {
        const idx = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'))
        t.equal(idx.manifests[0].digest, `sha256:${digest}`, `${label}: ${repo} same digest`)
      }
      const tag = spawnSync('skopeo', ['inspect', '--raw', '--cert-dir', certDir(ca), '--creds', creds, `docker://${addr}/${repo}`])
      t.equal(sha(tag.stdout), digest, `${label}: the tag ${repo} still names it`)
    }
  }
  pullAll(plan.pki.caCertPem, 'before')
  t.match(ctlRun(['status']).out, /^images: +2 repositories$/m, 'status counts what the registry holds')

  // ---- rotate-cert: a new self-signed pair, registry restarted for real ----
  const rot = ctlRun(['rotate-cert', '--days', '90'])
  t.equal(rot.status, 0, `${rot.out}\n${readFileSync(join(state, 'registry.log'), 'utf8').slice(-2000)}`)
  const newCa = h.read('root/mirror-appliance/ca.crt')
  t.not(newCa, plan.pki.caCertPem, 'a new CA')
  const served = spawnSync(
    'bash',
    ['-c', `openssl s_client -connect ${addr} -servername 127.0.0.1 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`],
    { encoding: 'utf8' },
  ).stdout
  const onDisk = spawnSync(
    'openssl',
    ['x509', '-in', join(h.root, 'var/lib/mirror-registry/registry/certs/server.crt'), '-noout', '-fingerprint', '-sha256'],
    { encoding: 'utf8' },
  ).stdout
  t.equal(served, onDisk, 'the registry serves the new certificate')
  pullAll(newCa, 'after rotate-cert')
  const old = spawnSync(
    'skopeo',
    ['--insecure-policy', 'inspect', '--raw', '--cert-dir', certDir(plan.pki.caCertPem), '--creds', creds, `docker://${addr}/team/app:1.0`],
    { encoding: 'utf8' },
  )
  t.not(old.status, 0, 'the old CA is no longer enough')
  t.match(old.stderr, /certificate signed by unknown authority|x509/)

  // ---- rotate-cert with a user CA ----
  const { userCa } = await import('../helpers/user-ca.js')
  mkdirSync(join(h.base, 'user'))
  const u = userCa(join(h.base, 'user'))
  const rot2 = ctlRun(['rotate-cert', '--ca-cert', u.ca, '--ca-key', u.caKey])
  t.equal(rot2.status, 0, rot2.out)
  pullAll(readFileSync(u.ca, 'utf8'), 'after rotate-cert with a user CA')

  // ---- upgrade: new units (new stack image digests), data dir kept ----
  const nb = newStackBundle(h, plan)
  const up = ctlRun(['upgrade', nb.dir])
  t.equal(up.status, 0, up.out)
  t.match(up.out, /healthy: https:\/\/127\.0\.0\.1:\d+\/v2\/ answered 401/)
  t.ok(
    nb.refs.every((r) => h.read('etc/containers/systemd/registry.container').includes(r)),
    'the new unit runs the new image',
  )
  pullAll(readFileSync(u.ca, 'utf8'), 'after upgrade')

  // ---- a failed upgrade (registry cannot start): rollback, still serving everything ----
  const broken = newStackBundle({ base: join(h.base, 'b2'), bundleDir: nb.dir }, plan)
  mkdirSync(join(h.base, 'b2'), { recursive: true })
  const unitPath = join(broken.dir, 'files/etc/containers/systemd/registry.container')
  // a unit whose storage volume points at a file: docker-registry fails at start
  writeFileSync(unitPath, readFileSync(unitPath, 'utf8').replace(/^Volume=.*:\/certs:.*$/m, 'Volume=/nonexistent/certs:/certs:ro,Z'))
  const before = h.read('etc/containers/systemd/registry.container')
  const bad = h.run(['upgrade', broken.dir], { ...env, MA_HEALTH_TIMEOUT: '3' }, ctl)
  t.equal(bad.status, 1, bad.out)
  t.match(bad.out, /rolled back: the previous units and images run again and are healthy/)
  t.equal(h.read('etc/containers/systemd/registry.container'), before, 'previous unit back')
  t.match(
    readFileSync(join(state, 'registry.log'), 'utf8'),
    /open \S*\/nonexistent\/certs\/server\.crt: no such file or directory/,
    'the broken unit really failed to start the registry',
  )
  pullAll(readFileSync(u.ca, 'utf8'), 'after a rolled-back upgrade')
})

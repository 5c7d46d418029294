// mirror-registryctl export, end to end, with two real registries on
// 127.0.0.1: the source is the appliance's registry (Debian's docker-registry
// run from the generated distribution config: TLS with our CA, htpasswd), the
// destination a second, plain docker-registry. The real script lists the
// source's catalog and tags (page size 2, so pagination is used), copies every
// repository:tag with real skopeo and checks each digest at the destination.
// A copy made to fail on the second image proves the export stops short, says
// so, and that the re-run copies only what is missing. --to-archive writes an
// OCI layout that skopeo reads back, with images.txt and an oc-mirror v2
// ImageSetConfiguration. Faked: the preflight probes and containers-storage
// loads, as in registryctl-distribution.test.ts.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { sha, testPlan } from '../helpers/bundle-fixture.js'
import { ctlHarness } from '../helpers/ctl-harness.js'
import { freePort, realRegistry } from '../helpers/ctl-real-registry.js'
import { sampleImages, writeLayout } from '../helpers/oci-fixtures.js'
import { startRegistry } from '../helpers/registry.js'

// real skopeo (containers-storage loads faked), every copy recorded, and a
// copy whose arguments contain $FAIL_COPY fails the way a dropped connection does
const SKOPEO = `#!/bin/bash
for a in "$@"; do case "$a" in containers-storage:*) printf 'skopeo %s\\n' "$*" >>"$FAKE_LOG"; exit 0 ;; esac; done
if [ "$1" = copy ]; then
  printf '%s\\n' "\${@: -1}" >>"$E2E_STATE/copies.log"
  if [ -n "\${FAIL_COPY:-}" ]; then
    for a in "$@"; do case "$a" in *"$FAIL_COPY"*) echo "FATA[0000] injected: connection reset by peer" >&2; exit 1 ;; esac; done
  fi
fi
exec /usr/bin/skopeo --insecure-policy "$@"
`

t.test('export --to-registry and --to-archive: every image, same digests, resumable', async (t) => {
  const port = await freePort()
  const plan = testPlan({
    flavor: 'distribution',
    port,
    epoch: Math.floor(Date.now() / 1000) - 120,
    extra: '  tls: { extraSANs: [127.0.0.1] }',
    seed: 'e2e-export',
  })
  const h = await ctlHarness(plan, { teardown: (fn) => t.teardown(fn) })
  const inst = h.run(['install'])
  t.equal(inst.status, 0, inst.out)
  const src = realRegistry(h, port, (fn) => t.teardown(fn), SKOPEO)
  src.sysctl(['start'])
  const dst = await startRegistry()
  t.teardown(() => dst.stop())
  const copies = join(src.state, 'copies.log')
  const copied = () => (existsSync(copies) ? readFileSync(copies, 'utf8').split('\n').filter(Boolean) : [])
  const ctl = (args: string[], env: Record<string, string> = {}) => h.run(args, { ...src.env, MA_PAGE_SIZE: '2', ...env }, src.ctl)

  // content: 3 repositories (one multi-arch), one with two tags
  const imgs = sampleImages()
  const layout = join(h.base, 'images')
  await writeLayout(layout, [
    { name: 'app', root: imgs.app.manifest, images: [imgs.app] },
    { name: 'tool', root: imgs.tool.manifest, images: [imgs.tool] },
    { name: 'multi', root: imgs.multi, images: [imgs.amd, imgs.arm] },
  ])
  const certs = join(h.base, 'src-certs')
  mkdirSync(certs)
  writeFileSync(join(certs, 'ca.crt'), plan.pki.caCertPem)
  const creds = `init:${plan.secrets.initPassword}`
  const want: Record<string, string> = {
    'ocp/multi:4.16': imgs.multi.digest,
    'team/app:1.0': imgs.app.manifest.digest,
    'team/app:latest': imgs.app.manifest.digest,
    'tools/tool:2.0': imgs.tool.manifest.digest,
  }
  const layoutName: Record<string, string> = {
    'ocp/multi:4.16': 'multi',
    'team/app:1.0': 'app',
    'team/app:latest': 'app',
    'tools/tool:2.0': 'tool',
  }
  for (const [ref, name] of Object.entries(layoutName)) {
    const p = spawnSync(
      '/usr/bin/skopeo',
      [
        '--insecure-policy',
        'copy',
        '--all',
        '--preserve-digests',
        '--dest-cert-dir',
        certs,
        '--dest-creds',
        creds,
        `oci:${layout}:${name}`,
        `docker://${src.addr}/${ref}`,
      ],
      { encoding: 'utf8' },
    )
    t.equal(p.status, 0, `pushed ${ref}: ${p.stderr}`)
  }
  const dstDigest = (ref: string) => {
    const r = spawnSync('/usr/bin/skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])
    return r.status === 0 ? 'sha256:' + sha(r.stdout) : `missing (${r.stderr.toString().trim()})`
  }

  // ---- 1. the 2nd image fails: the others are copied, exit 1, the failure named ----
  const first = ctl(['export', '--to-registry', `${dst.host}/mirror`, '--dest-insecure'], { FAIL_COPY: '/mirror/team/app:1.0' })
  t.equal(first.status, 1, first.out)
  t.match(first.out, /^\[1\/4\] ocp\/multi:4\.16$/m, 'progress lines [i/N] repo:tag')
  t.match(first.out, /^\[2\/4\] team\/app:1\.0$/m)
  t.match(first.out, /\[2\/4\] team\/app:1\.0: copy failed/)
  t.match(first.out, /1 of 4 image\(s\) not exported; run the same command again/)
  t.equal(dstDigest(`${dst.host}/mirror/ocp/multi:4.16`), want['ocp/multi:4.16'], 'the first image arrived before the failure')
  t.match(dstDigest(`${dst.host}/mirror/team/app:1.0`), /^missing/, 'the failed one is not there')
  const state = join(h.root, 'var/lib/mirror-appliance/export', `${dst.host.replace(':', '_')}_mirror.done`)
  t.same(
    readFileSync(state, 'utf8').split('\n').filter(Boolean).sort(),
    ['ocp/multi:4.16', 'team/app:latest', 'tools/tool:2.0'].map((r) => `${r}@${want[r]}`),
    'the state file lists what was finished and verified',
  )
  const before = copied().length
  t.equal(before, 4, 'four copies tried')

  // ---- 2. the re-run copies only the missing one ----
  const second = ctl(['export', '--to-registry', `${dst.host}/mirror`, '--dest-insecure'])
  t.equal(second.status, 0, second.out)
  t.match(second.out, /^\[1\/4\] ocp\/multi:4\.16 \(done before, skipped\)$/m)
  t.match(second.out, /^\[2\/4\] team\/app:1\.0$/m)
  t.match(second.out, /exported 4 image\(s\) to docker:\/\/127\.0\.0\.1:\d+\/mirror, every digest verified/)
  t.same(copied().slice(before), [`docker://${dst.host}/mirror/team/app:1.0`], 'the re-run copied only team/app:1.0')
  for (const [ref, digest] of Object.entries(want))
    t.equal(dstDigest(`${dst.host}/mirror/${ref}`), digest, `${ref} at the destination with the source digest`)
  for (const child of [imgs.amd, imgs.arm])
    t.equal(
      dstDigest(`${dst.host}/mirror/ocp/multi@${child.manifest.digest}`),
      child.manifest.digest,
      'each platform of the multi-arch image came along',
    )
  const third = ctl(['export', '--to-registry', `${dst.host}/mirror`, '--dest-insecure'])
  t.equal(third.status, 0, third.out)
  t.equal(copied().length, before + 1, 'a third run copies nothing')

  // ---- 3. --to-archive: an OCI layout skopeo reads back ----
  const arch = join(h.base, 'export')
  const a = ctl(['export', '--to-archive', arch])
  t.equal(a.status, 0, a.out)
  const index = JSON.parse(readFileSync(join(arch, 'oci/index.json'), 'utf8')) as {
    manifests: { digest: string; annotations: Record<string, string> }[]
  }
  t.same(
    index.manifests.map((m) => `${m.annotations['org.opencontainers.image.ref.name']}@${m.digest}`).sort(),
    Object.entries(want)
      .map(([r, d]) => `${r}@${d}`)
      .sort(),
    'index.json names every repository:tag with its digest',
  )
  t.same(
    readFileSync(join(arch, 'images.txt'), 'utf8').trim().split('\n'),
    Object.entries(want).map(([r, d]) => `${r}@${d}`),
    'images.txt lists them',
  )
  for (const [ref, digest] of Object.entries(want)) {
    const out = join(h.base, `readback-${ref.replace(/[/:]/g, '_')}`)
    const p = spawnSync(
      '/usr/bin/skopeo',
      ['--insecure-policy', 'copy', '--all', '--preserve-digests', `oci:${join(arch, 'oci')}:${ref}`, `oci:${out}:x`],
      { encoding: 'utf8' },
    )
    t.equal(p.status, 0, `skopeo reads ${ref} back: ${p.stderr}`)
    const back = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }
    t.equal(back.manifests[0]!.digest, digest, `${ref} read back with its digest`)
  }
  const isc = parse(readFileSync(join(arch, 'imageset-config.yaml'), 'utf8')) as {
    kind: string
    apiVersion: string
    mirror: { additionalImages: { name: string }[] }
  }
  t.equal(isc.kind, 'ImageSetConfiguration')
  t.equal(isc.apiVersion, 'mirror.openshift.io/v2alpha1')
  t.same(
    isc.mirror.additionalImages.map((i) => i.name),
    Object.entries(want).map(([r, d]) => `registry.lab.example:${port}/${r.split(':')[0]}@${d}`),
    'the ImageSetConfiguration names each image by digest at the appliance',
  )
  const again = ctl(['export', '--to-archive', arch])
  t.equal(again.status, 0, again.out)
  t.equal((again.out.match(/done before, skipped/g) ?? []).length, 4, 'a re-run of the archive export skips everything')
})

t.test('export usage errors exit 2', async (t) => {
  const h = await ctlHarness(testPlan({ flavor: 'distribution' }), { teardown: (fn) => t.teardown(fn) })
  for (const [args, msg] of [
    [['export'], /export needs --to-archive DIR or --to-registry/],
    [['export', '--to-archive', 'a', '--to-registry', 'b'], /exclude each other/],
    [['export', '--to-archive', 'a', '--dest-creds', 'u:p'], /go with --to-registry/],
    [['export', '--frob'], /export: unknown option --frob/],
  ] as const) {
    const r = h.run([...args])
    t.equal(r.status, 2, r.out)
    t.match(r.out, msg)
  }
  const help = h.run(['help'])
  t.match(help.out, /mirror-registryctl export --to-registry HOST\[:PORT\]\[\/PREFIX\] \[--dest-creds-file F\]/, 'export is in the help')
})

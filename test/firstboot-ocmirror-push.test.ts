// The generated first-boot script pushes the content of oc-mirror archives
// into a REAL registry (Debian's docker-registry, distribution 2.8, plain
// HTTP here) with the real skopeo: every image under the repository and tag
// oc-mirror gave it, by the digest the archive holds, cosign signatures with
// their tags, the kept platform of a sparse index by digest. Faked: podman,
// systemctl, curl and the other host tools (test/helpers/fakebin/fake), and
// skopeo's loading into containers-storage; the skopeo wrapper only sends
// docker://HOSTNAME:PORT to the local registry without TLS.
//
// distribution 2.8 refuses an index whose children are not all in the
// repository (manifestlisthandler verifyManifest), so the sparse index
// itself is refused there: first boot must then stop at it and say why.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfigText } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import { assemblePayload } from '../builder/payload/assemble.js'
import { importArchivesDetailed } from '../builder/payload/import.js'
import type { OcMirrorResult } from '../builder/payload/ocmirror.js'
import { ocMirrorScenario } from './helpers/oc-mirror-fixture.js'
import { sha } from './helpers/oci-fixtures.js'
import { startRegistry } from './helpers/registry.js'

const FAKE = fileURLToPath(new URL('./helpers/fakebin/fake', import.meta.url))
const FAKED = ['podman', 'systemctl', 'curl', 'update-ca-trust', 'restorecon', 'getent']
const REGISTRY = 'registry.lab.example:8443'

const SKOPEO = `#!/bin/bash
printf 'skopeo %s\\n' "$*" >>"$FAKE_LOG"
args=()
for a in "$@"; do
  case "$a" in
    containers-storage:*) exit 0 ;;
    docker://${REGISTRY}/*) a="docker://$E2E_REGISTRY/\${a#docker://${REGISTRY}/}" ;;
  esac
  args+=("$a")
done
case "\${args[0]}" in
  copy) [ "\${args[1]:-}" = --help ] || args=(copy --dest-tls-verify=false "\${args[@]:1}") ;;
  inspect) args=(inspect --tls-verify=false "\${args[@]:1}") ;;
esac
exec /usr/bin/skopeo --insecure-policy "\${args[@]}"
`

const work = await mkdtemp(join(tmpdir(), 'ma-fb-ocm-'))
t.teardown(() => rm(work, { recursive: true, force: true }))
const s = await ocMirrorScenario(join(work, 'archives'))
const cache = join(work, 'cache')
const imported = (await importArchivesDetailed({ cacheDir: cache, paths: [s.run1.dir, s.run2.dir] })).ocMirror!
const loaded = loadConfigText(
  `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda } }
registry: { flavor: distribution, port: 8443 }
`,
  'fb.yaml',
  { baseDir: '/tmp' },
)
const host = planAppliance(loaded, { epoch: 1_700_000_000, seed: 'ocm-push' }).plan.host

/** A scratch root with the host's files and a payload of the given oc-mirror images; first boot run against the registry. */
async function firstBoot(t: Test, name: string, images: OcMirrorResult['images']) {
  const reg = await startRegistry()
  t.teardown(() => reg.stop())
  const base = join(work, name)
  const root = join(base, 'root')
  const bin = join(base, 'bin')
  mkdirSync(bin, { recursive: true })
  for (const tool of FAKED) symlinkSync(FAKE, join(bin, tool))
  writeFileSync(join(bin, 'skopeo'), SKOPEO)
  chmodSync(join(bin, 'skopeo'), 0o755)
  for (const d of host.dirs) mkdirSync(join(root, d.path), { recursive: true, mode: d.mode })
  for (const f of host.files) {
    mkdirSync(dirname(join(root, f.path)), { recursive: true })
    writeFileSync(join(root, f.path), f.contents, { mode: f.mode })
  }
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n')
  const payload = join(root, 'var/lib/mirror-appliance/payload')
  await assemblePayload({
    cacheDir: cache,
    stack: [],
    content: [],
    outDir: payload,
    ocMirror: { images, releaseSignatures: imported.releaseSignatures },
  })
  const log = join(base, 'calls.log')
  const env = {
    PATH: `${bin}:${process.env.PATH}`,
    MA_ROOT: root,
    FAKE_LOG: log,
    E2E_REGISTRY: reg.host,
    MA_HEALTH_TIMEOUT: '0',
    MA_POLL_INTERVAL: '0',
  }
  const script = join(root, 'usr/local/libexec/mirror-appliance/firstboot')
  const run = (phase: string) => spawnSync('bash', [script, phase], { encoding: 'utf8', env })
  const prep = run('prepare')
  t.equal(prep.status, 0, prep.stdout + prep.stderr)
  const fin = run('finish')
  /** sha256 of what the registry serves for REPO:TAG or REPO@DIGEST */
  const served = (ref: string) => {
    const r = spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${ref}`])
    return r.status === 0 ? sha(r.stdout) : `not served: ${r.stderr}`
  }
  return {
    fin: { status: fin.status, out: fin.stdout + fin.stderr },
    served,
    reg,
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8') : ''),
  }
}

t.test(
  'every image, signature and kept platform reaches the registry by digest; the sparse index is refused by distribution 2.8',
  async (t) => {
    const fb = await firstBoot(t, 'all', imported.images)
    t.not(fb.fin.status, 0, 'first boot stops at the sparse index')
    t.match(
      fb.fin.out,
      new RegExp(
        `the registry refused docker://${REGISTRY.replaceAll('.', '\\.')}/ubi9/ubi:latest, an index some platforms of which oc-mirror left out`,
      ),
    )
    t.match(fb.fin.out, /FAILED at step 'push-content'/)
    const sparse = s.expect2.images.find((i) => i.absent)!
    for (const w of s.expect2.images.filter((i) => i.kind === 'image' && !i.absent))
      t.equal(fb.served(`${w.repo}:${w.tag}`), w.digest, `${w.repo}:${w.tag} served by its digest`)
    t.equal(
      fb.served(`ubi9/ubi@${s.images.ubiAmd!.manifest.digest}`),
      s.images.ubiAmd!.manifest.digest,
      'the kept platform pushed by digest before the index',
    )
    t.match(
      fb.calls(),
      /skopeo copy --quiet --multi-arch index-only --preserve-digests --dest-authfile \S+ oci:\S+:content\/ubi9\/ubi:latest docker:\/\/registry\.lab\.example:8443\/ubi9\/ubi:latest/,
      'the index alone, as it is',
    )
    t.match(fb.served(`ubi9/ubi:latest`), /not served/, `${sparse.repo}:${sparse.tag} is not there`)
  },
)

t.test('without a sparse index, first boot pushes everything; signatures keep their tags', async (t) => {
  const fb = await firstBoot(
    t,
    'dense',
    imported.images.filter((i) => !i.absent),
  )
  t.equal(fb.fin.status, 0, fb.fin.out)
  const images = s.expect2.images.filter((i) => i.kind === 'image' && !i.absent)
  t.match(fb.fin.out, new RegExp(`content pushed: ${images.length} image\\(s\\), 1 signature\\(s\\)`))
  for (const w of s.expect2.images.filter((i) => !i.absent))
    t.equal(fb.served(`${w.repo}:${w.tag}`), w.digest, `${w.kind} ${w.repo}:${w.tag} served by its digest`)
  // the release payload pulled back whole, blob for blob
  const back = join(work, 'back')
  const pull = spawnSync(
    'skopeo',
    [
      '--insecure-policy',
      'copy',
      '--src-tls-verify=false',
      `docker://${fb.reg.host}/openshift/release-images:4.15.0-x86_64`,
      `oci:${back}:x`,
    ],
    { encoding: 'utf8' },
  )
  t.equal(pull.status, 0, pull.stderr)
  for (const b of [s.images.release!.config, ...s.images.release!.layers])
    t.ok(readFileSync(join(back, 'blobs/sha256', b.digest.slice(7))).equals(b.data), `blob ${b.digest.slice(0, 19)} same bytes`)
})

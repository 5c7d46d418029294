// The first-boot script (templates/host/firstboot, with the host's facts and
// lib.sh as the host spec lays them down), run for real (bash) against a scratch root with
// recording fakes for podman, skopeo, systemctl, curl, update-ca-trust,
// restorecon and getent on PATH: step order, a second run that does nothing,
// resume after a failure injected at every step, and file modes.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  existsSync,
  renameSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfigText } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import type { HostSpec } from '../builder/plan/types.js'
import { openshiftHandoff, type HandoffFile } from '../builder/openshift.js'
import { factsOf } from '../builder/registry/facts.js'
import { HOSTSPEC_BEGIN, renderKickstart } from '../builder/render/kickstart.js'

const FAKE = fileURLToPath(new URL('./helpers/fakebin/fake', import.meta.url))
const TOOLS = ['podman', 'skopeo', 'systemctl', 'curl', 'update-ca-trust', 'restorecon', 'getent']
const REGISTRY = 'registry.lab.example:8443'
const sha = (s: string) => createHash('sha256').update(s).digest('hex')

const specs: Record<string, { host: HostSpec; stackRefs: string[]; handoff: HandoffFile[] }> = {}
/** extra: more config lines (e.g. a content section) */
function spec(flavor: string, extra = '') {
  const key = `${flavor}\n${extra}`
  if (!specs[key]) {
    const loaded = loadConfigText(
      `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda } }
registry: { flavor: ${flavor}, port: 8443 }
${extra}`,
      'fb.yaml',
      { baseDir: '/tmp' },
    )
    const { plan } = planAppliance(loaded, { epoch: 1_700_000_000, seed: 'firstboot' })
    const host = plan.host
    specs[key] = { host, stackRefs: factsOf(host).stackRefs, handoff: openshiftHandoff(plan) }
  }
  return specs[key]!
}

interface Harness {
  root: string
  log: string
  bin: string
  run(phase: string, env?: Record<string, string>): { status: number | null; out: string }
  calls(): string[]
}

interface HarnessOptions {
  /** The payload carries a registry storage tree (a build for distribution on the host's disk): each content manifest's revision link and its blob */
  tree?: boolean
  /** More config lines for the host spec */
  config?: string
}

function harness(t: Test, flavor: string, contentCount = 2, opts: HarnessOptions = {}): Harness {
  const base = mkdtempSync(join(tmpdir(), 'firstboot-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const root = join(base, 'root')
  const bin = join(base, 'bin')
  const log = join(base, 'calls.log')
  mkdirSync(bin)
  for (const tool of TOOLS) symlinkSync(FAKE, join(bin, tool))
  const { host, stackRefs, handoff } = spec(flavor, opts.config)
  for (const d of host.dirs) {
    mkdirSync(join(root, d.path), { recursive: true })
    chmodSync(join(root, d.path), d.mode)
  }
  for (const f of host.files) {
    mkdirSync(dirname(join(root, f.path)), { recursive: true })
    writeFileSync(join(root, f.path), f.contents)
    chmodSync(join(root, f.path), f.mode)
  }
  mkdirSync(join(root, 'etc'), { recursive: true })
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n')
  // payload: images.tsv with the stack images the units name and some content
  const payload = join(root, 'var/lib/mirror-appliance/payload')
  mkdirSync(join(payload, 'oci'), { recursive: true })
  writeFileSync(join(payload, 'oci/index.json'), '{"schemaVersion":2}\n')
  const rows = stackRefs.map((ref, i) => {
    const [repo, digest] = ref.split('@') as [string, string]
    return ['stack', `stack/s${i}`, digest, repo, '-']
  })
  // what the fake skopeo returns as each pushed manifest, by tag; the digest is its sha256
  const manifests = join(base, 'manifests')
  mkdirSync(manifests)
  for (let i = 1; i <= contentCount; i++) {
    const repo = `ocp/release${i}`
    const body = `{"manifest": ${i}}`
    const digest = `sha256:${sha(body)}`
    // the second image is listed by digest only: first boot tags it sha256-<hex>
    const tag = i === 2 ? '-' : `4.14.${i}`
    writeFileSync(join(manifests, tag === '-' ? `sha256-${sha(body)}` : tag), body)
    rows.push(['content', `content/${repo}:${tag}`, digest, repo, tag])
    if (opts.tree) {
      const rev = join(payload, 'registry-tree/docker/registry/v2/repositories', repo, '_manifests/revisions/sha256', sha(body))
      mkdirSync(rev, { recursive: true })
      writeFileSync(join(rev, 'link'), digest)
      mkdirSync(join(payload, 'oci/blobs/sha256'), { recursive: true })
      writeFileSync(join(payload, 'oci/blobs/sha256', sha(body)), body)
    }
  }
  if (opts.tree) mkdirSync(join(payload, 'registry-tree/docker/registry/v2/repositories'), { recursive: true })
  const final = rows
  writeFileSync(join(payload, 'images.tsv'), final.map((r) => r.join('\t')).join('\n') + '\n')
  // the OpenShift hand-off a build puts into the payload for this host
  mkdirSync(join(payload, 'openshift/registry.lab.example'), { recursive: true })
  for (const f of handoff) writeFileSync(join(payload, 'openshift/registry.lab.example', f.name), f.contents, { mode: f.mode })
  const listed = ['images.tsv', 'oci/index.json', ...handoff.map((f) => `openshift/registry.lab.example/${f.name}`)]
  const sums = listed.map((p) => `${sha(readFileSync(join(payload, p), 'utf8'))}  ${p}`)
  writeFileSync(join(payload, 'SHA256SUMS'), sums.join('\n') + '\n')
  const script = join(root, 'usr/local/libexec/mirror-appliance/firstboot')
  return {
    root,
    log,
    bin,
    run(phase, env = {}) {
      const r = spawnSync('bash', [script, phase], {
        encoding: 'utf8',
        env: {
          PATH: `${bin}:${process.env.PATH}`,
          MA_ROOT: root,
          FAKE_LOG: log,
          FAKE_MANIFESTS: join(base, 'manifests'),
          MA_HEALTH_TIMEOUT: '0',
          MA_POLL_INTERVAL: '0',
          ...env,
        },
      })
      return { status: r.status, out: r.stdout + r.stderr }
    },
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
  }
}

const mode = (p: string) => statSync(p).mode & 0o777
const FB_STATE = 'var/lib/mirror-appliance/firstboot'

t.test('quay: prepare then finish run every step in order; a second run does nothing', async (t) => {
  const h = harness(t, 'quay')
  const a = h.run('prepare')
  t.equal(a.status, 0, a.out)
  t.notOk(
    h.calls().some((c) => c.startsWith('systemctl start')),
    'prepare does not start the registry',
  )
  const initRequest = join(h.root, 'etc/mirror-appliance/quay-initialize.json')
  t.ok(existsSync(initRequest), 'the initialize request (the init password in clear) is there until the user exists')
  const b = h.run('finish')
  t.equal(b.status, 0, b.out)
  const calls = h.calls().map((c) => c.replaceAll(h.root, 'ROOT'))
  const idx = (re: RegExp) => calls.findIndex((c) => re.test(c))
  const order = [
    /^getent hosts registry\.lab\.example$/,
    /^skopeo copy --quiet oci:ROOT\/var\/lib\/mirror-appliance\/payload\/oci:stack\/s0 containers-storage:docker\.io\/library\/redis@sha256:/,
    /^podman image exists .*@sha256:/,
    /^update-ca-trust extract$/,
    /^systemctl daemon-reload$/,
    /^systemctl start quay-redis\.service quay-app\.service$/,
    /^curl .*https:\/\/registry\.lab\.example:8443\/health\/instance$/,
    /^curl .*--data-binary @ROOT\/etc\/mirror-appliance\/quay-initialize\.json https:\/\/registry\.lab\.example:8443\/api\/v1\/user\/initialize$/,
    /^skopeo copy --quiet --all --preserve-digests --dest-authfile ROOT\/root\/mirror-appliance\/pull-secret\.json oci:ROOT\/var\/lib\/mirror-appliance\/payload\/oci:content\/ocp\/release1:4\.14\.1 docker:\/\/registry\.lab\.example:8443\/ocp\/release1:4\.14\.1$/,
    /^skopeo inspect --raw/,
  ]
  const positions = order.map(idx)
  t.notOk(positions.includes(-1), `every expected call happened: ${JSON.stringify(positions)}`)
  t.same(
    [...positions].sort((x, y) => x - y),
    positions,
    'in this order',
  )
  t.ok(
    calls.some((c) => c.includes('docker://registry.lab.example:8443/ocp/release2:sha256-')),
    'digest-only image pushed under sha256-<hex>',
  )
  t.equal(calls.filter((c) => /^podman image exists/.test(c)).length, 2, 'both stack images checked by repo@digest')
  // results
  t.ok(existsSync(join(h.root, FB_STATE, 'done')), 'disarmed')
  t.equal(readFileSync(join(h.root, 'root/mirror-appliance/quay-token'), 'utf8'), 'tok-123\n')
  t.equal(mode(join(h.root, 'root/mirror-appliance/quay-token')), 0o600)
  t.equal(mode(join(h.root, 'root/mirror-appliance')), 0o700)
  t.equal(mode(join(h.root, 'root/mirror-appliance/credentials.txt')), 0o600)
  t.equal(mode(join(h.root, 'root/mirror-appliance/pull-secret.json')), 0o600)
  t.equal(mode(join(h.root, 'root/mirror-appliance/ca.crt')), 0o644)
  t.equal(mode(join(h.root, FB_STATE)), 0o700)
  t.notOk(existsSync(join(h.root, FB_STATE, 'initialize.out')), "Quay's answer is not left behind")
  t.notOk(existsSync(initRequest), 'nor the initialize request: deleted once the user exists (issue 18 point 5)')
  t.match(readFileSync(join(h.root, 'etc/motd.d/mirror-appliance'), 'utf8'), /registry \(quay\): https:\/\/registry\.lab\.example:8443/)
  t.equal(mode(join(h.root, 'etc/motd.d/mirror-appliance')), 0o644)
  t.match(readFileSync(join(h.root, 'etc/hosts'), 'utf8'), /^127\.0\.0\.1 registry\.lab\.example registry$/m)
  // second run: no-op
  const before = h.calls().length
  const hostsBefore = readFileSync(join(h.root, 'etc/hosts'), 'utf8')
  for (const phase of ['prepare', 'finish']) {
    const c = h.run(phase)
    t.equal(c.status, 0)
    t.match(c.out, /already done/)
  }
  t.equal(h.calls().length, before, 'no tool called on a second run')
  t.equal(readFileSync(join(h.root, 'etc/hosts'), 'utf8'), hostsBefore)
})

t.test('distribution: health is /v2/ answering 401, the login is checked with the credentials', async (t) => {
  const h = harness(t, 'distribution', 1)
  t.equal(h.run('prepare').status, 0)
  const r = h.run('finish')
  t.equal(r.status, 0, r.out)
  const calls = h.calls()
  t.ok(
    calls.some((c) => /^curl .* https:\/\/registry\.lab\.example:8443\/v2\/$/.test(c) && !c.includes(' -K ')),
    'health probe without credentials',
  )
  t.ok(
    calls.some((c) => /^curl .* -K .*registry-auth\.curl https:\/\/registry\.lab\.example:8443\/v2\/$/.test(c)),
    'login check',
  )
  t.ok(calls.some((c) => c.startsWith('systemctl start registry.service')))
  t.notOk(calls.some((c) => c.includes('initialize')))
  t.notOk(existsSync(join(h.root, 'root/mirror-appliance/quay-token')))
  t.ok(existsSync(join(h.root, FB_STATE, 'done')))
})

t.test('distribution: a refused login fails the init-user step', async (t) => {
  const h = harness(t, 'distribution', 0)
  const r = h.run('finish', { FAKE_FAIL: '^curl .* -K ' })
  t.not(r.status, 0)
  t.match(r.out, /FAILED at step 'init-user'/)
})

// ---- content ready with no push (issue 21 point 5) ----------------------
const PAYLOAD = 'var/lib/mirror-appliance/payload'
const treeDir = (flavor: string, config?: string) => factsOf(spec(flavor, config).host).contentTreeDir

t.test(
  'distribution with a storage tree in the payload: hard-linked and renamed before the registry starts, never pushed; a re-run does nothing',
  async (t) => {
    const h = harness(t, 'distribution', 2, { tree: true })
    const storage = join(h.root, treeDir('distribution'))
    t.match(treeDir('distribution'), /\/registry\/storage$/, 'the directory the registry container mounts at /var/lib/registry')
    const a = h.run('prepare')
    t.equal(a.status, 0, a.out)
    t.notOk(
      h.calls().some((c) => c.startsWith('systemctl start')),
      'the registry is not started by prepare',
    )
    const body = '{"manifest": 1}'
    const blob = join(storage, 'docker/registry/v2/blobs/sha256', sha(body).slice(0, 2), sha(body), 'data')
    t.equal(readFileSync(blob, 'utf8'), body, 'the tree is in the storage directory before the registry starts')
    t.equal(
      statSync(blob).ino,
      statSync(join(h.root, PAYLOAD, 'oci/blobs/sha256', sha(body))).ino,
      "its blob is the payload's file (a hard link)",
    )
    t.same(readdirSync(storage), ['docker'], 'no staging directory left')
    const b = h.run('finish')
    t.equal(b.status, 0, b.out)
    const calls = h.calls()
    t.notOk(
      calls.some((c) => /^skopeo copy .*docker:\/\//.test(c)),
      'nothing pushed',
    )
    t.equal(
      calls.filter((c) => /^skopeo inspect --raw .*docker:\/\/registry\.lab\.example:8443\/ocp\/release/.test(c)).length,
      2,
      'the first and the last image read back from the registry, whatever the content',
    )
    t.match(b.out, /content served from the registry storage tree laid at first boot: 2 image\(s\), nothing pushed/)
    t.notOk(existsSync(join(h.root, PAYLOAD)), 'the payload removed once the registry serves its content')
    t.equal(readFileSync(blob, 'utf8'), body, "the registry's blob stays")
    t.ok(existsSync(join(h.root, FB_STATE, 'done')))
    const n = h.calls().length
    for (const phase of ['prepare', 'finish']) t.match(h.run(phase).out, /already done/)
    t.equal(h.calls().length, n, 'a re-run calls no tool')
  },
)

t.test(
  'distribution tree: a power cut after the rename, before the step was recorded: the next boot leaves the tree as it is',
  async (t) => {
    const h = harness(t, 'distribution', 1, { tree: true })
    t.equal(h.run('prepare').status, 0)
    const storage = join(h.root, treeDir('distribution'))
    const ino = statSync(join(storage, 'docker')).ino
    rmSync(join(h.root, FB_STATE, 'place-content.done'))
    const r = h.run('prepare')
    t.equal(r.status, 0, r.out)
    t.match(r.out, /holds content already: left as it is/)
    t.equal(statSync(join(storage, 'docker')).ino, ino)
  },
)

t.test('distribution tree: a bundle installed with its data elsewhere (--quayRoot): the tree goes where its state file says', async (t) => {
  const h = harness(t, 'distribution', 1, { tree: true })
  writeFileSync(
    join(h.root, 'etc/mirror-appliance/registryctl.conf'),
    'VERSION=x\nFLAVOR=distribution\nDATA_DIR=/srv/registry-data\nSTATE=placed\n',
  )
  mkdirSync(join(h.root, 'srv/registry-data/registry/storage'), { recursive: true })
  const r = h.run('prepare')
  t.equal(r.status, 0, r.out)
  t.ok(
    existsSync(join(h.root, 'srv/registry-data/registry/storage/docker/registry/v2/repositories/ocp/release1')),
    'in the moved data directory',
  )
  t.notOk(existsSync(join(h.root, treeDir('distribution'), 'docker')), 'not in the built one')
})

t.test(
  'distribution tree: a bundle installed with its storage elsewhere (--quayStorage): the tree goes where its state file says',
  async (t) => {
    const h = harness(t, 'distribution', 1, { tree: true })
    writeFileSync(
      join(h.root, 'etc/mirror-appliance/registryctl.conf'),
      'VERSION=x\nFLAVOR=distribution\nDATA_DIR=/var/lib/mirror-registry\nSTORAGE_DIR=/data/registry\nSQLITE_DIR=\nSTATE=placed\n',
    )
    mkdirSync(join(h.root, 'data/registry'), { recursive: true })
    const r = h.run('prepare')
    t.equal(r.status, 0, r.out)
    t.ok(existsSync(join(h.root, 'data/registry/docker/registry/v2/repositories/ocp/release1')), 'in the storage directory given')
    t.notOk(existsSync(join(h.root, treeDir('distribution'), 'docker')), 'not in the built one')
  },
)

t.test('distribution tree: a storage tree the registry does not serve fails push-content', async (t) => {
  const h = harness(t, 'distribution', 1, { tree: true })
  const r = h.run('finish', { FAKE_FAIL: '^skopeo inspect' })
  t.not(r.status, 0)
  t.match(r.out, /the registry does not serve registry\.lab\.example:8443\/ocp\/release1:4\.14\.1 from the storage tree laid at first boot/)
  t.match(r.out, /FAILED at step 'push-content'/)
  t.ok(existsSync(join(h.root, PAYLOAD, 'images.tsv')), 'the payload stays until the content is served')
})

t.test('distribution with a payload without a tree (an older build): its content is pushed', async (t) => {
  const h = harness(t, 'distribution', 1)
  const r = h.run('finish')
  t.equal(r.status, 0, r.out)
  t.match(r.out, /the payload carries no registry storage tree/)
  t.ok(
    h.calls().some((c) => /^skopeo copy .*docker:\/\/registry\.lab\.example:8443\/ocp\/release1:4\.14\.1$/.test(c)),
    'pushed',
  )
})

t.test('quay: the payload is removed after the verified push; content.keepPayload keeps it', async (t) => {
  const h = harness(t, 'quay', 1)
  t.equal(treeDir('quay'), '', 'Quay is pushed to: no storage tree')
  const r = h.run('finish')
  t.equal(r.status, 0, r.out)
  const calls = h.calls()
  t.ok(
    calls.some((c) => /^skopeo copy .*docker:\/\//.test(c)),
    'Quay keeps pushing',
  )
  t.match(r.out, /payload removed \(.*\): the registry serves its content/)
  t.notOk(existsSync(join(h.root, PAYLOAD)))
  t.notOk(r.out.includes('step place-content'), 'no tree step for Quay')
  const kept = harness(t, 'quay', 1, { config: 'content: { keepPayload: true }\n' })
  const k = kept.run('finish')
  t.equal(k.status, 0, k.out)
  t.match(k.out, /payload kept in .* \(content\.keepPayload\)/)
  t.ok(existsSync(join(kept.root, PAYLOAD, 'images.tsv')))
})

t.test("install-handoff: the payload's OpenShift hand-off for this host, same bytes, in /root/mirror-appliance/openshift", async (t) => {
  const h = harness(t, 'distribution', 1)
  const r = h.run('finish')
  t.equal(r.status, 0, r.out)
  const dst = join(h.root, 'root/mirror-appliance/openshift')
  const { handoff } = spec('distribution')
  t.same(readdirSync(dst).sort(), handoff.map((f) => f.name).sort(), 'every file of the hand-off')
  for (const f of handoff) {
    t.equal(readFileSync(join(dst, f.name), 'utf8'), f.contents, `${f.name}: same bytes as the build's openshift/`)
    t.equal(mode(join(dst, f.name)), 0o644)
  }
  t.match(r.out, /OpenShift hand-off in \/.*\/root\/mirror-appliance\/openshift/)
})

t.test('install-handoff: a payload without a hand-off (an older build) is said, not a failure', async (t) => {
  const h = harness(t, 'distribution', 1)
  const payload = join(h.root, 'var/lib/mirror-appliance/payload')
  rmSync(join(payload, 'openshift'), { recursive: true })
  const sums = readFileSync(join(payload, 'SHA256SUMS'), 'utf8')
    .split('\n')
    .filter((l) => !l.includes('  openshift/'))
  writeFileSync(join(payload, 'SHA256SUMS'), sums.join('\n'))
  const r = h.run('finish')
  t.equal(r.status, 0, r.out)
  t.match(r.out, /the payload has no OpenShift hand-off for registry\.lab\.example/)
  t.notOk(existsSync(join(h.root, 'root/mirror-appliance/openshift')))
})

// One injected failure per step: what breaks it, and how to mend it.
type Injection = {
  step: string
  env?: Record<string, string>
  /** how the host stands when the next boot retries (what the failure left behind) */
  retryEnv?: Record<string, string>
  break?: (root: string) => void
  mend?: (root: string) => void
}
const injections: Injection[] = [
  {
    step: 'resolve-self',
    break: (r) => {
      renameSync(join(r, 'etc/hosts'), join(r, 'etc/hosts.bak'))
      mkdirSync(join(r, 'etc/hosts'))
    },
    mend: (r) => {
      rmSync(join(r, 'etc/hosts'), { recursive: true })
      renameSync(join(r, 'etc/hosts.bak'), join(r, 'etc/hosts'))
    },
  },
  {
    // Anaconda's kickstart copy cannot be rewritten (its temp file is in the way)
    step: 'scrub-kickstart',
    break: (r) => {
      anacondaLeftovers(r, 'quay')
      mkdirSync(join(r, 'root/anaconda-ks.cfg.tmp'))
    },
    mend: (r) => rmSync(join(r, 'root/anaconda-ks.cfg.tmp'), { recursive: true }),
  },
  {
    step: 'verify-payload',
    break: (r) => writeFileSync(join(r, 'var/lib/mirror-appliance/payload/oci/index.json'), 'damaged'),
    mend: (r) => writeFileSync(join(r, 'var/lib/mirror-appliance/payload/oci/index.json'), '{"schemaVersion":2}\n'),
  },
  { step: 'load-images', env: { FAKE_FAIL: '^skopeo copy .*containers-storage:' } },
  { step: 'trust-ca', env: { FAKE_FAIL: '^update-ca-trust' } },
  { step: 'start-registry', env: { FAKE_FAIL: '^systemctl start' } },
  { step: 'wait-health', env: { FAKE_HEALTH_CODE: '503' } },
  { step: 'init-user', env: { FAKE_FAIL: '^curl .*(initialize|/v2/auth)' } },
  // the failed restart leaves Quay stopped
  { step: 'open-registry', env: { FAKE_FAIL: '^systemctl restart' }, retryEnv: { FAKE_INACTIVE: '1' } },
  { step: 'push-content', env: { FAKE_FAIL: '^skopeo copy .*release2' } },
  {
    step: 'install-handoff',
    break: (r) => writeFileSync(join(r, 'root/mirror-appliance/openshift'), 'in the way'),
    mend: (r) => rmSync(join(r, 'root/mirror-appliance/openshift')),
  },
  {
    step: 'write-credentials',
    break: (r) => renameSync(join(r, 'root/mirror-appliance/credentials.txt'), join(r, 'cred.bak')),
    mend: (r) => renameSync(join(r, 'cred.bak'), join(r, 'root/mirror-appliance/credentials.txt')),
  },
  {
    step: 'motd',
    break: (r) => renameSync(join(r, 'usr/local/share/mirror-appliance/motd'), join(r, 'motd.bak')),
    mend: (r) => renameSync(join(r, 'motd.bak'), join(r, 'usr/local/share/mirror-appliance/motd')),
  },
]
// resolve-self runs on every boot and is never recorded; the rest are.
const STEPS = injections.map((i) => i.step).filter((s) => s !== 'resolve-self')

for (const inj of injections) {
  t.test(`quay: failure at ${inj.step}, then the next boot resumes there`, async (t) => {
    const h = harness(t, 'quay')
    inj.break?.(h.root)
    const failed = h.run('finish', inj.env)
    t.not(failed.status, 0, 'the unit fails')
    t.match(failed.out, new RegExp(`FAILED at step '${inj.step}'`), 'says which step, on the console')
    t.match(failed.out, /tried again on the next boot/)
    const state = join(h.root, FB_STATE)
    t.equal(readFileSync(join(state, 'failed'), 'utf8'), `${inj.step}\n`)
    t.match(readFileSync(join(h.root, 'etc/motd.d/mirror-appliance'), 'utf8'), new RegExp(`FAILED at step ${inj.step}`))
    const at = STEPS.indexOf(inj.step)
    for (const [i, s] of STEPS.entries())
      t.equal(existsSync(join(state, `${s}.done`)), i < at, `${s} ${i < at ? 'recorded' : 'not recorded'}`)
    t.notOk(existsSync(join(state, 'done')), 'not disarmed')

    inj.mend?.(h.root)
    const callsBefore = h.calls().length
    const again = h.run('finish', inj.retryEnv)
    t.equal(again.status, 0, again.out)
    t.ok(existsSync(join(state, 'done')), 'disarmed after the retry')
    t.notOk(existsSync(join(state, 'failed')))
    const retried = h.calls().slice(callsBefore)
    // steps already recorded are not run again
    if (at > STEPS.indexOf('load-images'))
      t.notOk(
        retried.some((c) => c.includes('containers-storage:')),
        'images not loaded again',
      )
    if (at > STEPS.indexOf('trust-ca'))
      t.notOk(
        retried.some((c) => c.startsWith('update-ca-trust')),
        'CA not re-trusted',
      )
    if (at > STEPS.indexOf('start-registry'))
      t.notOk(
        retried.some((c) => /^systemctl (start|reset-failed)/.test(c)),
        'registry not started again',
      )
    if (at > STEPS.indexOf('open-registry'))
      t.notOk(
        retried.some((c) => c.startsWith('systemctl')),
        'registry not restarted',
      )
    if (inj.step === 'open-registry') t.ok(retried.includes('systemctl restart quay-app.service'), 'Quay restarted with its open unit')
    if (at > STEPS.indexOf('init-user'))
      t.notOk(
        retried.some((c) => c.includes('initialize')),
        'user not created again',
      )
    if (inj.step === 'push-content') {
      t.notOk(
        retried.some((c) => c.includes('release1')),
        'the image pushed before the failure is not pushed again',
      )
      t.ok(
        retried.some((c) => c.startsWith('skopeo copy') && c.includes('release2')),
        'the failed one is',
      )
    }
    t.match(
      readFileSync(join(h.root, 'etc/motd.d/mirror-appliance'), 'utf8'),
      /^mirror-appliance registry/,
      'ready message replaces the failure',
    )
  })
}

// ---- Quay's init user before its port opens (issue 18 point 4) ----------
// What this proves is the order on the host, against recording fakes: a real
// Quay cannot run here (no Quay image can be had offline), so that Quay
// answers /api/v1/user/initialize on the loopback address is not proven.
const LIVE_QUAY = 'etc/containers/systemd/quay-app.container'
const OPEN_QUAY = 'etc/mirror-appliance/open-units/quay-app.container'

t.test(
  'quay: the init user is made through loopback while Quay publishes on 127.0.0.1 only; then its open unit, a restart, health, and only then ready',
  async (t) => {
    const h = harness(t, 'quay', 1)
    t.match(readFileSync(join(h.root, LIVE_QUAY), 'utf8'), /^PublishPort=127\.0\.0\.1:8443:8443$/m, 'installed: loopback only')
    t.match(readFileSync(join(h.root, OPEN_QUAY), 'utf8'), /^PublishPort=8443:8443$/m, 'the open unit waits beside')
    const r = h.run('finish', { FAKE_WATCH: join(h.root, LIVE_QUAY) })
    t.equal(r.status, 0, r.out)
    // each call, with what the live unit published at that moment
    const watch = readFileSync(`${h.log}.watch`, 'utf8').split('\n').filter(Boolean)
    const find = (re: RegExp, after = -1) => watch.findIndex((l, i) => i > after && re.test(l))
    const init = find(
      /^curl .* --resolve registry\.lab\.example:8443:127\.0\.0\.1 .*https:\/\/registry\.lab\.example:8443\/api\/v1\/user\/initialize \| /,
    )
    t.ok(init >= 0, 'the initialize request went to the registry name pinned to 127.0.0.1 (TLS still checks that name)')
    t.match(watch[init], /\| PublishPort=127\.0\.0\.1:8443:8443 $/, 'and Quay published on loopback only then')
    const reload = find(/^systemctl daemon-reload \|/, init)
    const restart = find(/^systemctl restart quay-app\.service \|/, init)
    const health = find(/^curl .*\/health\/instance \|/, restart)
    const push = find(/^skopeo copy --quiet --all /)
    t.ok(
      init < reload && reload < restart && restart < health && health < push,
      `initialize ${init} < daemon-reload ${reload} < restart ${restart} < health ${health} < first push ${push}`,
    )
    t.match(watch[reload], /\| PublishPort=8443:8443 $/, 'the open unit is in place before systemd reloads')
    t.notOk(
      watch.some((l) => /^systemctl restart quay-redis/.test(l)),
      'Redis is not restarted',
    )
    t.equal(readFileSync(join(h.root, LIVE_QUAY), 'utf8'), readFileSync(join(h.root, OPEN_QUAY), 'utf8'), 'the live unit is the open one')
    t.equal(statSync(join(h.root, LIVE_QUAY)).mode & 0o777, 0o644)
    const said = r.out.split('\n')
    const line = (re: RegExp) => said.findIndex((l) => re.test(l))
    t.ok(
      line(/created Quay user init/) < line(/quay-app\.service: publishing the registry port on every address/),
      'said: user first, then the port',
    )
    const lastHealthy = said
      .map((l) => /healthy: https:\/\/registry\.lab\.example:8443\/health\/instance answered 200/.test(l))
      .lastIndexOf(true)
    t.ok(line(/publishing the registry port/) < lastHealthy, 'healthy again after the port opened')
    t.equal(
      line(/done: the registry https:\/\/registry\.lab\.example:8443 is ready/),
      said.filter(Boolean).length - 1,
      'ready is the last word',
    )
    // a run after it: nothing
    const n = h.calls().length
    const again = h.run('finish')
    t.equal(again.status, 0)
    t.match(again.out, /already done/)
    t.equal(h.calls().length, n, 'a re-run calls no tool')
  },
)

t.test(
  'quay: open-registry run again with Quay initialized and open (a power cut before it was recorded): only a health check',
  async (t) => {
    const h = harness(t, 'quay', 0)
    t.equal(h.run('finish').status, 0)
    for (const f of ['open-registry.done', 'push-content.done', 'install-handoff.done', 'write-credentials.done', 'motd.done', 'done'])
      rmSync(join(h.root, FB_STATE, f), { force: true })
    const unit = statSync(join(h.root, LIVE_QUAY))
    const n = h.calls().length
    const r = h.run('finish')
    t.equal(r.status, 0, r.out)
    const calls = h.calls().slice(n)
    t.notOk(
      calls.some((c) => c.includes('initialize')),
      'no second initialize',
    )
    t.notOk(
      calls.some((c) => /^systemctl (daemon-reload|restart|start)/.test(c)),
      'no reload, no restart',
    )
    t.ok(
      calls.some((c) => /^curl .*\/health\/instance$/.test(c)),
      'health checked',
    )
    t.equal(statSync(join(h.root, LIVE_QUAY)).ino, unit.ino, 'the unit file untouched')
    // the same, but systemd still runs the loopback unit (its reload failed before): reloaded and restarted
    rmSync(join(h.root, FB_STATE, 'open-registry.done'))
    rmSync(join(h.root, FB_STATE, 'done'))
    const m = h.calls().length
    t.equal(h.run('finish', { FAKE_NEED_RELOAD: 'yes' }).status, 0)
    t.same(
      h
        .calls()
        .slice(m)
        .filter((c) => c.startsWith('systemctl')),
      [
        'systemctl is-active --quiet quay-app.service',
        'systemctl show -p NeedDaemonReload --value quay-app.service',
        'systemctl daemon-reload',
        'systemctl restart quay-app.service',
      ],
    )
  },
)

t.test('distribution: published from the start; open-registry has nothing to do', async (t) => {
  const h = harness(t, 'distribution', 0)
  t.match(readFileSync(join(h.root, 'etc/containers/systemd/registry.container'), 'utf8'), /^PublishPort=8443:5000$/m)
  const r = h.run('finish')
  t.equal(r.status, 0, r.out)
  t.notOk(
    h.calls().some((c) => /^systemctl (restart|is-active|show)/.test(c)),
    'no unit switched, none restarted',
  )
  t.ok(existsSync(join(h.root, FB_STATE, 'open-registry.done')), 'the step is recorded all the same')
})

t.test('a lost /etc/hosts line is put back on the next boot, though later steps are recorded (power cut during load-images)', async (t) => {
  const h = harness(t, 'quay', 0)
  const first = h.run('finish', { FAKE_FAIL: '^skopeo copy .*containers-storage:' })
  t.not(first.status, 0)
  t.match(readFileSync(join(h.root, 'etc/hosts'), 'utf8'), /registry\.lab\.example/, 'the first boot added the name')
  t.ok(existsSync(join(h.root, FB_STATE, 'verify-payload.done')), 'a later step is recorded')
  t.notOk(existsSync(join(h.root, FB_STATE, 'resolve-self.done')), 'resolve-self leaves no record to outlive its effect')
  // the power cut lost the unflushed line
  writeFileSync(join(h.root, 'etc/hosts'), '127.0.0.1 localhost\n')
  const again = h.run('finish')
  t.equal(again.status, 0, again.out)
  t.match(readFileSync(join(h.root, 'etc/hosts'), 'utf8'), /^127\.0\.0\.1 registry\.lab\.example registry$/m, 'put back')
})

t.test('health and login checks pin the registry name to loopback: they do not depend on name resolution', async (t) => {
  const h = harness(t, 'distribution', 0)
  t.equal(h.run('finish').status, 0)
  const curls = h.calls().filter((c) => c.startsWith('curl '))
  t.ok(curls.length >= 2)
  for (const c of curls) t.match(c, / --resolve registry\.lab\.example:8443:127\.0\.0\.1 /, c)
})

t.test('Quay already initialized (power cut after the API call): resume checks the login instead', async (t) => {
  const h = harness(t, 'quay', 0)
  const r = h.run('finish', { FAKE_INIT_CODE: '400' })
  t.equal(r.status, 0, r.out)
  t.match(r.out, /exists already and can log in/)
  t.ok(h.calls().some((c) => c.includes('/v2/auth?service=registry.lab.example:8443&account=init')))
  t.notOk(existsSync(join(h.root, 'etc/mirror-appliance/quay-initialize.json')), 'the initialize request is deleted here too')
})

t.test('the initialize request already deleted (power cut before the step was recorded): no API call, the login is checked', async (t) => {
  const h = harness(t, 'quay', 0)
  t.equal(h.run('prepare').status, 0)
  rmSync(join(h.root, 'etc/mirror-appliance/quay-initialize.json'))
  const r = h.run('finish')
  t.equal(r.status, 0, r.out)
  t.match(r.out, /exists already and can log in/)
  t.notOk(
    h.calls().some((c) => c.includes('/api/v1/user/initialize')),
    'no initialize call without the request',
  )
  const bad = harness(t, 'quay', 0)
  t.equal(bad.run('prepare').status, 0)
  rmSync(join(bad.root, 'etc/mirror-appliance/quay-initialize.json'))
  const f = bad.run('finish', { FAKE_FAIL: '^curl .*/v2/auth' })
  t.not(f.status, 0)
  t.match(f.out, /initialize request is gone \(used by an earlier run\) and the login of init does not work/)
})

t.test('a pushed image whose digest differs fails the push', async (t) => {
  const h = harness(t, 'quay', 1)
  const tsv = join(h.root, 'var/lib/mirror-appliance/payload/images.tsv')
  writeFileSync(tsv, readFileSync(tsv, 'utf8').replace(/(content\t[^\t]+\tsha256:)[a-f0-9]{64}/, `$1${'0'.repeat(64)}`))
  const sums = join(h.root, 'var/lib/mirror-appliance/payload/SHA256SUMS')
  writeFileSync(sums, readFileSync(sums, 'utf8').replace(/^[a-f0-9]{64}  images\.tsv$/m, `${sha(readFileSync(tsv, 'utf8'))}  images.tsv`))
  const r = h.run('finish')
  t.not(r.status, 0)
  t.match(r.out, /has digest sha256:[a-f0-9]{64} after the push, expected sha256:0{64}/)
})

t.test('usage error without a phase', async (t) => {
  const h = harness(t, 'quay', 0)
  const r = h.run('')
  t.not(r.status, 0)
  t.match(r.out, /usage: firstboot prepare\|finish/)
})

// ---- scrub-kickstart (issue 18 point 3) ----------------------------------
// What Anaconda leaves in the installed system, emulated: /root/original-ks.cfg
// is the kickstart it was given; /root/anaconda-ks.cfg the one it regenerates
// (pykickstart writes the %post bodies verbatim; emulated as the same text
// under another first line); each chroot %post body as /tmp/ks-script-XXXXXXXX
// (pyanaconda/kickstart.py AnacondaKSScript.run: mkstemp("", "ks-script-",
// sysroot + "/tmp"), mode 0700). A foreign script (another install's, or
// another %post) must stay.
const kickstarts: Record<string, string> = {}
function kickstartOf(flavor: string): string {
  if (!kickstarts[flavor]) {
    const loaded = loadConfigText(
      `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda } }
registry: { flavor: ${flavor}, port: 8443 }
`,
      'fb.yaml',
      { baseDir: '/tmp' },
    )
    kickstarts[flavor] = renderKickstart(planAppliance(loaded, { epoch: 1_700_000_000, seed: 'firstboot' }).plan, {
      source: 'oemdrv',
      payloadLabel: 'OEMDRV',
    })
  }
  return kickstarts[flavor]!
}
/** the host-spec %post of a kickstart: [header line, body lines] */
function hostSpecPost(ks: string): { header: string; body: string } {
  const at = ks.indexOf(HOSTSPEC_BEGIN + '\n')
  const start = ks.lastIndexOf('\n%post', at) + 1
  const end = ks.indexOf('\n%end\n', at)
  const header = ks.slice(start, ks.indexOf('\n', start))
  return { header, body: ks.slice(start + header.length + 1, end + 1) }
}
function anacondaLeftovers(root: string, flavor: string) {
  const ks = kickstartOf(flavor)
  mkdirSync(join(root, 'root'), { recursive: true })
  mkdirSync(join(root, 'tmp'), { recursive: true })
  writeFileSync(join(root, 'root/original-ks.cfg'), ks, { mode: 0o600 })
  writeFileSync(join(root, 'root/anaconda-ks.cfg'), '# Generated by Anaconda 33.16.9.4\n' + ks, { mode: 0o600 })
  writeFileSync(join(root, 'tmp/ks-script-k3x9_a1q'), hostSpecPost(ks).body, { mode: 0o700 })
  writeFileSync(join(root, 'tmp/ks-script-other123'), 'echo another install\n', { mode: 0o700 })
}

t.test("scrub-kickstart: the host-spec %post leaves Anaconda's copies; the rest of them stays as it was", async (t) => {
  const h = harness(t, 'quay', 0)
  anacondaLeftovers(h.root, 'quay')
  const ks = kickstartOf('quay')
  const { header, body } = hostSpecPost(ks)
  const { plan } = planAppliance(
    loadConfigText(
      `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda } }
registry: { flavor: quay, port: 8443 }
`,
      'fb.yaml',
      { baseDir: '/tmp' },
    ),
    { epoch: 1_700_000_000, seed: 'firstboot' },
  )
  const secretFiles = spec('quay').host.files.filter((f) => f.secret)
  t.ok(secretFiles.length >= 3, 'the host spec has secret files')
  t.ok(
    secretFiles.every((f) => body.includes(`'${f.path}'`)),
    'the %post the kickstart carries writes them',
  )
  const r = h.run('prepare')
  t.equal(r.status, 0, r.out)
  t.notOk(existsSync(join(h.root, 'tmp/ks-script-k3x9_a1q')), 'the script copy of the host-spec %post is removed')
  t.ok(existsSync(join(h.root, 'tmp/ks-script-other123')), 'another script is not ours: kept')
  for (const [name, prefix] of [
    ['original-ks.cfg', ''],
    ['anaconda-ks.cfg', '# Generated by Anaconda 33.16.9.4\n'],
  ] as const) {
    const f = join(h.root, 'root', name)
    const now = readFileSync(f, 'utf8')
    t.equal(mode(f), 0o600, `${name} keeps its mode`)
    const at = now.indexOf(header + '\n')
    t.ok(at > 0, `${name} keeps the section header`)
    t.equal(now.slice(0, at), prefix + ks.slice(0, ks.indexOf(header + '\n')), `${name}: everything before the section as it was`)
    const rest = now.slice(at + header.length + 1)
    const end = rest.indexOf('%end\n')
    t.equal(rest.slice(end), ks.slice(ks.indexOf(body) + body.length), `${name}: everything after the section as it was`)
    const comment = rest.slice(0, end)
    t.match(comment, /^# mirror-appliance first boot \(step scrub-kickstart\) removed the body of\n/, 'a comment says what happened')
    t.ok(
      comment
        .split('\n')
        .filter(Boolean)
        .every((l) => l.startsWith('#')),
      'the body is comments only',
    )
    for (const f of secretFiles) t.ok(comment.includes(`\n#   '${f.path}'\n`), `and says where ${f.path} went`)
    // no secret in any form: plain, or as the base64 the section carried
    for (const s of [
      plan.secrets.initPassword,
      plan.secrets.redisPassword,
      plan.secrets.quaySecretKey,
      'MIRROR_APPLIANCE_B64',
      HOSTSPEC_BEGIN,
    ])
      t.notOk(now.includes(s), `${name} holds no ${s.slice(0, 12)}…`)
    const b64 = body.split('\n').filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l))
    t.ok(b64.length > 10, 'the section held base64 lines')
    t.notOk(
      b64.some((l) => now.includes(l)),
      `${name} keeps none of them`,
    )
  }
  t.match(r.out, /removed 1 copy\(ies\) of the host-spec %post/)
  // the step again (its record removed): nothing left to change
  const before = ['original-ks.cfg', 'anaconda-ks.cfg'].map((n) => readFileSync(join(h.root, 'root', n), 'utf8'))
  rmSync(join(h.root, FB_STATE, 'scrub-kickstart.done'))
  t.equal(h.run('prepare').status, 0)
  t.same(
    ['original-ks.cfg', 'anaconda-ks.cfg'].map((n) => readFileSync(join(h.root, 'root', n), 'utf8')),
    before,
    'a second run changes nothing',
  )
})

t.test('scrub-kickstart: no kickstart copies (a bundle install, or a qcow2 built without Anaconda): nothing to do, recorded', async (t) => {
  const h = harness(t, 'distribution', 0)
  mkdirSync(join(h.root, 'root'), { recursive: true })
  mkdirSync(join(h.root, 'tmp'), { recursive: true })
  // a host's own kickstart, from its own install: not ours, left alone
  writeFileSync(join(h.root, 'root/anaconda-ks.cfg'), '%post\necho their own\n%end\n', { mode: 0o600 })
  const r = h.run('prepare')
  t.equal(r.status, 0, r.out)
  t.ok(existsSync(join(h.root, FB_STATE, 'scrub-kickstart.done')))
  t.equal(readFileSync(join(h.root, 'root/anaconda-ks.cfg'), 'utf8'), '%post\necho their own\n%end\n')
  t.notOk(existsSync(join(h.root, 'root/original-ks.cfg')))
})

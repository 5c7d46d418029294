// registry.storage: the config checks (schema and rules, at the right
// field), the key files read at build time, what each flavor gets (Quay's
// RadosGWStorage / S3Storage arguments as quay/quay storage/cloud.py takes
// them, distribution's storage.s3), where the keys end up on the host and
// that the kickstart never carries them in clear, and the first-boot script
// with the preflight step (bash -n, shellcheck, order).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ConfigError } from '../builder/config/diagnostics.js'
import { loadConfigText } from '../builder/config/load.js'
import { UserError } from '../builder/errors.js'
import { planAppliance } from '../builder/plan/plan.js'
import type { Plan } from '../builder/plan/types.js'
import { PREFLIGHT_SCRIPT, STORAGE_CA_FILE, STORAGE_ENV_FILE } from '../builder/registry/storage.js'
import { renderKickstart } from '../builder/render/kickstart.js'
import { selfSignedCa } from './helpers/openssl.js'

const dir = mkdtempSync(join(tmpdir(), 'storage-config-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const ACCESS = 'AKIAEXAMPLEACCESS123'
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
writeFileSync(join(dir, 'access'), ACCESS + '\n')
writeFileSync(join(dir, 'secret'), SECRET)
writeFileSync(join(dir, 'two-lines'), 'AKIA\nMORE\n')
writeFileSync(join(dir, 'spaces'), 'AKIA KEY\n')
writeFileSync(join(dir, 'empty'), '\n')
writeFileSync(join(dir, 'not-a-ca.pem'), 'hello\n')
selfSignedCa({ key: join(dir, 'ca.key'), cert: join(dir, 'ca.pem'), subject: '/CN=storage test CA', days: 2 })

const yaml = (flavor: string, storage: string) => `apiVersion: mirror-appliance/v1
host: { hostname: site1.lab.example, disk: { device: vda } }
registry:
  flavor: ${flavor}
  storage:
${storage}`
const load = (text: string) => loadConfigText(text, join(dir, 'appliance.yaml'), { baseDir: dir })
const plan = (text: string) => planAppliance(load(text), { epoch: 1_700_000_000, seed: 'storage' }).plan
const CEPH = `    type: s3
    endpoint: https://rgw.lab.example:8443
    bucket: mirror
    accessKeyFile: access
    secretKeyFile: secret
    caFile: ca.pem`

function refused(fn: () => unknown): ConfigError | UserError {
  try {
    fn()
  } catch (e) {
    if (e instanceof UserError) return e
    throw e
  }
  throw new Error('not refused')
}

t.test('config: what is wrong, at the field', async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      's3 without bucket and keys',
      '    type: s3\n    endpoint: https://rgw.lab.example',
      /type s3 needs "bucket"[\s\S]*type s3 needs "accessKeyFile"[\s\S]*type s3 needs "secretKeyFile"/,
    ],
    [
      'local with an endpoint',
      '    type: local\n    endpoint: https://rgw.lab.example',
      /registry\.storage\.endpoint[\s\S]*only used with "type: s3"/,
    ],
    [
      'endpoint with a path',
      '    type: s3\n    endpoint: https://rgw.lab.example/bucket\n    bucket: mirror\n    accessKeyFile: a\n    secretKeyFile: s',
      /registry\.storage\.endpoint: "https:\/\/rgw\.lab\.example\/bucket" is not valid/,
    ],
    [
      'bad bucket name',
      '    type: s3\n    endpoint: https://rgw.lab.example\n    bucket: My_Bucket\n    accessKeyFile: a\n    secretKeyFile: s',
      /registry\.storage\.bucket: "My_Bucket" is not valid/,
    ],
    [
      'caFile with http',
      '    type: s3\n    endpoint: http://rgw.lab.example\n    bucket: mirror\n    accessKeyFile: a\n    secretKeyFile: s\n    caFile: ca.pem',
      /registry\.storage\.caFile[\s\S]*only used with an https:\/\/ endpoint/,
    ],
    [
      'a key in the config',
      '    type: s3\n    endpoint: https://rgw.lab.example\n    bucket: mirror\n    accessKey: AKIA',
      /registry\.storage\.accessKey: unknown field "accessKey"/,
    ],
  ]
  for (const [what, storage, message] of cases) {
    const e = refused(() => load(yaml('distribution', storage)))
    t.ok(e instanceof ConfigError, `${what}: a config error`)
    t.match(e.message, message, what)
  }
  const http = load(
    yaml(
      'distribution',
      '    type: s3\n    endpoint: http://rgw.lab.example:7480\n    bucket: mirror\n    accessKeyFile: access\n    secretKeyFile: secret',
    ),
  )
  t.match(http.warnings.map((w) => w.message).join('\n'), /plain http/, 'plain http works, with a warning')
  t.equal(http.config.registry.storage?.prefix, 'site1.lab.example', 'prefix defaults to the hostname (hosts can share a bucket)')
  t.equal(http.config.registry.storage?.region, 'us-east-1')
  const aws = load(
    yaml(
      'quay',
      '    type: s3\n    endpoint: https://s3.eu-west-1.amazonaws.com\n    bucket: mirror\n    accessKeyFile: access\n    secretKeyFile: secret',
    ),
  )
  t.equal(aws.config.registry.storage?.region, 'eu-west-1', 'region from an AWS endpoint')
  t.notOk(load(yaml('quay', '    type: local')).config.registry.storage, 'type local: no storage entry (the disk)')
})

t.test('key files: read at build time, refused with the field named', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['missing file', 'accessKeyFile: nope', /registry\.storage\.accessKeyFile: cannot read .*nope: ENOENT/],
    ['two lines', 'accessKeyFile: two-lines', /registry\.storage\.accessKeyFile .*one line of printable ASCII/],
    ['spaces', 'accessKeyFile: spaces', /registry\.storage\.accessKeyFile .*without spaces/],
    ['empty', 'accessKeyFile: empty', /registry\.storage\.accessKeyFile .*the file is empty/],
    ['bad CA', 'accessKeyFile: access\n    caFile: not-a-ca.pem', /registry\.storage\.caFile .*no PEM certificate/],
  ]
  for (const [what, field, message] of cases) {
    const e = refused(() =>
      plan(
        yaml(
          'distribution',
          `    type: s3\n    endpoint: https://rgw.lab.example\n    bucket: mirror\n    secretKeyFile: secret\n    ${field}`,
        ),
      ),
    )
    t.match(e.message, message, what)
  }
})

t.test('quay: RadosGWStorage for an S3-compatible store, keys only in 0640 config.yaml and 0600 storage.env', async (t) => {
  const p = plan(yaml('quay', CEPH))
  const f = (path: string) => p.host.files.find((x) => x.path === path)
  const config = f('/var/lib/mirror-registry/quay-config/config.yaml')!
  const q = parse(String(config.contents))
  t.same(q.DISTRIBUTED_STORAGE_CONFIG, {
    default: [
      'RadosGWStorage',
      {
        hostname: 'rgw.lab.example',
        is_secure: true,
        port: 8443,
        bucket_name: 'mirror',
        storage_path: '/site1.lab.example',
        access_key: ACCESS,
        secret_key: SECRET,
      },
    ],
  })
  t.same(q.DISTRIBUTED_STORAGE_PREFERENCE, ['default'])
  t.equal(config.mode, 0o640, 'config.yaml 0640 (Quay reads its keys from it)')
  t.equal(config.owner, '1001', "owned by Quay's uid")
  t.ok(config.secret)
  t.match(
    String(f('/var/lib/mirror-registry/quay-config/extra_ca_certs/storage-ca.crt')?.contents),
    /BEGIN CERTIFICATE/,
    "the storage CA among Quay's extra CAs",
  )
  const unit = String(f('/etc/containers/systemd/quay-app.container')!.contents)
  t.match(unit, 'Environment=AWS_CA_BUNDLE=/quay-registry/conf/stack/extra_ca_certs/storage-ca.crt', 'boto3 trusts the storage CA')
  const env = f(STORAGE_ENV_FILE)!
  t.equal(env.mode, 0o600)
  t.ok(env.secret)
  t.match(String(env.contents), `REGISTRY_STORAGE_S3_SECRETKEY=${SECRET}\n`)
  t.match(String(env.contents), `MA_S3_CA_FILE=${STORAGE_CA_FILE}\n`)
  t.equal(f(PREFLIGHT_SCRIPT)?.mode, 0o755)

  // the kickstart: no key in clear anywhere in its text
  for (const source of ['oemdrv', 'cdrom'] as const) {
    const ks = renderKickstart(p, { source })
    t.notOk(ks.includes(SECRET), `${source} ks.cfg has no secret key in clear`)
    t.notOk(ks.includes(ACCESS), `${source} ks.cfg has no access key in clear`)
  }
})

t.test('quay: S3Storage for AWS', async (t) => {
  const p = plan(
    yaml(
      'quay',
      '    type: s3\n    endpoint: https://s3.eu-west-1.amazonaws.com\n    bucket: mirror-prod\n    prefix: registry/site1\n    accessKeyFile: access\n    secretKeyFile: secret',
    ),
  )
  const q = parse(String(p.host.files.find((x) => x.path.endsWith('quay-config/config.yaml'))!.contents))
  t.same(q.DISTRIBUTED_STORAGE_CONFIG.default, [
    'S3Storage',
    {
      host: 's3.eu-west-1.amazonaws.com',
      s3_bucket: 'mirror-prod',
      storage_path: '/registry/site1',
      s3_access_key: ACCESS,
      s3_secret_key: SECRET,
    },
  ])
  t.notOk(
    p.host.files.some((x) => x.path === STORAGE_CA_FILE),
    'no CA file without caFile',
  )
  t.match(
    String(p.host.files.find((x) => x.path === STORAGE_ENV_FILE)!.contents),
    'MA_S3_PATH_STYLE=false\n',
    'AWS: virtual-hosted requests',
  )
})

t.test('distribution: storage.s3 without keys; keys and CA reach the container by env file and mount', async (t) => {
  const p = plan(yaml('distribution', CEPH))
  const f = (path: string) => p.host.files.find((x) => x.path === path)
  const cfg = parse(String(f('/var/lib/mirror-registry/registry/config.yml')!.contents))
  t.same(cfg.storage.s3, {
    region: 'us-east-1',
    regionendpoint: 'https://rgw.lab.example:8443',
    bucket: 'mirror',
    secure: true,
    v4auth: true,
    rootdirectory: '/site1.lab.example',
  })
  t.notOk(cfg.storage.filesystem, 'no filesystem driver')
  t.same(cfg.storage.redirect, { disable: true })
  const unit = String(f('/etc/containers/systemd/registry.container')!.contents)
  t.match(unit, `EnvironmentFile=${STORAGE_ENV_FILE}`)
  t.match(unit, 'Environment=SSL_CERT_FILE=/etc/mirror-appliance/storage-ca.crt')
  t.notMatch(unit, '/var/lib/registry', 'no local storage volume')
  t.notOk(
    p.host.dirs.some((d) => d.path.endsWith('/registry/storage')),
    'no local storage dir',
  )

  const aws = plan(
    yaml(
      'distribution',
      '    type: s3\n    endpoint: https://s3.eu-west-1.amazonaws.com\n    bucket: mirror-prod\n    accessKeyFile: access\n    secretKeyFile: secret',
    ),
  )
  const awsCfg = parse(String(aws.host.files.find((x) => x.path.endsWith('registry/config.yml'))!.contents))
  t.same(
    awsCfg.storage.s3,
    { region: 'eu-west-1', bucket: 'mirror-prod', secure: true, v4auth: true, rootdirectory: '/site1.lab.example' },
    'AWS: region only, the SDK finds the endpoint',
  )
})

t.test('first boot: the preflight runs in prepare, after trust-ca, before the registry starts', async (t) => {
  // The static first-boot script picks its steps from the host's facts
  // (host.env): source the real facts and run the script's own step-list lines.
  const prepareSteps = (p: Plan, name: string) => {
    const file = (suffix: string) => String(p.host.files.find((x) => x.path.endsWith(suffix))!.contents)
    const script = file('/libexec/mirror-appliance/firstboot')
    const lines = script.split('\n').filter((l) => /^PREPARE_STEPS=|^\[ -z .*\] \|\| PREPARE_STEPS\+=/.test(l))
    const facts = join(dir, `host-${name}.env`)
    writeFileSync(facts, file('/etc/mirror-appliance/host.env'))
    const r = spawnSync('bash', ['-euc', `. "$1"\n${lines.join('\n')}\necho "\${PREPARE_STEPS[*]}"`, 'steps', facts], { encoding: 'utf8' })
    t.equal(r.status, 0, r.stderr)
    return { script, steps: r.stdout.trim() }
  }
  for (const flavor of ['quay', 'distribution']) {
    const p = plan(yaml(flavor, CEPH))
    const { script, steps } = prepareSteps(p, flavor)
    t.equal(steps, 'scrub-kickstart verify-payload load-images trust-ca storage-preflight', `${flavor}: preflight is the last prepare step`)
    t.match(script, /step_storage_preflight\(\) \{[\s\S]*platform-python[\s\S]*"\$ROOT\$STORAGE_PREFLIGHT" "\$ROOT\$STORAGE_ENV_FILE"/)
    const env = String(p.host.files.find((x) => x.path.endsWith('/etc/mirror-appliance/host.env'))!.contents)
    t.match(
      env,
      /^STORAGE_PREFLIGHT='?\/usr\/local\/libexec\/mirror-appliance\/s3-preflight'?$/m,
      `${flavor}: the facts name the preflight script`,
    )
    t.match(env, /^STORAGE_ENV_FILE='?\/etc\/mirror-appliance\/storage\.env'?$/m, `${flavor}: and its settings file`)
  }
  const local = plan(yaml('distribution', '    type: local'))
  t.equal(prepareSteps(local, 'local').steps.includes('storage-preflight'), false, 'local storage: no preflight')
})

t.test('the preflight script compiles under python3 and has no syntax newer than RHEL 8 platform-python (3.6) reads', async (t) => {
  const p = plan(yaml('distribution', CEPH))
  const src = String(p.host.files.find((x) => x.path === PREFLIGHT_SCRIPT)!.contents)
  t.match(src, /^#!\/usr\/libexec\/platform-python\n/)
  const path = join(dir, 's3-preflight.py')
  writeFileSync(path, src)
  t.equal(spawnSync('python3', ['-m', 'py_compile', path]).status, 0, 'compiles')
  // 3.7+ only: dataclasses, walrus, positional-only params, f-string '=' specifier, ssl.SSLCertVerificationError
  t.notMatch(src, /\bdataclass|:=|\bSSLCertVerificationError\b|from __future__ import annotations/, 'no 3.7+ features')
  const usage = spawnSync('python3', [path], { encoding: 'utf8' })
  t.equal(usage.status, 2)
  t.match(usage.stderr, 'usage: s3-preflight ENV_FILE')
})

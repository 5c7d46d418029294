// End to end against a REAL single-node Ceph (mon + memstore osd + radosgw,
// from Debian's packages, started here; test/helpers/ceph.ts):
//   - Debian's docker-registry (distribution 2.8) runs OUR generated
//     config.yml with registry.storage type s3 on radosgw's https endpoint,
//     trusting the endpoint's private CA the way the generated unit says
//     (SSL_CERT_FILE) and taking the keys from the generated 0600 env file;
//     only the listen address and file paths are rewritten. skopeo pushes a
//     two-arch image with the generated credentials and pulls it back bit
//     for bit, and every blob is in the bucket under the host's prefix
//     (listed with radosgw-admin, not through the registry).
//   - the generated first-boot preflight (python, SigV4) passes against the
//     bucket, and fails with one clear sentence for a wrong secret key, an
//     unknown access key, a missing bucket and an untrusted certificate.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parse, stringify } from 'yaml'
import { loadConfigText } from '../../builder/config/load.js'
import { planAppliance } from '../../builder/plan/plan.js'
import { PREFLIGHT_SCRIPT, STORAGE_CA_FILE, STORAGE_ENV_FILE } from '../../builder/registry/storage.js'
import { cephMissing, startCeph, type TestCeph } from '../helpers/ceph.js'
import { freePort } from '../helpers/net.js'
import { curlStatus, pushAndPullBack, spawnRegistry, waitForRegistry } from '../helpers/registry.js'

const missing = cephMissing()
if (missing) {
  t.plan(0, `skipped: object storage against Ceph: ${missing}`)
} else {
  const dir = mkdtempSync(join(tmpdir(), 'e2e-ceph-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  let ceph: TestCeph
  t.before(async () => {
    ceph = await startCeph({ tls: true })
    t.comment(`ceph (mon + osd + radosgw) answered after ${ceph.startSeconds.toFixed(1)} s`)
    await ceph.createBucket('mirror')
  })
  t.teardown(async () => ceph?.stop())

  /** Plan a distribution appliance whose storage is the Ceph bucket over https. */
  function planWithCeph(name: string, extra = '') {
    const keys = join(dir, name)
    mkdirSync(keys)
    writeFileSync(join(keys, 'access'), ceph.accessKey + '\n')
    writeFileSync(join(keys, 'secret'), ceph.secretKey + '\n')
    writeFileSync(join(keys, 'ca.pem'), ceph.caPem!)
    const loaded = loadConfigText(
      `apiVersion: mirror-appliance/v1
host: { hostname: site1.lab.example, disk: { device: vda } }
registry:
  flavor: distribution
  tls: { extraSANs: [127.0.0.1] }
  storage:
    type: s3
    endpoint: ${ceph.tlsEndpoint}
    bucket: mirror
    accessKeyFile: access
    secretKeyFile: secret
    caFile: ca.pem
${extra}`,
      join(keys, 'appliance.yaml'),
      { baseDir: keys },
    )
    return planAppliance(loaded, { epoch: Math.floor(Date.now() / 1000) - 60, seed: `ceph-${name}` }).plan
  }

  t.test('distribution with our s3 config pushes and pulls through Ceph; blobs are in the bucket', async (t) => {
    const plan = planWithCeph('registry')
    const file = (p: string) => {
      const f = plan.host.files.find((f) => f.path === p)
      if (!f) throw new Error(`host spec has no ${p}`)
      return f
    }
    const D = '/var/lib/mirror-registry/registry'
    const run = join(dir, 'run')
    for (const d of ['certs', 'auth']) mkdirSync(join(run, d), { recursive: true })
    writeFileSync(join(run, 'certs/server.crt'), file(`${D}/certs/server.crt`).contents)
    writeFileSync(join(run, 'certs/server.key'), file(`${D}/certs/server.key`).contents, { mode: 0o600 })
    writeFileSync(join(run, 'auth/htpasswd'), file(`${D}/auth/htpasswd`).contents, { mode: 0o600 })
    writeFileSync(join(run, 'storage-ca.crt'), file(STORAGE_CA_FILE).contents)

    // The keys live in the 0600 env file only, not in config.yml.
    const envFile = file(STORAGE_ENV_FILE)
    t.equal(envFile.mode, 0o600, 'storage.env is 0600')
    t.ok(envFile.secret, 'storage.env is marked secret')
    const configYml = String(file(`${D}/config.yml`).contents)
    t.notMatch(configYml, ceph.secretKey, 'config.yml has no secret key')
    t.notMatch(configYml, ceph.accessKey, 'config.yml has no access key')

    // The container's environment, as the generated unit sets it.
    const unit = String(file('/etc/containers/systemd/registry.container').contents)
    t.match(unit, `EnvironmentFile=${STORAGE_ENV_FILE}`, 'the unit reads the env file')
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' }
    for (const line of String(envFile.contents).split('\n').filter(Boolean)) {
      const i = line.indexOf('=')
      env[line.slice(0, i)] = line.slice(i + 1)
    }
    for (const m of unit.matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)) env[m[1]!] = m[2]!
    // container path of the mounted CA -> the file here
    t.equal(env.SSL_CERT_FILE, '/etc/mirror-appliance/storage-ca.crt', 'Go trusts the storage CA through SSL_CERT_FILE')
    t.match(unit, `Volume=${STORAGE_CA_FILE}:/etc/mirror-appliance/storage-ca.crt:ro,Z`, 'the CA is mounted where SSL_CERT_FILE points')
    env.SSL_CERT_FILE = join(run, 'storage-ca.crt')
    t.notOk('AWS_CA_BUNDLE' in env, 'no AWS_CA_BUNDLE (it makes the s3 driver panic)')

    const port = await freePort()
    const addr = `127.0.0.1:${port}`
    const cfg = parse(configYml)
    const original = structuredClone(cfg)
    cfg.http.addr = addr
    cfg.http.tls.certificate = join(run, 'certs/server.crt')
    cfg.http.tls.key = join(run, 'certs/server.key')
    cfg.auth.htpasswd.path = join(run, 'auth/htpasswd')
    const rewritten = structuredClone(cfg)
    for (const c of [original, rewritten]) {
      delete c.http.addr
      delete c.http.tls.certificate
      delete c.http.tls.key
      delete c.auth.htpasswd.path
    }
    t.same(rewritten, original, 'nothing but address and paths rewritten')
    t.same(
      cfg.storage.s3,
      {
        region: 'us-east-1',
        regionendpoint: ceph.tlsEndpoint,
        bucket: 'mirror',
        secure: true,
        v4auth: true,
        rootdirectory: '/site1.lab.example',
      },
      'storage.s3 as generated',
    )
    t.equal(cfg.storage.redirect?.disable, true, 'blobs are served through the registry, not redirected to the store')
    writeFileSync(join(run, 'config.yml'), stringify(cfg))

    const reg = spawnRegistry(join(run, 'config.yml'), env)
    t.teardown(() => reg.stop())
    const caPem = join(run, 'ca.pem')
    writeFileSync(caPem, plan.pki.caCertPem)
    await waitForRegistry(reg, () => curlStatus(`https://${addr}/v2/`, caPem) === '401')
    const code = curlStatus(`https://${addr}/v2/`, caPem)
    t.equal(code, '401', code === '401' ? 'registry up on s3 storage' : `registry up on s3 storage (log: ${reg.log().slice(-2000)})`)

    const caDir = join(run, 'ca-dir')
    mkdirSync(caDir)
    writeFileSync(join(caDir, 'ca.crt'), plan.pki.caCertPem)
    const creds = `init:${plan.secrets.initPassword}`
    const { blobs: want } = await pushAndPullBack(t, { addr, caDir, creds, workDir: run, log: reg.log })

    // In the bucket, under the host's prefix, as distribution lays blobs out.
    const objects = ceph.listObjects('mirror')
    for (const b of want) {
      const hex = b.digest.slice(7)
      t.ok(
        objects.includes(`site1.lab.example/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`),
        `blob ${b.digest.slice(0, 19)} stored in the bucket`,
      )
    }
    t.ok(
      objects.some((o) => o.startsWith('site1.lab.example/docker/registry/v2/repositories/ocp/release/_manifests/tags/4.14.1/')),
      'the tag is in the bucket',
    )
  })

  t.test('first-boot preflight (python SigV4 signer) against the bucket', async (t) => {
    const plan = planWithCeph('preflight')
    const root = join(dir, 'root')
    for (const f of plan.host.files.filter((f) => [PREFLIGHT_SCRIPT, STORAGE_ENV_FILE, STORAGE_CA_FILE].includes(f.path))) {
      mkdirSync(dirname(join(root, f.path)), { recursive: true })
      writeFileSync(join(root, f.path), f.contents)
      chmodSync(join(root, f.path), f.mode)
    }
    const envPath = join(root, STORAGE_ENV_FILE)
    const good = readFileSync(envPath, 'utf8')
    const preflight = (envText: string) => {
      writeFileSync(envPath, envText)
      return spawnSync('python3', [join(root, PREFLIGHT_SCRIPT), envPath], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, MA_ROOT: root, MA_S3_RETRIES: '2', MA_S3_RETRY_DELAY: '0.2' },
      })
    }

    const ok = preflight(good)
    t.equal(ok.status, 0, `writable bucket passes: ${ok.stderr}`)
    t.match(ok.stdout, /bucket mirror at https:\/\/127\.0\.0\.1:\d+ is reachable and writable/)
    t.notOk(
      ceph.listObjects('mirror').some((o) => o.includes('.mirror-appliance-preflight/')),
      'the probe object is deleted again',
    )

    const cases: [string, string, RegExp][] = [
      [
        'wrong secret key',
        good.replace(/^(REGISTRY_STORAGE_S3_SECRETKEY=).*$/m, '$1not-the-secret'),
        /the secret key does not match the access key MAEXAMPLEACCESSKEY01 .*check registry\.storage\.secretKeyFile/,
      ],
      [
        'unknown access key',
        good.replace(/^(REGISTRY_STORAGE_S3_ACCESSKEY=).*$/m, '$1NOSUCHKEY'),
        /does not know the access key NOSUCHKEY .*check registry\.storage\.accessKeyFile/,
      ],
      [
        'missing bucket',
        good.replace(/^(MA_S3_BUCKET=).*$/m, '$1no-such-bucket'),
        /bucket no-such-bucket at https:\/\/\S+ does not exist: create it first/,
      ],
      [
        'CA not given',
        good.replace(/^MA_S3_CA_FILE=.*\n/m, ''),
        /TLS certificate of https:\/\/\S+ is not trusted .*set registry\.storage\.caFile/,
      ],
      [
        'endpoint down',
        good.replace(/^(MA_S3_ENDPOINT=https:\/\/127\.0\.0\.1:)\d+$/m, '$11'),
        /cannot reach the object store at https:\/\/127\.0\.0\.1:1 after 2 tries/,
      ],
    ]
    for (const [what, env, message] of cases) {
      const r = preflight(env)
      t.equal(r.status, 1, `${what}: exit 1`)
      t.match(r.stderr, /^mirror-appliance storage preflight: FAILED: /, `${what}: one FAILED line`)
      t.match(r.stderr, message, `${what}: says what is wrong`)
      t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line, no traceback`)
    }
  })
}

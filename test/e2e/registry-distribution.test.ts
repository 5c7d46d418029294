// End to end: Debian's docker-registry (distribution 2.8, the program inside
// registry:2) runs with OUR generated config.yml, certificate, key and
// htpasswd; only the listen address and the file paths are rewritten for a
// plain process on 127.0.0.1. skopeo, trusting only our CA and using the
// generated credentials, pushes an image the way first boot does and pulls it
// back bit for bit; wrong credentials and a foreign CA are refused.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { loadConfigText } from '../../builder/config/load.js'
import { planAppliance } from '../../builder/plan/plan.js'
import { freePort } from '../helpers/net.js'
import { curlStatus, pushAndPullBack, skopeo, spawnRegistry, waitForRegistry } from '../helpers/registry.js'

const dir = mkdtempSync(join(tmpdir(), 'e2e-registry-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const loaded = loadConfigText(
  `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda } }
registry:
  flavor: distribution
  tls: { extraSANs: [127.0.0.1] }
`,
  'e2e.yaml',
  { baseDir: dir },
)
const { plan } = planAppliance(loaded, { epoch: Math.floor(Date.now() / 1000) - 60, seed: 'e2e-registry' })
const file = (p: string) => plan.host.files.find((f) => f.path === p)!.contents
const D = '/var/lib/mirror-registry/registry'

t.test('our registry config serves TLS with our cert and htpasswd auth', async (t) => {
  const port = await freePort()
  const addr = `127.0.0.1:${port}`
  // the generated files, unchanged
  mkdirSync(join(dir, 'certs'))
  mkdirSync(join(dir, 'auth'))
  mkdirSync(join(dir, 'storage'))
  writeFileSync(join(dir, 'certs/server.crt'), file(`${D}/certs/server.crt`))
  writeFileSync(join(dir, 'certs/server.key'), file(`${D}/certs/server.key`), { mode: 0o600 })
  writeFileSync(join(dir, 'auth/htpasswd'), file(`${D}/auth/htpasswd`), { mode: 0o600 })
  // config.yml: only the listen address and paths differ from what the host gets
  const cfg = parse(String(file(`${D}/config.yml`)))
  const original = structuredClone(cfg)
  cfg.http.addr = addr
  cfg.http.tls.certificate = join(dir, 'certs/server.crt')
  cfg.http.tls.key = join(dir, 'certs/server.key')
  cfg.auth.htpasswd.path = join(dir, 'auth/htpasswd')
  cfg.storage.filesystem.rootdirectory = join(dir, 'storage')
  const rewritten = structuredClone(cfg)
  for (const c of [original, rewritten]) {
    delete c.http.addr
    delete c.http.tls.certificate
    delete c.http.tls.key
    delete c.auth.htpasswd.path
    delete c.storage.filesystem.rootdirectory
  }
  t.same(rewritten, original, 'nothing else changed')
  writeFileSync(join(dir, 'config.yml'), stringify(cfg))

  const reg = spawnRegistry(join(dir, 'config.yml'))
  t.teardown(() => reg.stop())

  // CA dirs: ours, and a foreign one
  const caDir = join(dir, 'ca-ours')
  mkdirSync(caDir)
  writeFileSync(join(caDir, 'ca.crt'), plan.pki.caCertPem)
  const foreign = planAppliance(loaded, { epoch: Math.floor(Date.now() / 1000) - 60, seed: 'someone-else' }).plan.pki
  const otherDir = join(dir, 'ca-other')
  mkdirSync(otherDir)
  writeFileSync(join(otherDir, 'ca.crt'), foreign.caCertPem)
  writeFileSync(join(dir, 'ca.pem'), plan.pki.caCertPem)
  writeFileSync(join(dir, 'auth.curl'), file('/etc/mirror-appliance/registry-auth.curl'))

  // ready when /v2/ answers 401: what first boot waits for
  const caPem = join(dir, 'ca.pem')
  await waitForRegistry(reg, () => curlStatus(`https://${addr}/v2/`, caPem) === '401')
  t.equal(curlStatus(`https://${addr}/v2/`, caPem), '401', `registry up, auth required (log: ${reg.log().slice(-2000)})`)
  t.equal(curlStatus(`https://${addr}/v2/`, caPem, ['-K', join(dir, 'auth.curl')]), '200', "first boot's curl auth file logs in")

  // push a two-arch image as first boot does, pull it back bit for bit
  const creds = `init:${plan.secrets.initPassword}`
  const { dest, src } = await pushAndPullBack(t, { addr, caDir, creds, workDir: dir, log: reg.log })

  // refusals
  const wrong = skopeo(['copy', '--dest-cert-dir', caDir, '--dest-creds', 'init:wrong-password', src, `docker://${addr}/ocp/evil:1`])
  // Each refusal: skopeo ran (status 1, not null for a tool that did not run) and says why.
  t.equal(wrong.status, 1, 'wrong password refused')
  t.match(wrong.stderr, /unauthorized|authentication required|401/i)
  const nobody = skopeo(['copy', '--dest-cert-dir', caDir, src, `docker://${addr}/ocp/evil:2`])
  t.equal(nobody.status, 1, 'anonymous push refused')
  t.match(nobody.stderr, /unauthorized|authentication required|401/i)
  const anonPull = skopeo(['inspect', '--raw', '--cert-dir', caDir, dest])
  t.equal(anonPull.status, 1, 'anonymous pull refused')
  t.match(anonPull.stderr, /unauthorized|authentication required|401/i)
  const untrusted = skopeo(['inspect', '--raw', '--cert-dir', otherDir, '--creds', creds, dest])
  t.equal(untrusted.status, 1, 'a foreign CA does not trust our registry')
  t.match(untrusted.stderr, /x509|certificate/i)
})

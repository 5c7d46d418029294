// End to end: Debian's docker-registry (distribution 2.8, the program inside
// registry:2) runs with OUR generated config.yml, certificate, key and
// htpasswd; only the listen address and the file paths are rewritten for a
// plain process on 127.0.0.1. skopeo, trusting only our CA and using the
// generated credentials, pushes an image the way first boot does and pulls it
// back bit for bit; wrong credentials and a foreign CA are refused.
import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { loadConfigText } from '../../builder/config/load.js'
import { planAppliance } from '../../builder/plan/plan.js'
import { sampleImages, writeLayout } from '../helpers/oci-fixtures.js'
import { freePort } from '../helpers/net.js'

const dir = mkdtempSync(join(tmpdir(), 'e2e-registry-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))


const loaded = loadConfigText(`apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda } }
registry:
  flavor: distribution
  tls: { extraSANs: [127.0.0.1] }
`, 'e2e.yaml', { baseDir: dir })
const { plan } = planAppliance(loaded, { epoch: Math.floor(Date.now() / 1000) - 60, seed: 'e2e-registry' })
const file = (p: string) => plan.host.files.find((f) => f.path === p)!.contents
const D = '/var/lib/mirror-registry/registry'

const skopeo = (args: string[]) => spawnSync('skopeo', ['--insecure-policy', ...args], { encoding: 'utf8' })
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

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
    delete c.http.addr; delete c.http.tls.certificate; delete c.http.tls.key; delete c.auth.htpasswd.path; delete c.storage.filesystem.rootdirectory
  }
  t.same(rewritten, original, 'nothing else changed')
  writeFileSync(join(dir, 'config.yml'), stringify(cfg))

  const env = { ...process.env }
  delete env.AWS_CA_BUNDLE // makes distribution's s3 driver panic at start
  let log = ''
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout!.on('data', (d) => (log += d))
  child.stderr!.on('data', (d) => (log += d))
  t.teardown(() => { child.kill('SIGTERM') })

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
  const curl = (args: string[]) => spawnSync('curl', ['-sS', '--cacert', join(dir, 'ca.pem'), '-o', '/dev/null', '-w', '%{http_code}', ...args], { encoding: 'utf8' })
  let code = ''
  for (let i = 0; i < 300 && code !== '401'; i++) {
    code = curl([`https://${addr}/v2/`]).stdout
    if (code !== '401') await new Promise((r) => setTimeout(r, 100))
    if (child.exitCode !== null) break
  }
  t.equal(code, '401', `registry up, auth required (log: ${log.slice(-2000)})`)
  t.equal(curl(['-K', join(dir, 'auth.curl'), `https://${addr}/v2/`]).stdout, '200', 'first boot\'s curl auth file logs in')

  // push a two-arch image as first boot does
  const layout = join(dir, 'oci')
  const imgs = sampleImages()
  await writeLayout(layout, [{ name: 'content/ocp/release:4.14.1', root: imgs.multi, images: [imgs.amd, imgs.arm] }])
  const creds = `init:${plan.secrets.initPassword}`
  const dest = `docker://${addr}/ocp/release:4.14.1`
  const push = skopeo(['copy', '--all', '--preserve-digests', '--dest-cert-dir', caDir, '--dest-creds', creds, `oci:${layout}:content/ocp/release:4.14.1`, dest])
  t.equal(push.status, 0, `push: ${push.stderr}`)

  // the digest check first boot makes: sha256 of `skopeo inspect --raw`
  const raw = spawnSync('skopeo', ['inspect', '--raw', '--cert-dir', caDir, '--creds', creds, dest])
  t.equal(raw.status, 0, String(raw.stderr))
  t.equal(`sha256:${sha(raw.stdout)}`, imgs.multi.digest, 'digest preserved (index pushed as is)')

  // pull back every blob, compare bit for bit
  const back = join(dir, 'back')
  const pull = skopeo(['copy', '--all', '--src-cert-dir', caDir, '--src-creds', creds, dest, `oci:${back}:x`])
  t.equal(pull.status, 0, `pull: ${pull.stderr}`)
  const want = [imgs.multi, imgs.amd.manifest, imgs.amd.config, ...imgs.amd.layers, imgs.arm.manifest, imgs.arm.config, ...imgs.arm.layers]
  const got = new Set(readdirSync(join(back, 'blobs/sha256')))
  for (const b of want) {
    t.ok(got.has(b.digest.slice(7)), `blob ${b.digest.slice(0, 19)} pulled back`)
    t.ok(readFileSync(join(back, 'blobs/sha256', b.digest.slice(7))).equals(b.data), 'same bytes')
  }

  // refusals
  const wrong = skopeo(['copy', '--dest-cert-dir', caDir, '--dest-creds', 'init:wrong-password', `oci:${layout}:content/ocp/release:4.14.1`, `docker://${addr}/ocp/evil:1`])
  t.not(wrong.status, 0, 'wrong password refused')
  t.match(wrong.stderr, /unauthorized|authentication required|401/i)
  const nobody = skopeo(['copy', '--dest-cert-dir', caDir, `oci:${layout}:content/ocp/release:4.14.1`, `docker://${addr}/ocp/evil:2`])
  t.not(nobody.status, 0, 'anonymous push refused')
  const anonPull = skopeo(['inspect', '--raw', '--cert-dir', caDir, dest])
  t.not(anonPull.status, 0, 'anonymous pull refused')
  const untrusted = skopeo(['inspect', '--raw', '--cert-dir', otherDir, '--creds', creds, dest])
  t.not(untrusted.status, 0, 'a foreign CA does not trust our registry')
  t.match(untrusted.stderr, /x509|certificate/i)
})

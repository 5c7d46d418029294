// The host's shell files are static (templates/host/): bash -n and
// shellcheck read them as they are; they share no function (the library
// holds what both scripts do); the one path they know before reading the
// facts is layout.HOST_FACTS. Then the library itself, sourced in bash after
// a real host's facts, against real things: curl to a local HTTPS server
// that serves the plan's own certificate (http_code, wait_health), payload
// directories checked with sha256sum (verify_payload), unit files swapped in
// place (install_open_units), and die.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { factsOf } from '../builder/registry/facts.js'
import { HOST_SCRIPTS } from '../builder/registry/hostspec.js'
import * as L from '../builder/registry/layout.js'
import { REPO_ROOT } from '../builder/render/templates.js'
import { testPlan } from './helpers/bundle-fixture.js'

const HOST_DIR = join(REPO_ROOT, 'templates/host')
const read = (name: string) => readFileSync(join(HOST_DIR, name), 'utf8')
const FILES = ['lib.sh', 'firstboot', 'mirror-registryctl']

t.test('the static files: bash -n, shellcheck, no template syntax, no function twice', async (t) => {
  t.same(HOST_SCRIPTS.map((s) => s.source).sort(), FILES.map((f) => `templates/host/${f}`).sort(), 'the host spec installs these three')
  for (const f of FILES) {
    const n = spawnSync('bash', ['-n', join(HOST_DIR, f)], { encoding: 'utf8' })
    t.equal(n.status, 0, `bash -n ${f}: ${n.stderr}`)
    // no Handlebars expression ({{name …}}, {{#…}}, {{/…}}, {{>…}}); podman's own {{.Client.Version}} is not one
    t.notMatch(read(f), /\{\{[#/>^!~]?\s*[A-Za-z@]/, `${f}: no template syntax`)
  }
  const haveShellcheck = spawnSync('which', ['shellcheck']).status === 0
  t.test('shellcheck -x', { skip: haveShellcheck ? false : 'shellcheck is not installed (.ci/run installs it)' }, async (t) => {
    // -x follows `source=lib.sh` beside the scripts, as the host has them
    const sc = spawnSync('shellcheck', ['-s', 'bash', '-x', ...FILES], { cwd: HOST_DIR, encoding: 'utf8' })
    t.equal(sc.status, 0, `shellcheck clean:\n${sc.stdout}`)
  })
  // each function: its name and its body (a one-line function, or the lines up to a lone "}")
  const functions = (text: string) => {
    const out: { name: string; body: string }[] = []
    const lines = text.split('\n')
    for (let i = 0; i < lines.length; i++) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)\(\) \{(.*)$/.exec(lines[i]!)
      if (!m) continue
      let body = m[2]!
      if (!/\}\s*(#.*)?$/.test(body)) while (++i < lines.length && lines[i] !== '}') body += '\n' + lines[i]
      out.push({ name: m[1]!, body: body.replace(/\s+/g, ' ').trim() })
    }
    return out
  }
  const owners = new Map<string, string[]>()
  const bodies = new Map<string, string[]>()
  for (const f of FILES)
    for (const fn of functions(read(f))) {
      owners.set(fn.name, [...(owners.get(fn.name) ?? []), f])
      if (fn.body.length > 20) bodies.set(fn.body, [...(bodies.get(fn.body) ?? []), `${f}:${fn.name}`])
    }
  t.ok(owners.size > 50, `functions found (${owners.size})`)
  // main: each script's own entry point
  t.same(
    [...owners].filter(([name, fs]) => fs.length > 1 && name !== 'main'),
    [],
    'no function is defined in two of the files',
  )
  t.same(
    [...bodies.values()].filter((where) => where.length > 1),
    [],
    'no function body is written twice',
  )
  for (const fn of [
    'log',
    'die',
    'http_code',
    'wait_health',
    'verify_payload',
    'load_stack_images',
    'push_image',
    'trust_ca',
    'install_open_units',
  ])
    t.same(owners.get(fn), ['lib.sh'], `${fn} lives in the library`)
})

t.test('the scripts find the facts at layout.HOST_FACTS and the library at layout.HOST_LIB', async (t) => {
  t.equal(L.HOST_FACTS, '/etc/mirror-appliance/host.env')
  t.match(read('firstboot'), `\n. "\${MA_ROOT:-}${L.HOST_FACTS}"\n`, 'first boot sources the facts')
  t.match(read('firstboot'), '\n. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"\n', 'and the library beside itself')
  t.equal(dirname(L.HOST_LIB), dirname(L.FIRSTBOOT_SCRIPT), 'which is where the host keeps it')
  t.match(read('mirror-registryctl'), `\nFACTS_FILE=$HOST_TREE${L.HOST_FACTS}\n`, 'mirror-registryctl sources the facts')
  t.match(read('mirror-registryctl'), '\n. "$HOST_TREE$HOST_LIB"\n', 'and the library the facts name')
})

t.test('mirror-registryctl without facts: help works, anything else says where it looked', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ctl-nofacts-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'ctl'), read('mirror-registryctl'))
  const env = { PATH: process.env.PATH!, MA_ROOT: join(dir, 'root') }
  t.equal(spawnSync('bash', [join(dir, 'ctl'), 'help'], { env }).status, 0)
  const st = spawnSync('bash', [join(dir, 'ctl'), 'status'], { env, encoding: 'utf8' })
  t.equal(st.status, 1)
  t.match(
    st.stderr,
    new RegExp(
      `mirror-registryctl: error: cannot read ${dir}/root${L.HOST_FACTS}: run this from an unpacked bundle, or as root on a host it installed`,
    ),
  )
})

// ---- lib.sh sourced after a real host's facts ------------------------------

/** An HTTPS server on 127.0.0.1 with the plan's server certificate; answers from `codes` in turn (the last one repeats). */
async function registryStandIn(cert: string, key: string): Promise<{ server: Server; port: number; codes: number[]; hits: string[] }> {
  const state = { codes: [200], hits: [] as string[] }
  const server = createServer({ cert, key }, (req, res) => {
    state.hits.push(`${req.method} ${req.url} host=${req.headers.host}`)
    const code = state.codes.length > 1 ? state.codes.shift()! : state.codes[0]!
    res.writeHead(code).end()
  })
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()))
  const port = (server.address() as { port: number }).port
  return Object.assign(state, { server, port })
}

/** bash with the facts and lib.sh sourced, run without blocking this process (the server must answer). */
function libBash(
  root: string,
  script: string,
  env: Record<string, string> = {},
): Promise<{ status: number | null; out: string; err: string }> {
  const prelude = `set -Eeuo pipefail; PROG=lib-test; HEALTH_TIMEOUT=\${HT:-5}; POLL_INTERVAL=0.1
. "$MA_ROOT${L.HOST_FACTS}"; . "$MA_ROOT${L.HOST_LIB}"
`
  return new Promise((res) => {
    // stdin not a socket: bash would read ~/.bashrc, taking itself for a remote shell
    const p = spawn('bash', ['-c', prelude + script], {
      env: { PATH: process.env.PATH!, MA_ROOT: root, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (err += d))
    p.on('close', (status) => res({ status, out, err }))
  })
}

t.test('lib.sh: http_code and wait_health through real curl and TLS; verify_payload; install_open_units; die', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'host-lib-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  // a plan for a port only known once a server listens: the server starts with a throwaway certificate's plan
  const first = testPlan({ flavor: 'distribution', epoch: Math.floor(Date.now() / 1000) - 60, seed: 'host-lib-other' })
  const srv = await registryStandIn(first.pki.serverChainPem, first.pki.serverKeyPem)
  t.teardown(() => srv.server.close())
  const plan = testPlan({ flavor: 'distribution', epoch: Math.floor(Date.now() / 1000) - 60, seed: 'host-lib', port: srv.port })
  srv.server.setSecureContext({ cert: plan.pki.serverChainPem, key: plan.pki.serverKeyPem })
  const root = join(base, 'root')
  // the host's facts, library and CA as the host spec lays them down
  for (const f of plan.host.files.filter((x) => [L.HOST_FACTS, L.HOST_LIB, L.CA_ANCHOR].includes(x.path))) {
    mkdirSync(dirname(join(root, f.path)), { recursive: true })
    writeFileSync(join(root, f.path), f.contents)
  }
  const facts = factsOf(plan.host)
  t.equal(facts.health.path, '/v2/')

  // http_code: the registry's name pinned to loopback, the certificate checked for that name against our CA
  let r = await libBash(root, `http_code "https://$REGISTRY_ADDRESS/v2/"`)
  t.equal(r.status, 0, r.err)
  t.equal(r.out, '200', 'curl reached the stand-in by the registry name, through its certificate')
  t.match(srv.hits.at(-1), `GET /v2/ host=registry.lab.example:${srv.port}`)
  t.not(first.pki.caCertPem, plan.pki.caCertPem)
  writeFileSync(join(base, 'other-ca.crt'), first.pki.caCertPem)
  r = await libBash(root, `cp "${join(base, 'other-ca.crt')}" "$ROOT$CA_ANCHOR"; http_code "https://$REGISTRY_ADDRESS/v2/"`)
  t.equal(r.out, '000', 'another CA: nothing answers (TLS refused)')
  writeFileSync(join(root, L.CA_ANCHOR), plan.pki.caCertPem)

  // wait_health: the health code after two failures; a timeout names the last answer
  srv.codes.splice(0, srv.codes.length, 503, 503, facts.health.code)
  r = await libBash(root, 'wait_health')
  t.equal(r.status, 0, r.err)
  t.match(r.out, `lib-test: healthy: https://registry.lab.example:${srv.port}/v2/ answered 401`)
  srv.codes.splice(0, srv.codes.length, 503)
  r = await libBash(root, 'wait_health || echo "status $?"', { HT: '1' })
  t.match(r.out, /status 1/)
  t.match(
    r.err,
    `lib-test: warning: https://registry.lab.example:${srv.port}/v2/ did not answer 401 within 1s (last: 503); see: systemctl status registry.service`,
  )

  // verify_payload: sha256sum's verdict on a payload directory
  const payload = join(base, 'payload')
  mkdirSync(join(payload, 'oci'), { recursive: true })
  writeFileSync(join(payload, 'images.tsv'), 'stack\tstack/s0\tsha256:00\tregistry\t-\n')
  writeFileSync(join(payload, 'oci/index.json'), '{}\n')
  const sum = (p: string) =>
    createHash('sha256')
      .update(readFileSync(join(payload, p)))
      .digest('hex')
  writeFileSync(join(payload, 'SHA256SUMS'), ['images.tsv', 'oci/index.json'].map((p) => `${sum(p)}  ${p}`).join('\n') + '\n')
  r = await libBash(root, `verify_payload "${payload}"`)
  t.equal(r.status, 0, `an intact payload: ${r.out}${r.err}`)
  writeFileSync(join(payload, 'oci/index.json'), '{"damaged": true}\n')
  r = await libBash(root, `verify_payload "${payload}" || echo "status $?"`)
  t.match(r.out, /oci\/index\.json: FAILED/, 'sha256sum names the damaged file')
  t.match(r.out, /status 1/)
  rmSync(join(payload, 'SHA256SUMS'))
  r = await libBash(root, `verify_payload "${payload}" || echo "status $?"`)
  t.match(r.err, `lib-test: warning: no payload at ${payload} (SHA256SUMS missing)`)
  t.match(r.out, /status 1/)

  // install_open_units: each open unit replaces its live file, once
  const live = join(root, 'etc/containers/systemd/app.container')
  const open = join(root, 'etc/mirror-appliance/open-units/app.container')
  mkdirSync(dirname(live), { recursive: true })
  mkdirSync(dirname(open), { recursive: true })
  writeFileSync(live, 'PublishPort=127.0.0.1:8443:8443\n')
  writeFileSync(open, 'PublishPort=8443:8443\n')
  chmodSync(live, 0o600)
  const swap = `OPEN_UNITS=(app.service); OPEN_UNIT_FILES=(/etc/containers/systemd/app.container); OPEN_UNIT_SOURCES=(/etc/mirror-appliance/open-units/app.container)
install_open_units`
  r = await libBash(root, swap)
  t.equal(r.status, 0, r.err)
  t.equal(readFileSync(live, 'utf8'), 'PublishPort=8443:8443\n', 'the live unit publishes on every address now')
  t.equal(statSync(live).mode & 0o777, 0o644, 'as a unit file: 0644')
  t.match(r.out, /app\.service: publishing the registry port on every address/)
  r = await libBash(root, swap)
  t.equal(r.out, '', 'already in place: nothing to do, nothing said')

  // die: the message with the caller's name, exit 1, nothing after it runs
  r = await libBash(root, 'die "it broke"; echo after')
  t.equal(r.status, 1)
  t.equal(r.err, 'lib-test: error: it broke\n', r.err)
  t.equal(r.out, '')
})

// `render` of a fleet config (issue 17): every host, laid out as `build` lays
// out its render (hosts/<name>/host/, written by build's own renderHostFiles),
// with build's secrets layout (the fleet CA once in secrets/, each host's own
// under secrets/hosts/<name>/), through the real CLI. Before, render wrote
// only the config's template host, at the top of the output. A site of one
// renders as it always did (test/cli.test.ts).
import t from 'tap'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCli } from './helpers/cli.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/fleet-3/appliance.yaml', import.meta.url))
// the fixture's hosts and their addresses
const HOSTS: Record<string, string> = {
  'mirror-a.lab.example': '192.0.2.11',
  'mirror-b.lab.example': '192.0.2.12',
  'mirror-c.lab.example': '198.51.100.13',
}
const env = { SOURCE_DATE_EPOCH: '1700000000' }
const dir = mkdtempSync(join(tmpdir(), 'render-fleet-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const mode = (p: string) => statSync(p).mode & 0o777
/** every file under root, relative, sorted */
const files = (root: string): string[] =>
  readdirSync(root, { recursive: true })
    .map(String)
    .filter((p) => statSync(join(root, p)).isFile())
    .sort()
/** every directory under root (root included, as ''), relative */
const dirs = (root: string): string[] => [
  '',
  ...readdirSync(root, { recursive: true })
    .map(String)
    .filter((p) => statSync(join(root, p)).isDirectory()),
]
const contents = (root: string) => new Map(files(root).map((p) => [p, readFileSync(join(root, p))]))

t.test(
  'every host rendered under hosts/<name>/host/ with its own name and address; its secrets 0600 under secrets/hosts/<name>/',
  async (t) => {
    const out = join(dir, 'fleet')
    const r = await runCli(['render', '-c', FIXTURE, '-o', out], { env })
    t.equal(r.code, 0, r.stderr)
    t.match(r.stderr, /rendered \d+ files for 3 hosts \(hosts\/<name>\/host\/\) into /)
    t.notOk(existsSync(join(out, 'ks.cfg')), 'no template host at the top of the output')
    t.same(readdirSync(join(out, 'hosts')).sort(), Object.keys(HOSTS), 'one directory per host')
    for (const [h, ip] of Object.entries(HOSTS)) {
      const host = join(out, 'hosts', h, 'host')
      for (const f of ['ks.cfg', 'appliance.bu', 'appliance.ign']) t.ok(existsSync(join(host, f)), `${h}: host/${f}`)
      const ks = readFileSync(join(host, 'ks.cfg'), 'utf8')
      const network = ks.split('\n').filter((l) => l.startsWith('network '))
      t.equal(network.length, 1, `${h}: one network line`)
      t.match(network[0]!, new RegExp(` --ip=${ip.replace(/\./g, '\\.')} `), `${h}: its address`)
      t.match(network[0]!, new RegExp(` --hostname=${h.replace(/\./g, '\\.')} `), `${h}: its hostname`)
      t.match(ks, /OEMDRV|MAPAYLOAD/, `${h}: the kickstart of its OEMDRV, which finds the payload medium`)
      t.equal(mode(join(host, 'ks.cfg')), 0o600, `${h}: ks.cfg (its keys and passwords) 0600`)
      t.match(
        readFileSync(join(out, 'secrets/hosts', h, 'credentials.txt'), 'utf8'),
        new RegExp(`^# Credentials of ${h.replace(/\./g, '\\.')}\\.`),
      )
    }
    const secrets = join(out, 'secrets')
    for (const d of dirs(secrets)) t.equal(mode(join(secrets, d)), 0o700, `secrets/${d} 0700`)
    const all = files(secrets)
    t.ok(all.includes('fleet-ca.json') && all.includes('ca.key'), 'the fleet CA once, at the top')
    for (const h of Object.keys(HOSTS)) t.ok(all.includes(`hosts/${h}/secrets.json`), `${h}: its secrets.json`)
    t.notOk(
      all.some((p) => p.startsWith('hosts/') && p.endsWith('ca.key')),
      'no CA key in a host directory',
    )
    // ca.crt at the top is the public certificate clients trust; everything else is private
    for (const p of all) t.equal(mode(join(secrets, p)), p === 'ca.crt' ? 0o644 : 0o600, `secrets/${p}`)
    const perHost = Object.keys(HOSTS).map((h) => readFileSync(join(secrets, 'hosts', h, 'secrets.json'), 'utf8'))
    t.equal(new Set(perHost).size, 3, 'hosts do not share their secrets')

    // rendered again: every stored secret reused, so every file is the same
    const before = contents(out)
    const again = await runCli(['render', '-c', FIXTURE, '-o', out], { env })
    t.equal(again.code, 0, again.stderr)
    for (const h of Object.keys(HOSTS)) {
      t.match(
        again.stderr,
        new RegExp(`${h.replace(/\./g, '\\.')}: server certificate: reused from secrets/hosts/${h.replace(/\./g, '\\.')}/`),
      )
    }
    const after = contents(out)
    t.same([...after.keys()], [...before.keys()], 'the same files')
    for (const [p, bytes] of before) t.ok(after.get(p)?.equals(bytes), `unchanged: ${p}`)
  },
)

t.test(
  "the render is build's: build into the rendered output reuses its secrets and writes each host's host/ byte for byte as rendered",
  async (t) => {
    const out = join(dir, 'render-then-build')
    const r = await runCli(['render', '-c', FIXTURE, '-o', out], { env })
    t.equal(r.code, 0, r.stderr)
    const rendered = contents(out)
    const modes = new Map(files(out).map((p) => [p, mode(join(out, p))]))
    const b = await runCli(['build', '-c', FIXTURE, '-o', out, '--allow-missing', '--cache', join(dir, 'empty-cache')], { env })
    t.equal(b.code, 0, b.stderr)
    const built = contents(out)
    for (const h of Object.keys(HOSTS)) {
      const rel = join('hosts', h, 'host') + '/'
      const names = (m: Map<string, Buffer>) => [...m.keys()].filter((p) => p.startsWith(rel))
      t.ok(names(rendered).length > 3, `${rel}: rendered`)
      t.same(names(built), names(rendered), `${rel}: the same files`)
      for (const p of names(rendered)) {
        t.ok(built.get(p)?.equals(rendered.get(p)!), `${p}: the same bytes`)
        t.equal(mode(join(out, p)), modes.get(p), `${p}: the same mode`)
      }
      // the kickstart build puts on the host's OEMDRV
      t.ok(
        built.get(join('hosts', h, 'ks.cfg'))?.equals(rendered.get(join(rel, 'ks.cfg'))!),
        `${h}: its OEMDRV's ks.cfg is the rendered one`,
      )
    }
    const secrets = (m: Map<string, Buffer>) => [...m.keys()].filter((p) => p.startsWith('secrets/'))
    t.same(secrets(built), secrets(rendered), 'secrets/: the same files')
    for (const p of secrets(rendered)) t.ok(built.get(p)?.equals(rendered.get(p)!), `${p}: reused by build, unchanged`)
  },
)

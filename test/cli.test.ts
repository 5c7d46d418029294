// The command line contract: help, exit codes, init, validate, render.
import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv } from 'ajv'
import { parse as parseYaml } from 'yaml'
import { SCHEMA_PATH } from '../builder/config/load.js'
import { runCli } from './helpers/cli.js'

const tmp = () => mkdtempSync(join(tmpdir(), 'ma-cli-'))
const mode = (p: string) => statSync(p).mode & 0o777

t.test('--help lists every command and exits 0; no command exits 2', async (t) => {
  const r = await runCli(['--help'])
  t.equal(r.code, 0)
  for (const c of ['init', 'schema', 'validate', 'render', 'build', 'images', 'inspect', 'serve', 'doctor'])
    t.match(r.stdout, new RegExp(`^  ${c} `, 'm'), c)
  const none = await runCli([])
  t.equal(none.code, 2)
})

t.test('each command has --help', async (t) => {
  for (const c of ['init', 'schema', 'validate', 'render', 'build', 'inspect', 'serve', 'doctor', 'images']) {
    const r = await runCli([c, '--help'])
    t.equal(r.code, 0, `${c} --help: ${r.stderr}`)
    t.match(r.stdout, /^Usage: mirror-appliance /, c)
  }
})

t.test('usage mistakes exit 2 with a hint and no stack trace', async (t) => {
  const unknown = await runCli(['biuld'])
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown command "biuld"; did you mean "build"\?/)
  const flag = await runCli(['validate', '--frobnicate'])
  t.equal(flag.code, 2)
  t.match(flag.stderr, /Unknown option '--frobnicate'/)
  t.notMatch(flag.stderr, /^\s+at /m)
  const missing = await runCli(['render'])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /missing -o DIR/)
})

t.test('init writes the commented example, never overwrites without --force', async (t) => {
  const d = tmp()
  const f = join(d, 'appliance.yaml')
  const r = await runCli(['init', '-o', f])
  t.equal(r.code, 0, r.stderr)
  const text = readFileSync(f, 'utf8')
  t.match(text, /^# yaml-language-server: \$schema=/)
  t.match(text, /^apiVersion: mirror-appliance\/v1$/m)
  writeFileSync(f, 'mine\n')
  const again = await runCli(['init', '-o', f])
  t.equal(again.code, 2)
  t.match(again.stderr, /already exists; not overwriting/)
  t.equal(readFileSync(f, 'utf8'), 'mine\n', 'the existing file is untouched')
  const forced = await runCli(['init', '-o', f, '--force'])
  t.equal(forced.code, 0)
  t.equal(readFileSync(f, 'utf8'), text)
  const v = await runCli(['validate', '-c', f])
  t.equal(v.code, 0, v.stderr)
  t.match(v.stderr, /valid \(quay registry on mirror\.example\.internal:8443/)
})

/**
 * The schema file an editor opens for a YAML file, found the way
 * yaml-language-server does (redhat-developer/yaml-language-server at
 * 009d981720af, src/languageservice/services/modelineUtil.ts and
 * yamlSchemaService.ts getSchemaForResource): the first comment line matching
 * /^#\s+(?:yaml-language-server\s*:|\$schema:)/, its /\$schema(?:=|:\s*)(\S+)/,
 * and a value that is not file: or http(s) resolved against the YAML file's
 * own directory. Returns a URL for the http(s) case (which no file here backs).
 */
function editorSchemaPath(yamlText: string, yamlPath: string): string | undefined {
  const modeline = yamlText.split('\n').find((l) => /^#\s+(?:yaml-language-server\s*:|\$schema:)/.test(l))
  const value = modeline?.match(/\$schema(?:=|:\s*)(\S+)/)?.[1]
  if (value === undefined || value.startsWith('http')) return value
  if (value.startsWith('file:')) return fileURLToPath(value)
  return resolve(dirname(yamlPath), value)
}

t.test("schema prints the shipped schema; init writes it where the config's $schema line points editors", async (t) => {
  const s = await runCli(['schema'])
  t.equal(s.code, 0, s.stderr)
  t.equal(s.stdout, readFileSync(SCHEMA_PATH, 'utf8'), 'byte for byte the schema validate compiles')
  t.equal((JSON.parse(s.stdout) as { $schema: string }).$schema, 'http://json-schema.org/draft-07/schema#')
  const extra = await runCli(['schema', 'more'])
  t.equal(extra.code, 2, 'no positional arguments')

  const d = join(tmp(), 'site')
  mkdirSync(d)
  const f = join(d, 'registry.yaml')
  const r = await runCli(['init', '-o', f])
  t.equal(r.code, 0, r.stderr)
  t.same(readdirSync(d).sort(), ['mirror-appliance.schema.json', 'registry.yaml'], 'the config and its schema, no temp file')
  const text = readFileSync(f, 'utf8')
  const opened = editorSchemaPath(text, f)
  t.equal(opened, join(d, 'mirror-appliance.schema.json'), 'the $schema line resolves to the file beside the config')
  t.ok(opened && existsSync(opened), 'a file the editor can open, offline')
  t.equal(readFileSync(opened!, 'utf8'), s.stdout, "and it is this version's schema")
  // What the editor then reports: the example config as written satisfies the schema it points at.
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false })
  const check = ajv.compile(JSON.parse(readFileSync(opened!, 'utf8')) as object)
  t.ok(check(parseYaml(text)), `the example config is valid against it: ${ajv.errorsText(check.errors)}`)

  // An older copy is replaced by this version's; a refused init writes nothing.
  writeFileSync(opened!, '{"old": true}\n')
  t.equal((await runCli(['init', '-o', f, '--force'])).code, 0)
  t.equal(readFileSync(opened!, 'utf8'), s.stdout, 'the schema beside it is refreshed')
  const fresh = join(tmp(), 'fresh')
  mkdirSync(fresh)
  writeFileSync(join(fresh, 'appliance.yaml'), 'mine\n')
  t.equal((await runCli(['init', '-o', join(fresh, 'appliance.yaml')])).code, 2)
  t.same(readdirSync(fresh), ['appliance.yaml'], 'refused: no schema, no temp file left')
  const nowhere = await runCli(['init', '-o', join(fresh, 'no/such/dir/appliance.yaml')])
  t.equal(nowhere.code, 2)
  t.match(nowhere.stderr, /appliance\.yaml: cannot write into .*no\/such\/dir \(ENOENT\)/)
})

t.test('validate: bad config exits 2 with file:line:col; --json gives the diagnostics', async (t) => {
  const d = tmp()
  const f = join(d, 'appliance.yaml')
  writeFileSync(f, 'apiVersion: mirror-appliance/v1\nhost:\n  disk: {device: vda}\nregistry:\n  port: 70000\n')
  const r = await runCli(['validate', '-c', f])
  t.equal(r.code, 2)
  t.match(r.stderr, `${f}:5:9 registry.port: must be <= 65535`)
  const j = await runCli(['validate', '-c', f, '--json'])
  t.equal(j.code, 2)
  const parsed = JSON.parse(j.stdout) as { valid: boolean; errors: { line: number; col: number; path: string[] }[] }
  t.equal(parsed.valid, false)
  t.same(
    parsed.errors.map((e) => [e.line, e.col, e.path.join('.')]),
    [[5, 9, 'registry.port']],
  )
  const missing = await runCli(['validate', '-c', join(d, 'nope.yaml')])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /nope\.yaml: no such file/)
})

t.test('NO_COLOR: no escape sequences anywhere', async (t) => {
  const r = await runCli(['validate', '-c', '/nonexistent.yaml'], { env: { NO_COLOR: '1' } })
  t.notMatch(r.stderr + r.stdout, /\x1b\[/)
})

t.test('render writes ks.cfg, Butane, Ignition, rootfs and 0600 secrets; same seed and epoch give the same bytes', async (t) => {
  const d = tmp()
  const env = { SOURCE_DATE_EPOCH: '1700000000' }
  const a = await runCli(['render', '-o', join(d, 'a'), '--seed', 'test'], { env })
  t.match(a.stderr, /--seed: secrets are derived from the seed .*tests and demos only/, 'render --seed warns')
  t.equal(a.code, 0, a.stderr)
  const b = await runCli(['render', '-o', join(d, 'b'), '--seed', 'test'], { env })
  t.equal(b.code, 0, b.stderr)
  for (const f of ['ks.cfg', 'appliance.bu', 'appliance.ign']) t.ok(existsSync(join(d, 'a', f)), f)
  t.ok(readdirSync(join(d, 'a', 'rootfs')).length > 0, 'rootfs has files')
  t.equal(mode(join(d, 'a', 'secrets')), 0o700)
  for (const f of readdirSync(join(d, 'a', 'secrets'))) t.equal(mode(join(d, 'a', 'secrets', f)), 0o600, `secrets/${f}`)
  const list = (root: string): string[] =>
    readdirSync(root, { recursive: true, withFileTypes: false })
      .map(String)
      .filter((p) => statSync(join(root, p)).isFile())
      .sort()
  t.same(list(join(d, 'a')), list(join(d, 'b')), 'same files')
  for (const p of list(join(d, 'a'))) t.ok(readFileSync(join(d, 'a', p)).equals(readFileSync(join(d, 'b', p))), `identical: ${p}`)
  // Rendering again into the same output reuses its secrets (no seed needed).
  const c1 = await runCli(['render', '-o', join(d, 'c')], { env })
  t.equal(c1.code, 0, c1.stderr)
  const first = readFileSync(join(d, 'c', 'secrets', 'secrets.json'), 'utf8')
  const ca = readFileSync(join(d, 'c', 'secrets', 'ca.crt'), 'utf8')
  const c2 = await runCli(['render', '-o', join(d, 'c')], { env })
  t.equal(c2.code, 0, c2.stderr)
  t.equal(readFileSync(join(d, 'c', 'secrets', 'secrets.json'), 'utf8'), first, 'same generated passwords and keys')
  t.equal(readFileSync(join(d, 'c', 'secrets', 'ca.crt'), 'utf8'), ca, 'same CA')
  t.not(readFileSync(join(d, 'a', 'secrets', 'secrets.json'), 'utf8'), first, 'unseeded secrets differ from seeded ones')
})

t.test('render refuses to replace a directory it did not write, and leaves it alone', async (t) => {
  const d = tmp()
  const out = join(d, 'out')
  mkdirSync(out)
  writeFileSync(join(out, 'precious.txt'), 'keep me')
  const r = await runCli(['render', '-o', out])
  t.equal(r.code, 2)
  t.match(r.stderr, /was not written by mirror-appliance; refusing to replace it/)
  t.same(readdirSync(out), ['precious.txt'])
  t.same(readdirSync(d), ['out'], 'no temp or lock files left beside it')
})

t.test('build --seed warns as loudly as render --seed: predictable secrets', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'ma-seed-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  const r = await runCli(['build', '-o', join(d, 'dist'), '--seed', 'demo', '--allow-missing'], {
    env: { MIRROR_APPLIANCE_CACHE: join(d, 'cache') },
  })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /warning: --seed: secrets are derived from the seed .*tests and demos only/)
  const plain = await runCli(['build', '-o', join(d, 'dist2'), '--allow-missing'], { env: { MIRROR_APPLIANCE_CACHE: join(d, 'cache') } })
  t.equal(plain.code, 0, plain.stderr)
  t.notMatch(plain.stderr, /--seed/, 'no warning without --seed')
})

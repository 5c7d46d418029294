// The build settings table (builder/config/flags.ts): one row per build flag,
// the config key it sets and its help (mkosi's settings table). Walked row by
// row: each flag, parsed with the options the CLI parses with, sets its key
// in the config a build loads, and wins over the file's; each key exists in
// the schema; `build --help` names each flag's key. And what a flag cannot
// do alone is a config diagnostic naming the flag, with exit code 2.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError, formatDiagnostic, formatPath, type FieldPath } from '../builder/config/diagnostics.js'
import { BUILD_FLAGS, buildOptsFrom, buildParseOptions, type BuildFlag } from '../builder/config/flags.js'
import { loadConfigText, SCHEMA_PATH, type LoadedConfig } from '../builder/config/load.js'
import { runCli } from './helpers/cli.js'

const BASE_DIR = '/srv/site'
const FILE = join(BASE_DIR, 'appliance.yaml')
const MINIMAL = 'apiVersion: mirror-appliance/v1\nhost:\n  disk: { device: vda }\n'

/** The flags as the CLI parses them, into BuildOpts, and the config a build loads with them. */
function load(args: string[], text = MINIMAL): LoadedConfig {
  const { values } = parseArgs({ args: ['-o', 'dist', ...args], options: buildParseOptions(), strict: true, allowPositionals: false })
  return loadConfigText(text, FILE, { baseDir: BASE_DIR, build: buildOptsFrom(values) })
}

function refused(args: string[], text = MINIMAL): string[] {
  try {
    load(args, text)
  } catch (e) {
    if (e instanceof ConfigError) return e.diagnostics.map((d) => formatDiagnostic(d, { caret: false }))
    throw e
  }
  throw new Error(`${args.join(' ')}: accepted`)
}

const at = (tree: unknown, path: FieldPath): unknown =>
  path.reduce<unknown>(
    (node, seg) => (node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[String(seg)] : undefined),
    tree,
  )

/** A value for a row's flag, with the flags a build needs beside it (the section it goes in, an installer to build from). */
function example(r: BuildFlag): { args: string[]; want: unknown } {
  const installer = ['--iso', 'rhel.iso']
  if (r.type === 'boolean') {
    const needs = r.section?.needs ? [`--${r.section.needs.flag}`, 'http://192.0.2.1:8080'] : []
    return { args: [`--${r.name}`, ...needs, ...(r.section ? installer : [])], want: r.value ?? true }
  }
  const value = r.name === 'pxe-url' ? 'http://192.0.2.1:8080/pxe' : `given-${r.name}.img`
  const section = r.within ? [`--${r.within}`, ...(r.within === 'pxe' ? installer : [])] : []
  return { args: [`--${r.name}`, value, ...section], want: r.file ? resolve(value) : value }
}

t.test('each flag with a key sets that key in the config the build loads', async (t) => {
  const keyed = BUILD_FLAGS.filter((r) => r.key)
  t.ok(keyed.length >= 8, `${keyed.length} flags set a key`)
  const none = load([])
  for (const r of keyed) {
    t.equal(at(none.input, r.key!), undefined, `without --${r.name}: the file decides ${formatPath(r.key!)}`)
    const { args, want } = example(r)
    const loaded = load(args)
    const got = at(loaded.input, r.key!)
    if (r.section) t.match(got, {}, `--${r.name} asks for the section ${formatPath(r.key!)}`)
    else t.equal(got, want, `--${r.name} sets ${formatPath(r.key!)}`)
    // and the normalized config every stage reads has it
    const normalized = at(loaded.config, r.key!)
    if (r.section) t.type(normalized, 'object', `--${r.name}: ${formatPath(r.key!)} in the normalized config`)
    else t.equal(normalized, want, `--${r.name}: ${formatPath(r.key!)} in the normalized config`)
  }
})

t.test("a flag wins over the key in the file; a file path flag is the working directory's", async (t) => {
  const file = MINIMAL + 'outputs:\n  oemdrv: true\n  iso: { base: from-file.iso }\n  qcow2: { sizeGiB: 40, baseImage: file.qcow2 }\n'
  t.equal(load([], file).config.outputs.iso?.base, join(BASE_DIR, 'from-file.iso'), 'the file: against the config file')
  const l = load(['--no-oemdrv', '--iso', 'flag.iso', '--qcow2', '--base-image', 'flag.qcow2'], file)
  t.equal(l.config.outputs.oemdrv, false)
  t.equal(l.config.outputs.iso?.base, resolve('flag.iso'), '--iso: against the working directory')
  t.same(
    l.config.outputs.qcow2,
    { baseImage: resolve('flag.qcow2'), sizeGiB: 40, compress: false },
    "--qcow2 keeps the file's section, --base-image sets its image",
  )
  t.equal(load(['--oemdrv', '--no-oemdrv']).config.outputs.oemdrv, false, '--no-oemdrv wins over --oemdrv')
})

t.test('every key is a key of the schema, and a flag and its key are one row', async (t) => {
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as {
    definitions: Record<string, { properties?: Record<string, unknown> }>
    properties: Record<string, unknown>
  }
  const schemaHas = (path: FieldPath): boolean => {
    let node: { properties?: Record<string, unknown>; $ref?: string } = schema as never
    for (const seg of path) {
      if (node.$ref) node = schema.definitions[node.$ref.replace('#/definitions/', '')] as never
      const next = node.properties?.[String(seg)] as typeof node | undefined
      if (!next) return false
      node = next
    }
    return true
  }
  for (const r of BUILD_FLAGS.filter((r) => r.key)) t.ok(schemaHas(r.key!), `${formatPath(r.key!)} (--${r.name}) is in schema.json`)
  const names = BUILD_FLAGS.map((r) => r.name)
  t.same(names, [...new Set(names)], 'each flag once')
  // Two rows share a key only as a switch and its negation.
  const byKey = new Map<string, BuildFlag[]>()
  for (const r of BUILD_FLAGS.filter((r) => r.key)) byKey.set(formatPath(r.key!), [...(byKey.get(formatPath(r.key!)) ?? []), r])
  for (const [key, rows] of byKey)
    if (rows.length > 1)
      t.same(rows.map((r) => r.value).sort(), [false, true], `${key}: --${rows.map((r) => r.name).join(' and --')} set it true and false`)
})

t.test('build --help lists every flag of the table, with the key it sets', async (t) => {
  const r = await runCli(['build', '--help'])
  t.equal(r.code, 0, r.stderr)
  for (const row of BUILD_FLAGS) {
    const option = new RegExp(`^ +(-${row.short ?? '-'}, )?--${row.name}${row.arg ? ` ${row.arg}` : ''} +\\S`)
    const line = r.stdout.split('\n').find((l) => option.test(l))
    t.ok(line, `--${row.name} is in the help`)
    if (row.key) t.match(line ?? '', `(config: ${formatPath(row.key)}`, `--${row.name}'s line names ${formatPath(row.key)}`)
  }
})

t.test('what a flag cannot do alone is a config diagnostic naming the flag', async (t) => {
  t.same(refused(['--base-image', 'x.qcow2']), [
    `${FILE}: outputs.qcow2.baseImage (--base-image): is only used with --qcow2 (or outputs.qcow2 in the config)`,
  ])
  t.same(refused(['--pxe-url', 'http://192.0.2.1:8080']), [
    `${FILE}: outputs.pxe.baseUrl (--pxe-url): is only used with --pxe (or outputs.pxe in the config)`,
  ])
  t.same(refused(['--iso', '']), [`${FILE}: outputs.iso.base (--iso): needs a value`])
  t.same(refused(['--pxe', '--iso', 'rhel.iso']), [
    `${FILE}: outputs.pxe (--pxe): needs the URL the tree will be served from: add --pxe-url URL, or outputs.pxe.baseUrl in the config`,
  ])
  t.same(refused(['--pxe', '--pxe-url', 'http://192.0.2.1:8080']), [
    `${FILE}: outputs.pxe (--pxe): a PXE tree needs the RHEL ISO to take the kernel and initrd from: add --iso BASE.iso, or outputs.iso.base in the config`,
  ])
  t.same(refused(['--qcow2']), [
    `${FILE}: outputs.qcow2 (--qcow2): a qcow2 needs either a RHEL 8 KVM guest image (--base-image rhel-8.x-x86_64-kvm.qcow2, or outputs.qcow2.baseImage) or the RHEL ISO to install from (--iso BASE.iso, or outputs.iso.base)`,
  ])
  // The same rule about a key in the file points at the file.
  const pxeInFile = MINIMAL + 'outputs:\n  pxe: { baseUrl: "http://192.0.2.1:8080" }\n'
  t.same(refused([], pxeInFile), [
    `${FILE}:5:8 outputs.pxe: a PXE tree needs the RHEL ISO to take the kernel and initrd from: add --iso BASE.iso, or outputs.iso.base in the config`,
  ])
  t.doesNotThrow(() => load(['--iso', 'rhel.iso'], pxeInFile), 'the flag gives what the file left out')
  t.doesNotThrow(() => loadConfigText(pxeInFile, FILE, { baseDir: BASE_DIR }), 'validate does not ask for what a build flag may give')
  // What the schema's pattern lets through but is no URL: refused at its place in the file (and by validate).
  const badPort = MINIMAL + 'outputs:\n  iso: { base: rhel.iso }\n  pxe: { baseUrl: "http://192.0.2.1:99999" }\n'
  t.same(refused([], badPort), [`${FILE}:6:19 outputs.pxe.baseUrl: base URL 'http://192.0.2.1:99999' is not a URL`])
  t.throws(() => loadConfigText(badPort, FILE, { baseDir: BASE_DIR }), ConfigError)
  // Through the CLI: exit 2, nothing written.
  const dir = t.testdir()
  const cli = await runCli(['build', '-o', join(dir, 'out'), '--base-image', 'x.qcow2'])
  t.equal(cli.code, 2, cli.stderr)
  t.match(cli.stderr, /<default config>: outputs\.qcow2\.baseImage \(--base-image\): is only used with --qcow2/)
  t.match(cli.stderr, /1 error in <default config>/)
})

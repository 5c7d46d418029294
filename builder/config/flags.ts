// The build's flags and the config keys they set, in one table (mkosi's
// settings table, mkosi/config.py `ConfigSetting`: one row holds a setting's
// flag, its key and its help). The command line takes the build's options,
// help lines and BuildOpts from it (cli.ts), and the config loader merges
// the flags given into the config with it (mergeBuildFlags, called by
// load.ts before the rules run), so a flag and its key cannot drift apart:
// test/config-flags.test.ts walks the table. A flag given wins over the key
// in the file: the command line is the more specific place. Flags without a
// key are the build's own (where to write, the cache, --seed).

import { resolve } from 'node:path'
import { UserError } from '../errors.js'
import { formatPath, type FieldPath } from './diagnostics.js'
import { normalizeBaseUrl } from './pxe-url.js'
import type { ConfigInput } from './types.js'

/** The build command's options, as its flags give them (buildOptsFrom). */
export interface BuildOpts {
  config?: string
  output: string
  iso?: string
  /** --oemdrv true, --no-oemdrv false, neither: the config decides */
  oemdrv?: boolean
  pxe: boolean
  pxeUrl?: string
  qcow2: boolean
  baseImage?: string
  bundle: boolean
  /** A pull secret to merge the registry's auth into (openshift/pull-secret-merged.json) */
  pullSecret?: string
  cache?: string
  allowMissing: boolean
  force: boolean
  seed?: string
}

export interface BuildFlag {
  /** The long option, without dashes */
  name: string
  short?: string
  /** A value (string) or a switch (boolean) */
  type: 'string' | 'boolean'
  /** How the help names the value, e.g. BASE.iso */
  arg?: string
  help: string
  /** Where the parsed value goes */
  dest: keyof BuildOpts
  /** A switch: the value it stores in dest and sets the key to (default true) */
  value?: boolean
  /** The build refuses to start without it */
  required?: boolean
  /** The config key the flag sets; absent: the build's own flag */
  key?: FieldPath
  /**
   * The key is a config section the switch asks for (outputs.qcow2): kept as
   * the file has it, else made empty. `needs`: a member the section must
   * have and the flag that gives it.
   */
  section?: { needs?: { member: string; flag: string; what: string } }
  /** A value that goes into the section this switch asks for (--base-image into --qcow2's) */
  within?: string
  /** A file on the build machine: resolved against the working directory, as a shell user means it */
  file?: boolean
  /** Checks the value; throws UserError saying what is wrong */
  check?: (value: string) => unknown
}

/** Every flag of `build`, in the order its help lists them. */
export const BUILD_FLAGS: readonly BuildFlag[] = [
  { name: 'config', short: 'c', type: 'string', arg: 'FILE', dest: 'config', help: 'the config (default: the embedded demo config)' },
  { name: 'output', short: 'o', type: 'string', arg: 'DIR', dest: 'output', required: true, help: 'where to write (required)' },
  {
    name: 'iso',
    type: 'string',
    arg: 'BASE.iso',
    dest: 'iso',
    key: ['outputs', 'iso', 'base'],
    file: true,
    help: 'remaster this RHEL 8 DVD or boot ISO into an unattended ISO',
  },
  {
    name: 'oemdrv',
    type: 'boolean',
    dest: 'oemdrv',
    value: true,
    key: ['outputs', 'oemdrv'],
    help: 'build the OEMDRV medium, the default',
  },
  { name: 'no-oemdrv', type: 'boolean', dest: 'oemdrv', value: false, key: ['outputs', 'oemdrv'], help: 'do not build the OEMDRV medium' },
  {
    name: 'pxe',
    type: 'boolean',
    dest: 'pxe',
    key: ['outputs', 'pxe'],
    section: { needs: { member: 'baseUrl', flag: 'pxe-url', what: 'the URL the tree will be served from' } },
    help: 'write a PXE/HTTP install tree (needs --iso for kernel and initrd)',
  },
  {
    name: 'pxe-url',
    type: 'string',
    arg: 'URL',
    dest: 'pxeUrl',
    key: ['outputs', 'pxe', 'baseUrl'],
    within: 'pxe',
    check: normalizeBaseUrl,
    help: 'where the tree will be served',
  },
  { name: 'qcow2', type: 'boolean', dest: 'qcow2', key: ['outputs', 'qcow2'], section: {}, help: 'build a VM disk' },
  {
    name: 'base-image',
    type: 'string',
    arg: 'IMG',
    dest: 'baseImage',
    key: ['outputs', 'qcow2', 'baseImage'],
    within: 'qcow2',
    file: true,
    help: 'RHEL 8 KVM guest image for --qcow2',
  },
  { name: 'bundle', type: 'boolean', dest: 'bundle', key: ['outputs', 'bundle'], help: 'build the install bundle for existing hosts' },
  {
    name: 'pull-secret',
    type: 'string',
    arg: 'FILE',
    dest: 'pullSecret',
    help: "merge the registry's auth into this pull secret (openshift/pull-secret-merged.json)",
  },
  {
    name: 'cache',
    type: 'string',
    arg: 'DIR',
    dest: 'cache',
    help: 'image cache (default: $MIRROR_APPLIANCE_CACHE or ~/.cache/mirror-appliance/oci)',
  },
  { name: 'allow-missing', type: 'boolean', dest: 'allowMissing', help: 'build even when locked stack images are missing (dry run)' },
  { name: 'force', type: 'boolean', dest: 'force', help: 'build a non-RHEL-8 base ISO anyway' },
  { name: 'seed', type: 'string', arg: 'TEXT', dest: 'seed', help: 'derive generated secrets from TEXT (tests and demos only)' },
]

const row = (name: string): BuildFlag => BUILD_FLAGS.find((r) => r.name === name)!

/** The options node:util's parseArgs takes for `build`. */
export function buildParseOptions(): Record<string, { type: 'string' | 'boolean'; short?: string }> {
  return Object.fromEntries(BUILD_FLAGS.map((r) => [r.name, { type: r.type, ...(r.short ? { short: r.short } : {}) }]))
}

/** What the help says a flag sets in the config. */
function keyNote(r: BuildFlag): string {
  if (!r.key) return ''
  const key = formatPath(r.key)
  return ` (config: ${r.type === 'boolean' && !r.section ? `${key}: ${r.value ?? true}` : key})`
}

/** The build's option lines for its --help, one per flag, each naming its config key. */
export function buildFlagsHelp(): string {
  const left = (r: BuildFlag) => `${r.short ? `-${r.short}, ` : '    '}--${r.name}${r.arg ? ` ${r.arg}` : ''}`
  const width = Math.max(...BUILD_FLAGS.map((r) => left(r).length)) + 2
  return BUILD_FLAGS.map((r) => `  ${left(r).padEnd(width)}${r.help}${keyNote(r)}`).join('\n')
}

/** BuildOpts from parseArgs' values; a required flag missing (or empty) is the user's mistake. */
export function buildOptsFrom(values: Record<string, string | boolean | string[] | undefined>): BuildOpts {
  const opts: Record<string, unknown> = { pxe: false, qcow2: false, bundle: false, allowMissing: false, force: false }
  for (const r of BUILD_FLAGS) {
    const v = values[r.name]
    if (r.type === 'boolean' && v === true) opts[r.dest] = r.value ?? true
    if (r.type === 'string' && typeof v === 'string') opts[r.dest] = v
    if (r.required && (typeof v !== 'string' || v === ''))
      throw new UserError(`missing ${r.short ? `-${r.short}` : `--${r.name}`} ${r.arg}`)
  }
  return opts as unknown as BuildOpts
}

/** A config key a flag set (the flag's name without dashes). */
export interface FlagSetting {
  flag: string
  path: FieldPath
}

/** A flag the merge refused: its key, what is wrong. */
export interface FlagProblem extends FlagSetting {
  message: string
}

type Tree = Record<string, unknown>

function getAt(tree: Tree, path: FieldPath): unknown {
  let node: unknown = tree
  for (const seg of path) node = node !== null && typeof node === 'object' ? (node as Tree)[String(seg)] : undefined
  return node
}

function setAt(tree: Tree, path: FieldPath, value: unknown): void {
  let node = tree
  for (const seg of path.slice(0, -1)) {
    const next = node[String(seg)]
    node = (next !== null && typeof next === 'object' ? next : (node[String(seg)] = {})) as Tree
  }
  node[String(path.at(-1))] = value
}

function deleteAt(tree: Tree, path: FieldPath): void {
  const parent = getAt(tree, path.slice(0, -1))
  if (parent !== null && typeof parent === 'object') delete (parent as Tree)[String(path.at(-1))]
}

/** Whether the flag was given: a switch when it stores its value, a value flag when it has one. */
function given(r: BuildFlag, opts: BuildOpts): boolean {
  const v = opts[r.dest]
  return r.type === 'boolean' ? v === (r.value ?? true) : typeof v === 'string'
}

/**
 * The config as the file has it with the given flags' keys set: a copy, the
 * input untouched. Switches first, so that a value flag (--base-image) finds
 * the section its switch (--qcow2) asks for. Returns which flag set which
 * key (diagnostics about a key a flag set name the flag) and the flags
 * refused: a bad value, a value flag without its section, a section without
 * what it needs (that section is left out, so the rules still run on the rest).
 */
export function mergeBuildFlags(input: ConfigInput, opts: BuildOpts): { input: ConfigInput; set: FlagSetting[]; problems: FlagProblem[] } {
  const merged = structuredClone(input) as unknown as Tree
  const set: FlagSetting[] = []
  const problems: FlagProblem[] = []
  const rows = BUILD_FLAGS.filter((r) => r.key && given(r, opts))
  for (const r of rows.filter((r) => r.section)) {
    if (getAt(merged, r.key!) === undefined) {
      setAt(merged, r.key!, {})
      set.push({ flag: r.name, path: r.key! })
    }
  }
  for (const r of rows.filter((r) => !r.section)) {
    const path = r.key!
    const refuse = (message: string) => problems.push({ flag: r.name, path, message })
    if (r.within && getAt(merged, path.slice(0, -1)) === undefined) {
      refuse(`is only used with --${r.within} (or ${formatPath(path.slice(0, -1))} in the config)`)
      continue
    }
    let value = opts[r.dest]
    if (typeof value === 'string') {
      if (value === '') {
        refuse('needs a value')
        continue
      }
      try {
        r.check?.(value)
      } catch (e) {
        if (!(e instanceof UserError)) throw e
        refuse(e.message + (e.hint ? ` (${e.hint})` : ''))
        continue
      }
      if (r.file) value = resolve(value)
    }
    setAt(merged, path, value)
    set.push({ flag: r.name, path })
  }
  for (const r of rows) {
    const needs = r.section?.needs
    if (!needs || getAt(merged, [...r.key!, needs.member]) !== undefined) continue
    const from = row(needs.flag)
    problems.push({
      flag: r.name,
      path: r.key!,
      message:
        `needs ${needs.what}: add --${from.name} ${from.arg ?? ''}, or ${formatPath([...r.key!, needs.member])} in the config`.replace(
          ' ,',
          ',',
        ),
    })
    deleteAt(merged, r.key!)
  }
  return { input: merged as unknown as ConfigInput, set, problems }
}

// Config in three steps (changesets style): what the user wrote, checked by
// the JSON schema; the normalized config with defaults and derived values;
// cross-field rules. Every problem is collected with its place in the file
// and reported at once.

import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv, type ErrorObject } from 'ajv'
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml'
import { UserError } from '../errors.js'
import { ConfigError, type Diagnostic, type FieldPath } from './diagnostics.js'
import { normalizeConfig } from './normalize.js'
import { checkRules } from './rules.js'
import type { Config, ConfigInput } from './types.js'

export const SCHEMA_PATH = fileURLToPath(new URL('./schema.json', import.meta.url))
export const EXAMPLE_PATH = fileURLToPath(new URL('./example.yaml', import.meta.url))
/** The name the embedded default config is reported under. */
export const DEFAULT_CONFIG_NAME = '<default config>'
/** Larger files are refused before parsing: a real config is a few KB. */
export const MAX_CONFIG_BYTES = 1024 * 1024
const MAX_ALIASES = 100

const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as Record<string, unknown>
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, verbose: true })
const validateSchema = ajv.compile(schema)

export interface LoadedConfig {
  config: Config
  input: ConfigInput
  /** Path as given (or DEFAULT_CONFIG_NAME) */
  file: string
  text: string
  /** sha256 of the file's bytes */
  digest: string
  warnings: Diagnostic[]
}

/** Read and check a config file; without a path, the embedded default (the demo). */
export function loadConfig(path?: string): LoadedConfig {
  if (path === undefined) {
    const text = readFileSync(EXAMPLE_PATH)
    return loadConfigText(text, DEFAULT_CONFIG_NAME, { baseDir: process.cwd() })
  }
  let size: number
  try {
    const st = statSync(path)
    if (!st.isFile()) throw new UserError(`${path}: not a regular file`)
    size = st.size
  } catch (e) {
    if (e instanceof UserError) throw e
    const code = (e as NodeJS.ErrnoException).code
    throw new UserError(
      code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? String(e)})`,
      code === 'ENOENT' ? 'create one with: mirror-appliance init -o ' + path : undefined,
    )
  }
  if (size > MAX_CONFIG_BYTES) {
    throw new ConfigError([
      at(path, `the file is ${size} bytes; a config may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`),
    ])
  }
  return loadConfigText(readFileSync(path), path, { baseDir: dirname(resolve(path)) })
}

function at(file: string, message: string, line = 0, col = 0, path: FieldPath = [], source?: string): Diagnostic {
  return { file, line, col, path, message, source, severity: 'error' }
}

/** Offset of the first byte that is not valid UTF-8, or -1. */
function invalidUtf8Offset(buf: Buffer): number {
  for (let i = 0; i < buf.length; ) {
    const b = buf[i]!
    const n = b < 0x80 ? 0 : b >= 0xc2 && b < 0xe0 ? 1 : b >= 0xe0 && b < 0xf0 ? 2 : b >= 0xf0 && b < 0xf5 ? 3 : -1
    if (n < 0) return i
    for (let k = 1; k <= n; k++) if (((buf[i + k] ?? 0) & 0xc0) !== 0x80) return i
    i += n + 1
  }
  return -1
}

export function loadConfigText(
  data: string | Buffer,
  file: string,
  opts: { baseDir: string },
): LoadedConfig {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
  if (bytes.length > MAX_CONFIG_BYTES) {
    throw new ConfigError([at(file, `the file is ${bytes.length} bytes; a config may be at most 1 MiB`)])
  }
  const bad = invalidUtf8Offset(bytes)
  if (bad >= 0) {
    const before = bytes.subarray(0, bad)
    const line = before.filter((c) => c === 0x0a).length + 1
    const col = bad - before.lastIndexOf(0x0a)
    throw new ConfigError([at(file, `the file is not valid UTF-8 (byte 0x${bytes[bad]!.toString(16)} at offset ${bad})`, line, col)])
  }
  let text = bytes.toString('utf8')
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex')
  // Line by line: one regex over the whole text with nested quantifiers
  // backtracks exponentially on leading blank lines (20 took minutes).
  if (text.split('\n').every((l) => l.trim() === '' || l.trim().startsWith('#'))) {
    throw new ConfigError([at(file, 'the file is empty; it needs at least "apiVersion: mirror-appliance/v1"')])
  }

  const lines = text.split('\n')
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true })
  const place = (offset: number) => {
    const { line, col } = lc.linePos(offset)
    return { line, col, source: lines[line - 1] }
  }
  const diagnostics: Diagnostic[] = []
  for (const e of doc.errors) {
    const p = place(e.pos[0])
    const msg = e.code === 'DUPLICATE_KEY' ? 'duplicate key: a key may appear only once in a mapping' : e.message.split('\n')[0]!
    diagnostics.push(at(file, `${msg}`, p.line, p.col, [], p.source))
  }
  if (diagnostics.length) throw new ConfigError(diagnostics)

  let input: unknown
  try {
    input = doc.toJS({ maxAliasCount: MAX_ALIASES })
  } catch (e) {
    throw new ConfigError([
      at(file, `too many YAML alias expansions (limit ${MAX_ALIASES}): ${(e as Error).message}`),
    ])
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError([at(file, 'the top level must be a mapping (key: value lines), starting with "apiVersion: mirror-appliance/v1"', 1, 1, [], lines[0])])
  }

  const locate = (path: FieldPath, key = false) => place(offsetOf(doc, path, key))
  if (!validateSchema(input)) {
    for (const err of simplify(validateSchema.errors ?? [])) {
      const { path, message, atKey } = describe(err)
      const p = locate(path, atKey)
      diagnostics.push(at(file, message, p.line, p.col, path, p.source))
    }
    throw new ConfigError(sortByPlace(diagnostics))
  }

  const typed = input as ConfigInput
  const config = normalizeConfig(typed, { baseDir: opts.baseDir })
  const found = checkRules(typed, config)
  const all = found.map((r) => {
    const p = locate(r.path, false)
    return { file, line: p.line, col: p.col, path: r.path, message: r.message, source: p.source, severity: r.severity }
  })
  const errors = all.filter((d) => d.severity === 'error')
  if (errors.length) throw new ConfigError(sortByPlace(all))
  return { config, input: typed, file, text, digest, warnings: all.filter((d) => d.severity === 'warning') }
}

const sortByPlace = (ds: Diagnostic[]) => [...ds].sort((a, b) => a.line - b.line || a.col - b.col)

/** Offset of the node at `path` (its key when `key`), or of the deepest existing parent. */
function offsetOf(doc: Document, path: FieldPath, key: boolean): number {
  let node: unknown = doc.contents
  let offset = (doc.contents as Node | null)?.range?.[0] ?? 0
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg))
      if (!pair) break
      const last = i === path.length - 1
      if (last && key && isScalar(pair.key)) return pair.key.range?.[0] ?? offset
      node = pair.value
      offset = (pair.value as Node | null)?.range?.[0] ?? (pair.key as Node).range?.[0] ?? offset
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined
      if (!item) break
      node = item
      offset = item.range?.[0] ?? offset
    } else break
  }
  return offset
}

function pathOf(instancePath: string): FieldPath {
  if (!instancePath) return []
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
}

/** Drop the branch errors under a failed oneOf/anyOf: the combinator's own message says it better. */
function simplify(errors: ErrorObject[]): ErrorObject[] {
  const combinators = new Set(errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => e.instancePath))
  const seen = new Set<string>()
  return errors.filter((e) => {
    if (combinators.has(e.instancePath) && e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && e.keyword !== 'additionalProperties') return false
    const k = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

const typeName = (v: unknown) =>
  v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`

const wanted: Record<string, string> = {
  object: 'a mapping (key: value)',
  array: 'a list',
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
}

function describe(err: ErrorObject): { path: FieldPath; message: string; atKey: boolean } {
  const path = pathOf(err.instancePath)
  const desc = (err.parentSchema as { description?: string } | undefined)?.description
  switch (err.keyword) {
    case 'additionalProperties': {
      const name = (err.params as { additionalProperty: string }).additionalProperty
      const known = Object.keys((err.parentSchema as { properties?: object }).properties ?? {})
      const guess = didYouMean(name, known)
      return {
        path: [...path, name],
        message: `unknown field "${name}"` + (guess ? `; did you mean "${guess}"?` : `; allowed here: ${known.join(', ')}`),
        atKey: true,
      }
    }
    case 'required': {
      const name = (err.params as { missingProperty: string }).missingProperty
      return { path, message: `missing required field "${name}"`, atKey: false }
    }
    case 'type': {
      const t = String((err.params as { type: string }).type)
      return { path, message: `must be ${t.split(',').map((x) => wanted[x] ?? x).join(' or ')}, not ${typeName(err.data)}`, atKey: false }
    }
    case 'enum': {
      const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.map(String)
      const guess = typeof err.data === 'string' ? didYouMean(err.data, allowed) : undefined
      return {
        path,
        message: `must be one of ${allowed.join(', ')}, not ${typeName(err.data)}` + (guess ? `; did you mean "${guess}"?` : ''),
        atKey: false,
      }
    }
    case 'const':
      return { path, message: `must be ${JSON.stringify((err.params as { allowedValue: unknown }).allowedValue)}, not ${typeName(err.data)}`, atKey: false }
    case 'pattern':
      return { path, message: `${JSON.stringify(err.data)} is not valid` + (desc ? `: ${desc}` : ''), atKey: false }
    case 'oneOf': {
      const passing = (err.params as { passingSchemas: number[] | null }).passingSchemas
      const options = Object.keys((err.parentSchema as { properties?: object }).properties ?? {}).join(', ')
      return {
        path,
        message: passing ? `give only one of: ${options}` : `needs exactly one of: ${options}`,
        atKey: false,
      }
    }
    case 'anyOf':
      return { path, message: `${typeName(err.data)} is not valid` + (desc ? `: ${desc}` : ''), atKey: false }
    default:
      return { path, message: err.message ?? 'is not valid', atKey: false }
  }
}

/** The closest candidate within a small edit distance, for "did you mean" hints. */
export function didYouMean(word: string, candidates: string[]): string | undefined {
  let best: string | undefined
  let bestD = Infinity
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestD) [best, bestD] = [c, d]
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length]!
}

// Config in three steps (changesets style): what the user wrote, checked by
// the JSON schema; the normalized config with defaults and derived values;
// cross-field rules. Every problem is collected with its place in the file
// and reported at once. A build merges its flags into what the user wrote
// first (flags.ts), so its rules see what it will build and a refusal names
// the key, or the flag that set it.

import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv, type ErrorObject } from 'ajv'
import { isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar, visit, type Document, type Node } from 'yaml'
import { UserError } from '../errors.js'
import { ConfigError, type Diagnostic, type FieldPath } from './diagnostics.js'
import { mergeBuildFlags, type BuildOpts, type FlagSetting } from './flags.js'
import { normalizeConfig } from './normalize.js'
import { checkRules, type RuleResult } from './rules.js'
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

/** How a config is loaded: for `validate` and `render` as the file has it, for `build` with its flags merged in. */
export interface LoadOptions {
  /** The build's flags: their keys override the file's, and the rules check what the build will make */
  build?: BuildOpts
}

export interface LoadedConfig {
  config: Config
  /** What the user wrote, with a build's flags merged in */
  input: ConfigInput
  /** Path as given (or DEFAULT_CONFIG_NAME) */
  file: string
  text: string
  /** sha256 of the file's bytes */
  digest: string
  warnings: Diagnostic[]
}

/** Read and check a config file; without a path, the embedded default (the demo). */
export function loadConfig(path?: string, opts: LoadOptions = {}): LoadedConfig {
  if (path === undefined) {
    const text = readFileSync(EXAMPLE_PATH)
    return loadConfigText(text, DEFAULT_CONFIG_NAME, { ...opts, baseDir: process.cwd() })
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
    throw new ConfigError([at(path, `the file is ${size} bytes; a config may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`)])
  }
  return loadConfigText(readFileSync(path), path, { ...opts, baseDir: dirname(resolve(path)) })
}

function at(file: string, message: string, line = 0, col = 0, path: FieldPath = [], source?: string): Diagnostic {
  return { file, line, col, path, message, source, severity: 'error' }
}

/** Offset of the first byte that is not valid UTF-8, or -1. */
function invalidUtf8Offset(buf: Buffer): number {
  for (let i = 0; i < buf.length;) {
    const b = buf[i]!
    const n = b < 0x80 ? 0 : b >= 0xc2 && b < 0xe0 ? 1 : b >= 0xe0 && b < 0xf0 ? 2 : b >= 0xf0 && b < 0xf5 ? 3 : -1
    if (n < 0) return i
    for (let k = 1; k <= n; k++) if (((buf[i + k] ?? 0) & 0xc0) !== 0x80) return i
    i += n + 1
  }
  return -1
}

export function loadConfigText(data: string | Buffer, file: string, opts: { baseDir: string } & LoadOptions): LoadedConfig {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
  if (bytes.length > MAX_CONFIG_BYTES) {
    throw new ConfigError([at(file, `the file is ${bytes.length} bytes; a config may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`)])
  }
  const bad = invalidUtf8Offset(bytes)
  if (bad >= 0) {
    const before = bytes.subarray(0, bad)
    const line = before.filter((c) => c === 0x0a).length + 1
    const col = bad - before.lastIndexOf(0x0a)
    const start = before.lastIndexOf(0x0a) + 1
    const end = bytes.indexOf(0x0a, bad)
    // Shown with U+FFFD where the bad bytes are, so the caret has something to point at.
    const source = bytes
      .subarray(start, end < 0 ? bytes.length : end)
      .toString('utf8')
      .replace(/\r$/, '')
    throw new ConfigError([
      bad === 0 && bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
        ? at(file, 'the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8', 1, 1)
        : at(
            file,
            `the file is not valid UTF-8 (byte 0x${bytes[bad]!.toString(16)} at offset ${bad}); save it as UTF-8`,
            line,
            col,
            [],
            source,
          ),
    ])
  }
  let text = bytes.toString('utf8')
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex')
  // Line by line: one regex over the whole text with nested quantifiers
  // backtracks exponentially on leading blank lines (20 took minutes).
  if (text.split('\n').every((l) => l.trim() === '' || l.trim().startsWith('#'))) {
    throw new ConfigError([at(file, 'the file is empty; it needs at least "apiVersion: mirror-appliance/v1"')])
  }

  const lines = text.split(/\r?\n/)
  // The YAML parser recurses per nesting level and overflows the stack some
  // hundreds of levels down, at a depth that varies: refuse deep nesting first.
  const deep = deepNesting(lines)
  if (deep) throw new ConfigError([at(file, deep.message, deep.line, deep.col, [], lines[deep.line - 1])])
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true })
  const place = (offset: number) => {
    const { line, col } = lc.linePos(offset)
    return { line, col, source: lines[line - 1] }
  }
  const diagnostics: Diagnostic[] = []
  for (const e of doc.errors) {
    let offset = e.pos[0]
    let msg = e.message.split('\n')[0]!
    if (e.code === 'DUPLICATE_KEY') msg = 'duplicate key: a key may appear only once in a mapping'
    else if (e.code === 'MULTIPLE_DOCS') msg = 'a second YAML document starts here ("---"); a config is one document'
    else if (e.code === 'TAB_AS_INDENT') msg = 'tab used for indentation; YAML indents with spaces only'
    else if (e.code === 'MISSING_CHAR' && /quote/.test(msg)) {
      // yaml reports the end of the file; the user needs the opening quote.
      const open = unclosedQuote(doc, offset)
      if (open) [offset, msg] = [open.offset, `a quoted value starts here but its closing ${open.quote} is missing`]
    } else if (e.code === 'BAD_INDENT' && /end with a [\]}]/.test(msg)) {
      // Reported where the parser gave up (the next line); the mistake is the bracket left open.
      const close = msg.endsWith('}') ? '}' : ']'
      let open: number | undefined
      visit(doc, {
        Collection: (_k, n) => {
          if (n.flow && n.range && n.range[1] >= offset) return ((open = n.range[0]), visit.BREAK)
        },
      })
      if (open !== undefined) [offset, msg] = [open, `this ${close === '}' ? '{' : '['} is never closed with ${close}`]
    }
    const p = place(offset)
    diagnostics.push(at(file, msg, p.line, p.col, [], p.source))
  }
  if (diagnostics.length) throw new ConfigError(diagnostics)

  let input: unknown
  try {
    input = doc.toJS({ maxAliasCount: MAX_ALIASES })
  } catch (e) {
    const message = (e as Error).message
    const unresolved = /^Unresolved alias.*: (.*)$/.exec(message)?.[1]
    if (!unresolved && !/alias count/i.test(message)) throw e
    let first: number | undefined
    visit(doc, {
      Alias: (_k, n) => {
        if (!unresolved || n.source === unresolved) return ((first = n.range?.[0]), visit.BREAK)
      },
    })
    const p = place(first ?? 0)
    throw new ConfigError([
      at(
        file,
        unresolved
          ? `unknown alias *${unresolved}: there is no anchor &${unresolved} before it`
          : `YAML aliases (*name) expand to too much data (more than ${MAX_ALIASES} copies); write the values out`,
        p.line,
        p.col,
        [],
        p.source,
      ),
    ])
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    const p = place((doc.contents as Node | null)?.range?.[0] ?? 0)
    throw new ConfigError([
      at(
        file,
        'the top level must be a mapping (key: value lines), starting with "apiVersion: mirror-appliance/v1"',
        p.line,
        p.col,
        [],
        p.source,
      ),
    ])
  }

  const locate = (path: FieldPath, key = false) => place(offsetOf(doc, path, key))
  // Keys a build flag set: a finding about one names the flag, not a place in the file.
  let flagged: FlagSetting[] = []
  const flagOf = (path: FieldPath) => flagFor(path, flagged, input)
  const ruleDiagnostics = (found: RuleResult[]): Diagnostic[] =>
    found.map((r) => {
      const flag = flagOf(r.path)
      if (flag) return { file, line: 0, col: 0, path: r.path, message: r.message, severity: r.severity, flag }
      const p = locate(r.path, r.atKey ?? false)
      return { file, line: p.line, col: p.col, path: r.path, message: r.message, source: p.source, severity: r.severity }
    })
  if (!validateSchema(input)) {
    const errs = simplify(validateSchema.errors ?? [])
    for (const err of errs) {
      const { path, message, atKey } = describe(err)
      const p = locate(path, atKey)
      diagnostics.push(at(file, message, p.line, p.col, path, p.source))
    }
    diagnostics.push(...ruleDiagnostics(rulesDespite(input, errs, opts.baseDir)))
    throw new ConfigError(sortByPlace(diagnostics))
  }

  let typed = input as ConfigInput
  const fromFlags: RuleResult[] = []
  if (opts.build) {
    const merged = mergeBuildFlags(typed, opts.build)
    typed = merged.input
    flagged = [...merged.set, ...merged.problems]
    fromFlags.push(...merged.problems.map((p) => ({ path: p.path, message: p.message, severity: 'error' as const })))
  }
  const config = normalizeConfig(typed, { baseDir: opts.baseDir })
  const all = ruleDiagnostics([...fromFlags, ...checkRules(typed, config, { build: opts.build !== undefined })])
  const errors = all.filter((d) => d.severity === 'error')
  if (errors.length) throw new ConfigError(sortByPlace(all))
  return { config, input: typed, file, text, digest, warnings: all.filter((d) => d.severity === 'warning') }
}

/** One path is the other or inside it. */
function within(p: FieldPath, parent: FieldPath): boolean {
  return p.length >= parent.length && parent.every((s, i) => String(s) === String(p[i]))
}

function inFile(input: unknown, path: FieldPath): boolean {
  let node = input
  for (const seg of path) {
    if (node === null || typeof node !== 'object' || !(String(seg) in node)) return false
    node = (node as Record<string, unknown>)[String(seg)]
  }
  return true
}

/**
 * The flag a finding at `path` is about: the one that set that key, else the
 * switch that made the section it is in (--pxe for outputs.pxe.*), else, when
 * the file does not have the key, the flag that set a key inside it
 * (--iso for outputs.iso). Undefined: the finding has its place in the file.
 */
function flagFor(path: FieldPath, flagged: FlagSetting[], fileInput: unknown): string | undefined {
  const exact = flagged.find((s) => s.path.length === path.length && within(path, s.path))
  if (exact) return exact.flag
  const section = flagged.filter((s) => within(path, s.path)).sort((a, b) => b.path.length - a.path.length)[0]
  if (section) return section.flag
  return inFile(fileInput, path) ? undefined : flagged.find((s) => within(s.path, path))?.flag
}

/**
 * A diagnostic at a field of an already loaded config, for checks made after
 * loading (e.g. validate's look into the image cache): the same
 * file:line:col and source line the loader's own diagnostics have.
 */
export function diagnosticAt(
  loaded: Pick<LoadedConfig, 'file' | 'text'>,
  path: FieldPath,
  message: string,
  opts: { severity?: 'error' | 'warning'; atKey?: boolean } = {},
): Diagnostic {
  const lines = loaded.text.split(/\r?\n/)
  const lc = new LineCounter()
  const doc = parseDocument(loaded.text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true })
  const { line, col } = lc.linePos(offsetOf(doc, path, opts.atKey ?? false))
  return { file: loaded.file, line, col, path, message, source: lines[line - 1], severity: opts.severity ?? 'error' }
}

/**
 * All errors at once: when the schema fails, cut the failing fields out (a
 * whole list when the failure is inside one of its items, so indexes stay
 * right) and, if what is left passes the schema, run the cross-field rules on
 * it too. Rules only ever see schema-valid input. Their findings inside a cut
 * field are dropped, and so are findings about the cut field's direct parent
 * (`host.network: mode static needs "address"` when the address was cut):
 * they would only restate the cut. A finding further up is kept, even though
 * it may then miss a case: better one round too many than a false error.
 */
function rulesDespite(input: object, errs: ErrorObject[], baseDir: string): RuleResult[] {
  const cuts: FieldPath[] = []
  for (const err of errs) {
    let path = pathOf(err.instancePath)
    if (err.keyword === 'additionalProperties') path = [...path, (err.params as { additionalProperty: string }).additionalProperty]
    const item = path.findIndex((s) => typeof s === 'number')
    if (item >= 0) path = path.slice(0, item)
    if (path.length === 0) return []
    cuts.push(path)
  }
  const pruned = structuredClone(input) as Record<string, unknown>
  for (const cut of cuts) {
    let parent: unknown = pruned
    for (const seg of cut.slice(0, -1)) parent = (parent as Record<string, unknown> | undefined)?.[seg as string]
    if (parent !== null && typeof parent === 'object') delete (parent as Record<string, unknown>)[cut.at(-1) as string]
  }
  if (!validateSchema(pruned)) return []
  const typed = pruned as unknown as ConfigInput
  const restates = (r: FieldPath, cut: FieldPath) => within(r, cut) || (cut.length === r.length + 1 && within(cut, r))
  return checkRules(typed, normalizeConfig(typed, { baseDir }), { build: false }).filter((r) => !cuts.some((c) => restates(r.path, c)))
}

/** The quoted scalar left open where yaml reports a missing closing quote. */
function unclosedQuote(doc: Document, errorOffset: number): { offset: number; quote: string } | undefined {
  let found: { offset: number; quote: string } | undefined
  visit(doc, {
    Scalar: (_k, n) => {
      if ((n.type === Scalar.QUOTE_DOUBLE || n.type === Scalar.QUOTE_SINGLE) && n.range && n.range[1] >= errorOffset) {
        found = { offset: n.range[0], quote: n.type === Scalar.QUOTE_DOUBLE ? '"' : "'" }
        return visit.BREAK
      }
    },
  })
  return found
}

/** Nesting levels a config may use: it needs about six. */
export const MAX_NESTING = 64

/** The first place where flow brackets or indentation go deeper than MAX_NESTING, ignoring quotes and comments. */
function deepNesting(lines: string[]): { line: number; col: number; message: string } | undefined {
  let depth = 0
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const indent = line.length - line.trimStart().length
    const blank = line.trim() === '' || line.trimStart().startsWith('#')
    if (!blank && indent > MAX_NESTING * 4)
      return { line: i + 1, col: indent + 1, message: `indented ${indent} columns deep; a config nests at most ${MAX_NESTING} levels` }
    let quote = ''
    for (let j = 0; j < line.length; j++) {
      const c = line[j]!
      if (quote) {
        if (c === quote && !(quote === '"' && line[j - 1] === '\\')) quote = ''
      } else if (c === '"' || c === "'") quote = c
      else if (c === '#' && (j === 0 || /\s/.test(line[j - 1]!))) break
      else if (c === '[' || c === '{') {
        if (++depth > MAX_NESTING)
          return { line: i + 1, col: j + 1, message: `brackets nested more than ${MAX_NESTING} levels deep; a config needs a few` }
      } else if ((c === ']' || c === '}') && depth > 0) depth--
    }
  }
  return undefined
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
  // `rhel: 8.10` fails both `type: string` and the enum; the enum's message says it all.
  const enums = new Set(errors.filter((e) => e.keyword === 'enum' || e.keyword === 'const').map((e) => e.instancePath))
  // `apiversion:` is an unknown key whose hint names the missing `apiVersion`: one error, not two.
  const hinted = new Set(
    errors
      .filter((e) => e.keyword === 'additionalProperties')
      .map((e) => `${e.instancePath}|${didYouMean((e.params as { additionalProperty: string }).additionalProperty, knownKeys(e))}`),
  )
  const seen = new Set<string>()
  return errors.filter((e) => {
    if (combinators.has(e.instancePath) && e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && e.keyword !== 'additionalProperties')
      return false
    if (e.keyword === 'type' && enums.has(e.instancePath)) return false
    if (e.keyword === 'required' && hinted.has(`${e.instancePath}|${(e.params as { missingProperty: string }).missingProperty}`))
      return false
    const k = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

const knownKeys = (err: ErrorObject) => Object.keys((err.parentSchema as { properties?: object }).properties ?? {})

const typeName = (v: unknown) =>
  v === null ? 'empty' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`

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
      const known = knownKeys(err)
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
      // An empty value (`registry:` with everything below commented out) has no
      // node of its own: point at its key.
      return {
        path,
        message:
          `must be ${t
            .split(',')
            .map((x) => wanted[x] ?? x)
            .join(' or ')}, not ${typeName(err.data)}` + (err.data === null && t === 'object' ? '; give it fields or remove the key' : ''),
        atKey: err.data === null,
      }
    }
    case 'enum': {
      const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.map(String)
      if (typeof err.data === 'number') {
        // YAML reads `rhel: 8.10` as the number 8.1.
        const meant = allowed.find((a) => Number(a) === err.data)
        if (meant !== undefined) {
          return {
            path,
            message: `must be one of ${allowed.join(', ')}, not number ${err.data}; write it in quotes: "${meant}"`,
            atKey: false,
          }
        }
      }
      // No hint for version-like values: "9.4" is not a typo of "8.4".
      const guess = typeof err.data === 'string' && /[a-z]/i.test(err.data) ? didYouMean(err.data, allowed) : undefined
      return {
        path,
        message: `must be one of ${allowed.join(', ')}, not ${typeName(err.data)}` + (guess ? `; did you mean "${guess}"?` : ''),
        atKey: false,
      }
    }
    case 'minLength':
    case 'maxLength': {
      const limit = (err.params as { limit: number }).limit
      return { path, message: `must be at ${err.keyword === 'minLength' ? 'least' : 'most'} ${limit} characters long`, atKey: false }
    }
    case 'minItems':
    case 'maxItems': {
      const limit = (err.params as { limit: number }).limit
      return {
        path,
        message: `may have at ${err.keyword === 'minItems' ? 'least' : 'most'} ${limit} item${limit === 1 ? '' : 's'}`,
        atKey: false,
      }
    }
    case 'uniqueItems': {
      const { i, j } = err.params as { i: number; j: number }
      return {
        path: [...path, i],
        message: `repeats item ${j} (${JSON.stringify((err.data as unknown[])[i])}); list each once`,
        atKey: false,
      }
    }
    case 'const':
      return {
        path,
        message: `must be ${JSON.stringify((err.params as { allowedValue: unknown }).allowedValue)}, not ${typeName(err.data)}`,
        atKey: false,
      }
    case 'pattern':
      return { path, message: `${JSON.stringify(err.data)} is not valid` + (desc ? `: ${desc}` : ''), atKey: false }
    case 'oneOf': {
      const passing = (err.params as { passingSchemas: number[] | null }).passingSchemas
      const options = knownKeys(err)
      const given = options.filter((o) => err.data !== null && typeof err.data === 'object' && o in err.data)
      return {
        path,
        message: passing
          ? `give only one of: ${options.join(', ')} (found ${given.join(' and ')})`
          : `needs exactly one of: ${options.join(', ')}`,
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

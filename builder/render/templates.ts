// The one Handlebars environment every generated text comes from. Templates
// live in kickstart/ and templates/ at the repository root and are named by
// their path from there ('kickstart/ks.cfg.hbs', 'templates/quay/config.yaml.hbs').
// Every .hbs file under a `partials/` directory is also a partial, named by
// its path without .hbs: {{> kickstart/partials/network}}.
//
// Strict mode: a template that reads a field the data lacks throws instead of
// printing nothing. No HTML escaping: we write config files and scripts, and
// values are quoted explicitly with the helpers below.
//
// Helpers:
//   {{shq v}}       bash word (builder/quote.ts shq)
//   {{ksq v}}       kickstart argument (builder/quote.ts ksq)
//   {{octal m}}     0o644 -> 0644
//   {{json v}}      JSON.stringify(v), all ASCII (\uXXXX for the rest): also a
//                   YAML double-quoted scalar, safe on any line
//   {{join list sep}}  list.join(sep) (sep defaults to ",")
//   {{#each (base64Lines contents)}}  contents as base64 lines
//   {{eq a b}}      a === b, for {{#if (eq …)}}
//
// Static files live beside the templates with no template syntax at all
// (templates/host/: the host's shell library and scripts, which bash -n,
// shellcheck and the tests read as they are); staticFile() returns them.

import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import Handlebars from 'handlebars'
import { base64Lines, curlq, ksq, octal, shq } from '../quote.js'

/** Repository root: the directory holding kickstart/ and templates/. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TEMPLATE_DIRS = ['kickstart', 'templates']

let env: typeof Handlebars | undefined
const compiled = new Map<string, HandlebarsTemplateDelegate>()

function walk(dir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  return names.sort().flatMap((n) => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? walk(p) : [p]
  })
}

const toName = (file: string) => relative(REPO_ROOT, file).split(sep).join('/')

function environment(): typeof Handlebars {
  if (env) return env
  const hb = Handlebars.create()
  // Strict mode does not cover helper arguments: a missing value would print
  // "undefined", so each helper refuses it.
  const defined = (helper: string, v: unknown) => {
    if (v === undefined || v === null) throw new Error(`{{${helper}}}: missing value`)
    return v
  }
  hb.registerHelper('shq', (v: unknown) => shq(String(defined('shq', v))))
  hb.registerHelper('ksq', (v: unknown) => ksq(String(defined('ksq', v))))
  hb.registerHelper('curlq', (v: unknown) => curlq(String(defined('curlq', v))))
  hb.registerHelper('octal', (m: unknown) => octal(Number(defined('octal', m))))
  hb.registerHelper('json', (v: unknown) =>
    JSON.stringify(defined('json', v)).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')),
  )
  hb.registerHelper('join', (list: unknown, sepArg: unknown) => (list as unknown[]).join(typeof sepArg === 'string' ? sepArg : ','))
  hb.registerHelper('base64Lines', (v: unknown) => base64Lines(defined('base64Lines', v) as string | Buffer))
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b)
  for (const d of TEMPLATE_DIRS)
    for (const file of walk(join(REPO_ROOT, d)))
      if (file.endsWith('.hbs') && file.split(sep).includes('partials'))
        hb.registerPartial(toName(file).replace(/\.hbs$/, ''), readFileSync(file, 'utf8'))
  env = hb
  return hb
}

const statics = new Map<string, string>()

/** A static file under templates/ (no template syntax), by its path from the repository root; read once. */
export function staticFile(name: string): string {
  let text = statics.get(name)
  if (text === undefined) {
    if (!name.startsWith('templates/') || name.includes('..') || name.endsWith('.hbs'))
      throw new Error(`static file name must be under templates/ and not a .hbs template: ${name}`)
    text = readFileSync(join(REPO_ROOT, name), 'utf8')
    statics.set(name, text)
  }
  return text
}

/**
 * Render a template by its path from the repository root, e.g.
 * renderTemplate('kickstart/ks.cfg.hbs', data). Throws when the template reads
 * a field `data` does not have.
 */
export function renderTemplate(name: string, data: object): string {
  const hb = environment()
  let t = compiled.get(name)
  if (!t) {
    if (!TEMPLATE_DIRS.some((d) => name.startsWith(d + '/')) || name.includes('..'))
      throw new Error(`template name must be under ${TEMPLATE_DIRS.join('/ or ')}/: ${name}`)
    t = hb.compile(readFileSync(join(REPO_ROOT, name), 'utf8'), { strict: true, noEscape: true })
    compiled.set(name, t)
  }
  return t(data)
}

// Errors that point into the config file: `file:line:col field.path: sentence`,
// then the line itself and a caret under the column (butane's report style).
// A key a build flag set has no place in the file: `file: field.path (--flag):
// sentence` (flags.ts).

import { UserError } from '../errors.js'

export type FieldPath = (string | number)[]

export interface Diagnostic {
  file: string
  /** 1-based; 0 when the problem has no place in the file (e.g. the file is empty) */
  line: number
  col: number
  path: FieldPath
  message: string
  /** The source line, for the caret display */
  source?: string
  severity: 'error' | 'warning'
  /** The build flag that set this key (without dashes); line and col are then 0 */
  flag?: string
}

/** `host.users[0].name` */
export function formatPath(path: FieldPath): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p
  return out
}

export function formatDiagnostic(d: Diagnostic, opts: { caret?: boolean } = {}): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : `${d.file}:`
  const field = d.path.length ? ` ${formatPath(d.path)}${d.flag ? ` (--${d.flag})` : ''}:` : ''
  const prefix = d.severity === 'warning' ? ' warning:' : ''
  let out = `${where}${prefix}${field} ${d.message}`
  if (opts.caret !== false && d.source !== undefined && d.line > 0) {
    const shown = d.source.length > 160 ? d.source.slice(0, 160) + '…' : d.source
    const gutter = `${d.line} | `
    out += `\n  ${gutter}${shown}\n  ${' '.repeat(gutter.length + Math.max(0, Math.min(d.col - 1, 160)))}^`
  }
  return out
}

/** Invalid config: carries every diagnostic; exit code 2. */
export class ConfigError extends UserError {
  constructor(readonly diagnostics: Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === 'error')
    super(
      errors.map((d) => formatDiagnostic(d)).join('\n') +
        `\n${errors.length} error${errors.length === 1 ? '' : 's'} in ${errors[0]?.file ?? 'config'}`,
    )
    this.name = 'ConfigError'
  }
}

// The one place where a value becomes text on a shell line or a kickstart
// command line. Every value from the config that reaches ks.cfg, a %post body
// or a generated script goes through one of these functions.
//
// Two consumers, two sets of rules:
// - bash (%post bodies, first-boot scripts): POSIX single quotes, and bash's
//   $'…' with \xHH escapes for anything that would break a line.
// - pykickstart, which Anaconda uses to read ks.cfg: it splits the file with
//   Python's str.splitlines() (so \r, \v, \f, \x1c-\x1e, \x85, U+2028 and
//   U+2029 end a line as well as \n), preprocesses every line starting with
//   %ksappend, and splits each command line with shlex.split(line,
//   comments=True) in POSIX mode, where a # starts a comment even in the
//   middle of a word. A value with a line break can never be one kickstart
//   argument, so it is refused, naming the field.

import { UserError } from './errors.js'

/** Characters after which Python's str.splitlines() starts a new line. */
const LINE_BREAKS = /[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/
/** Control characters (C0, DEL, C1) and the Unicode line/paragraph separators. */
const UNPRINTABLE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/

/** Throw a UserError naming `field` unless `value` can sit on one kickstart line. */
export function assertOneLine(value: string, field: string): void {
  if (value.includes('\0')) throw new UserError(`${field}: contains a NUL character, which no kickstart or shell line can carry`)
  if (LINE_BREAKS.test(value)) throw new UserError(`${field}: contains a line break, which a kickstart command line cannot carry`)
  if (UNPRINTABLE.test(value)) throw new UserError(`${field}: contains a control character, which a kickstart command line cannot carry`)
}

/**
 * Quote one word for bash. Plain text gets POSIX single quotes ('it'\''s');
 * text with control characters or line separators gets bash's $'…' with every
 * byte outside printable ASCII written as \xHH, so the result is always one
 * line of ASCII-safe text and carries the exact bytes (UTF-8). NUL cannot be
 * carried by any shell word and is refused.
 *
 * Output of the $'…' form needs bash (our %post sections and scripts are bash).
 */
export function shq(value: string, field = 'value'): string {
  if (value.includes('\0')) throw new UserError(`${field}: contains a NUL character, which a shell word cannot carry`)
  if (!UNPRINTABLE.test(value)) return `'${value.replace(/'/g, `'\\''`)}'`
  let out = "$'"
  for (const byte of Buffer.from(value, 'utf8')) {
    if (byte === 0x27) out += "\\'"
    else if (byte === 0x5c) out += '\\\\'
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte)
    else out += '\\x' + byte.toString(16).padStart(2, '0')
  }
  return out + "'"
}

/**
 * Quote a value for a curl config file (`curl -K`): double quotes, where curl
 * unescapes \\ and \" and takes every other byte (UTF-8 included) as it is.
 * JSON escapes such as \u00e4 are NOT understood there. One line only.
 */
export function curlq(value: string, field = 'value'): string {
  assertOneLine(value, field)
  return `"${value.replace(/[\\"]/g, (c) => '\\' + c)}"`
}

/** Words that shlex leaves alone and that need no quotes on a kickstart line. */
const KS_BARE = /^[A-Za-z0-9_@%+=:,./-]+$/

/**
 * Quote one kickstart command argument (or the value after `--option=`) so that
 * pykickstart's shlex.split(line, comments=True) gives back exactly `value`.
 * Safe words stay bare; anything else is put in double quotes, where POSIX
 * shlex treats only \ before " or \ as an escape and # as a plain character.
 */
export function ksq(value: string, field = 'value'): string {
  assertOneLine(value, field)
  if (value !== '' && KS_BARE.test(value) && !value.startsWith('%')) return value
  return `"${value.replace(/[\\"]/g, (c) => '\\' + c)}"`
}

/** Contents as base64 lines (76 columns): no quoting needed, never a line starting with %. */
export function base64Lines(contents: string | Buffer, width = 76): string[] {
  const b64 = (typeof contents === 'string' ? Buffer.from(contents, 'utf8') : contents).toString('base64')
  const lines: string[] = []
  for (let i = 0; i < b64.length; i += width) lines.push(b64.slice(i, i + width))
  return lines
}

/** A literal string as an extended (POSIX ERE) regex, as semanage fcontext expects. */
export function regexEscape(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, (c) => '\\' + c)
}

/** A permission mode as four octal digits, e.g. 0o644 -> "0644". */
export function octal(mode: number): string {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new Error(`not a file mode: ${mode}`)
  return mode.toString(8).padStart(4, '0')
}

import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { tempBeside } from '../atomic.js'
import { UserError } from '../errors.js'
import { EXAMPLE_PATH, SCHEMA_PATH } from '../config/load.js'
import type { Ctx } from '../context.js'

/**
 * The schema's file name beside a config written by init. The example's first
 * line, `# yaml-language-server: $schema=./mirror-appliance.schema.json`,
 * names it relative to the config, and yaml-language-server (VS Code's YAML
 * extension and other editors using it) resolves a relative `$schema` against
 * the YAML file's own directory; so the line works wherever the config lives,
 * offline, and checks against the schema of the version that will build it.
 */
export const SCHEMA_FILE_NAME = 'mirror-appliance.schema.json'

/**
 * Write the commented example config, never replacing a file without --force,
 * and beside it the schema its `$schema` line names. The schema is always
 * replaced: it belongs to this version, not to the user.
 */
export async function init(opts: { output: string; force: boolean }, ctx: Ctx): Promise<number> {
  const text = readFileSync(EXAMPLE_PATH)
  const schemaFile = join(dirname(opts.output), SCHEMA_FILE_NAME)
  // The schema goes to a temp file first and is renamed into place only once
  // the config is written: a refused or failed init leaves neither behind.
  const schemaTmp = tempBeside(schemaFile)
  try {
    writeNew(schemaTmp, readFileSync(SCHEMA_PATH), `${opts.output}: cannot write into ${dirname(opts.output)}`)
    writeConfig(opts.output, text, opts.force)
    renameSync(schemaTmp, schemaFile)
  } finally {
    rmSync(schemaTmp, { force: true })
  }
  if (ctx.json) ctx.out(JSON.stringify({ written: opts.output, schema: schemaFile }))
  else
    ctx.log.info(
      `wrote ${opts.output} and ${schemaFile} (the schema editors check it against); edit it, then: mirror-appliance validate -c ${opts.output}`,
    )
  return 0
}

function writeConfig(output: string, text: Buffer, force: boolean): void {
  if (force) {
    const tmp = tempBeside(output)
    try {
      writeNew(tmp, text, `${output}: cannot write into ${dirname(output)}`)
      renameSync(tmp, output)
    } finally {
      rmSync(tmp, { force: true })
    }
    return
  }
  let fd: number
  try {
    fd = openSync(output, 'wx', 0o644)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UserError(`${output} already exists; not overwriting it`, 'use --force to replace it, or -o to write elsewhere')
    }
    throw new UserError(`${output}: cannot write (${(e as NodeJS.ErrnoException).code})`)
  }
  try {
    writeSync(fd, text)
  } finally {
    closeSync(fd)
  }
}

/** Create `path` (mode 0644) holding `data`; a failure to open it is the user's to fix (a missing or read-only directory). */
function writeNew(path: string, data: Buffer, what: string): void {
  let fd: number
  try {
    fd = openSync(path, 'w', 0o644)
  } catch (e) {
    throw new UserError(`${what} (${(e as NodeJS.ErrnoException).code})`)
  }
  try {
    writeSync(fd, data)
  } finally {
    closeSync(fd)
  }
}

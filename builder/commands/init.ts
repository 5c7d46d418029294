import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { UserError } from '../errors.js'
import { EXAMPLE_PATH } from '../config/load.js'
import type { Ctx } from '../cli.js'

/** Write the commented example config; never replace a file without --force. */
export async function init(opts: { output: string; force: boolean }, ctx: Ctx): Promise<number> {
  const text = readFileSync(EXAMPLE_PATH)
  if (opts.force) {
    const tmp = `${opts.output}.tmp-${process.pid}`
    try {
      const fd = openSync(tmp, 'w', 0o644)
      writeSync(fd, text)
      closeSync(fd)
      renameSync(tmp, opts.output)
    } finally {
      rmSync(tmp, { force: true })
    }
  } else {
    let fd: number
    try {
      fd = openSync(opts.output, 'wx', 0o644)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new UserError(`${opts.output} already exists; not overwriting it`, 'use --force to replace it, or -o to write elsewhere')
      }
      throw new UserError(`${opts.output}: cannot write (${(e as NodeJS.ErrnoException).code})`)
    }
    try {
      writeSync(fd, text)
    } finally {
      closeSync(fd)
    }
  }
  if (ctx.json) ctx.out(JSON.stringify({ written: opts.output }))
  else ctx.log.info(`wrote ${opts.output}; edit it, then: mirror-appliance validate -c ${opts.output}`)
  return 0
}

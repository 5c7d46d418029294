import { readFileSync } from 'node:fs'
import { SCHEMA_PATH } from '../config/load.js'
import type { Ctx } from '../context.js'

/**
 * Print the config format's JSON schema exactly as the package ships it (the
 * file `validate` compiles), so a copy saved for an editor never differs from
 * what the build checks.
 */
export async function schema(ctx: Ctx): Promise<number> {
  ctx.out(readFileSync(SCHEMA_PATH, 'utf8'))
  return 0
}

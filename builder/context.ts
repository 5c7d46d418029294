// The ground floor: what every layer of the builder may need and no layer
// owns. The command context handed to each command, the version, and where
// the image cache lives by default. It imports nothing of the builder but
// the logger, so anything may import it without reaching up the house
// (test/import-graph.test.ts keeps the builder's imports free of cycles).

import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from './log.js'

/** This package's version (package.json), written into manifests and the host's mirror-registryctl. */
export const VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string })
  .version

/** What every command gets from the command line's entry. */
export interface Ctx {
  log: Logger
  json: boolean
  /** Aborted on SIGINT/SIGTERM */
  signal: AbortSignal
  /** Print the command's result (JSON mode: one document on stdout) */
  out: (text: string) => void
}

/** The image cache: $MIRROR_APPLIANCE_CACHE, else $XDG_CACHE_HOME/mirror-appliance/oci, else ~/.cache/mirror-appliance/oci. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MIRROR_APPLIANCE_CACHE) return resolve(env.MIRROR_APPLIANCE_CACHE)
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mirror-appliance', 'oci')
}

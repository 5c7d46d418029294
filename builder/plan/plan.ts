// planAppliance: the normalized config plus everything derived before any
// text is rendered — secrets (reused from an earlier build's secrets/), the
// PKI, and the host spec that every renderer reads.

import type { LoadedConfig } from '../config/load.js'
import type { Config } from '../config/types.js'
import { DEFAULT_CONFIG_NAME } from '../config/load.js'
import { dirname, resolve } from 'node:path'
import { registryHostSpec } from '../registry/hostspec.js'
import { planPki } from './pki.js'
import { seededRng, systemRng } from './random.js'
import { planSecrets, readStoredSecrets, type StoredSecrets } from './secrets.js'
import type { BuildOptions, Plan } from './types.js'
import { registryctlHostFile } from '../bundle/ctl.js'
import { resolveStack, type StackImage } from '../payload/lock.js'

export interface PlanResult {
  plan: Plan
  /** What secrets/secrets.json must hold after this build */
  stored: StoredSecrets
}

/** SOURCE_DATE_EPOCH if set (reproducible builds), else now. */
export function buildEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.SOURCE_DATE_EPOCH
  if (v === undefined || v === '') return Math.floor(Date.now() / 1000)
  if (!/^\d{1,12}$/.test(v)) throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds, not ${JSON.stringify(v)}`)
  return Number(v)
}

/**
 * `stack`: the resolved stack images when the caller has them already (a
 * build resolves them once, for the payload and the plan); default
 * resolveStack(config).
 */
export function planAppliance(loaded: LoadedConfig, options: BuildOptions & { secretsDir?: string; stack?: StackImage[] }): PlanResult {
  const rng = options.seed !== undefined ? seededRng(options.seed) : systemRng
  const previous = options.secretsDir ? readStoredSecrets(options.secretsDir) : undefined
  const { secrets, stored } = planSecrets(loaded.config, rng, previous)
  const configDir = loaded.file === DEFAULT_CONFIG_NAME ? process.cwd() : dirname(resolve(loaded.file))
  const pki = planPki({
    config: loaded.config,
    rng,
    epoch: options.epoch,
    configDir,
    ...(stored.caCertPem && stored.caKeyPem ? { existing: { caCertPem: stored.caCertPem, caKeyPem: stored.caKeyPem } } : {}),
    ...(stored.serverCertPem && stored.serverKeyPem ? { existingServer: { serverCertPem: stored.serverCertPem, serverKeyPem: stored.serverKeyPem } } : {}),
  })
  if (pki.caKeyPem) {
    // Generated PKI: kept for the next build into the same output (provided certificates are the user's files).
    stored.caCertPem = pki.caCertPem
    stored.caKeyPem = pki.caKeyPem
    stored.serverCertPem = pki.serverCertPem
    stored.serverKeyPem = pki.serverKeyPem
  }
  const stack = options.stack ?? resolveStack(loaded.config)
  const host = registryHostSpec({ config: loaded.config, secrets, pki, stack })
  return { plan: finishPlan(loaded, loaded.config, options, { secrets, pki, host, stack }), stored }
}

/**
 * The Plan of one host from its parts (also for each host of a fleet): the
 * same fields, and mirror-registryctl for day 2 on every appliance, computed
 * from the finished host spec.
 */
export function finishPlan(loaded: LoadedConfig, config: Config, options: BuildOptions, parts: Pick<Plan, 'secrets' | 'pki' | 'host' | 'stack'>): Plan {
  const plan: Plan = {
    config,
    configPath: loaded.file === DEFAULT_CONFIG_NAME ? DEFAULT_CONFIG_NAME : resolve(loaded.file),
    configDigest: loaded.digest,
    options: { epoch: options.epoch, ...(options.seed !== undefined ? { seed: options.seed } : {}) },
    ...parts,
  }
  plan.host.files.push(registryctlHostFile(plan))
  return plan
}

// The plan of a host: the normalized config plus everything derived before
// any text is rendered — secrets (reused from an earlier build's secrets/),
// the PKI, and the host spec that every renderer reads. planHost is that
// sequence for any host; planAppliance is a site of one (its CA kept in its
// own secrets.json); a whole site, fleets included, is planned by planSite
// (site.ts), which calls planHost for each host.

import type { LoadedConfig } from '../config/load.js'
import type { Config } from '../config/types.js'
import { DEFAULT_CONFIG_NAME } from '../config/load.js'
import { dirname, resolve } from 'node:path'
import { registryHostSpec } from '../registry/hostspec.js'
import type { StorageCredentials } from '../registry/storage.js'
import { planPki } from './pki.js'
import { seededRng, systemRng, type Rng } from './random.js'
import { planSecrets, readStoredSecrets, type StoredCa, type StoredSecrets } from './secrets.js'
import type { BuildOptions, Plan } from './types.js'
import { resolveStack, type StackImage } from '../payload/lock.js'

export interface PlanResult {
  plan: Plan
  /** What this host's secrets.json must hold after this build */
  stored: StoredSecrets
}

/** SOURCE_DATE_EPOCH if set (reproducible builds), else now. */
export function buildEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.SOURCE_DATE_EPOCH
  if (v === undefined || v === '') return Math.floor(Date.now() / 1000)
  if (!/^\d{1,12}$/.test(v)) throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds, not ${JSON.stringify(v)}`)
  return Number(v)
}

/** The directory relative certificate paths and messages are resolved against. */
export function configDirOf(loaded: Pick<LoadedConfig, 'file'>): string {
  return loaded.file === DEFAULT_CONFIG_NAME ? process.cwd() : dirname(resolve(loaded.file))
}

/** Random values for a plan: from the seed (tests, demos) or from the system. */
export function rngFor(seed: string | undefined): Rng {
  return seed !== undefined ? seededRng(seed) : systemRng
}

export interface PlanHostInput {
  /** This host's normalized config */
  config: Config
  options: BuildOptions
  rng: Rng
  /** What an earlier build stored for this host */
  previous?: StoredSecrets | undefined
  /**
   * The CA the site's hosts share (a fleet's, stored once for all of them):
   * never in this host's stored secrets. Absent: the host's own CA, kept in
   * its secrets.json (a site of one).
   */
  siteCa?: StoredCa
  stack: StackImage[]
  /** Object storage keys, read once for a whole site */
  storageCredentials?: StorageCredentials
}

/**
 * One host: its secrets (reused from `previous`), its PKI (the stored server
 * certificate kept while it fits) and its host spec, as one Plan.
 */
export function planHost(loaded: LoadedConfig, h: PlanHostInput): PlanResult {
  const { config, rng } = h
  const { secrets, stored } = planSecrets(config, rng, h.previous)
  if (h.siteCa) {
    delete stored.caCertPem
    delete stored.caKeyPem
  }
  const ownCa = stored.caCertPem && stored.caKeyPem ? { caCertPem: stored.caCertPem, caKeyPem: stored.caKeyPem } : undefined
  const existing = h.siteCa ?? ownCa
  const pki = planPki({
    config,
    rng,
    epoch: h.options.epoch,
    configDir: configDirOf(loaded),
    ...(existing ? { existing } : {}),
    ...(stored.serverCertPem && stored.serverKeyPem
      ? { existingServer: { serverCertPem: stored.serverCertPem, serverKeyPem: stored.serverKeyPem } }
      : {}),
  })
  if (pki.caKeyPem) {
    // Generated PKI: kept for the next build into the same output (provided certificates are the user's files).
    if (!h.siteCa) {
      stored.caCertPem = pki.caCertPem
      stored.caKeyPem = pki.caKeyPem
    }
    stored.serverCertPem = pki.serverCertPem
    stored.serverKeyPem = pki.serverKeyPem
  }
  const host = registryHostSpec({
    config,
    secrets,
    pki,
    stack: h.stack,
    ...(h.storageCredentials ? { storageCredentials: h.storageCredentials } : {}),
  })
  return { plan: finishPlan(loaded, config, h.options, { secrets, pki, host, stack: h.stack }), stored }
}

/**
 * A site of one: the config's own host, its secrets in secretsDir/secrets.json.
 * `stack`: the resolved stack images when the caller has them already (a
 * build resolves them once, for the payload and the plan); default
 * resolveStack(config).
 */
export function planAppliance(loaded: LoadedConfig, options: BuildOptions & { secretsDir?: string; stack?: StackImage[] }): PlanResult {
  return planHost(loaded, {
    config: loaded.config,
    options,
    rng: rngFor(options.seed),
    previous: options.secretsDir ? readStoredSecrets(options.secretsDir) : undefined,
    stack: options.stack ?? resolveStack(loaded.config),
  })
}

/** The Plan of one host from its parts: the same fields for every host. */
export function finishPlan(
  loaded: LoadedConfig,
  config: Config,
  options: BuildOptions,
  parts: Pick<Plan, 'secrets' | 'pki' | 'host' | 'stack'>,
): Plan {
  return {
    config,
    configPath: loaded.file === DEFAULT_CONFIG_NAME ? DEFAULT_CONFIG_NAME : resolve(loaded.file),
    configDigest: loaded.digest,
    options: { epoch: options.epoch, ...(options.seed !== undefined ? { seed: options.seed } : {}) },
    ...parts,
  }
}

// planSite: every host of the config planned once, before anything is
// rendered. A site of one is planned as every single-host build always was:
// its CA and keys in secrets/secrets.json, its random values from the seed
// itself, so existing outputs rebuild byte for byte. A fleet shares ONE CA,
// so clients that trust one host trust them all: it is kept in
// secrets/fleet-ca.json and made for every host's names; each host keeps its
// own values and server certificate in secrets/hosts/<hostname>/ (the
// certificate reissued only when that host's names, the validity or the CA
// change). With a seed every fleet host draws from its own stream
// (`seed/fleet/<hostname>`), so adding a host changes no other host's
// secrets or keys.

import { join } from 'node:path'
import type { LoadedConfig } from '../config/load.js'
import { siteHosts, type SiteHost } from '../config/site.js'
import { resolveStack, type StackImage } from '../payload/lock.js'
import { readStorageCredentials } from '../registry/storage.js'
import { configDirOf, planAppliance, planHost, rngFor, type PlanResult } from './plan.js'
import { caScope, planPki } from './pki.js'
import { readFleetCa, readStoredSecrets, type StoredCa } from './secrets.js'
import type { BuildOptions } from './types.js'

export type SiteHostPlan = SiteHost & PlanResult

export interface SitePlan {
  /** Built from fleet.hosts (outputs under hosts/<name>/), or a site of one */
  fleet: boolean
  hosts: SiteHostPlan[]
  /** A fleet's CA, stored once for all its hosts; absent for a site of one (its CA is in its own secrets) */
  sharedCa?: StoredCa
}

export interface PlanSiteOptions extends BuildOptions {
  /** secrets/ of an earlier build into the same output, reused */
  secretsDir?: string
  /** The resolved stack images, when the caller has them already */
  stack?: StackImage[]
}

export function planSite(loaded: LoadedConfig, options: PlanSiteOptions): SitePlan {
  const hosts = siteHosts(loaded)
  const stack = options.stack ?? resolveStack(loaded.config)
  if (!loaded.config.fleet) return { fleet: false, hosts: [{ ...hosts[0]!, ...planAppliance(loaded, { ...options, stack }) }] }

  const seeded = (purpose: string) => rngFor(options.seed !== undefined ? `${options.seed}/${purpose}` : undefined)
  const storage = loaded.config.registry.storage
  // The keys are read once for the whole fleet.
  const storageCredentials = storage ? readStorageCredentials(storage) : undefined
  const sharedCa = (options.secretsDir ? readFleetCa(options.secretsDir) : undefined) ?? fleetCa(loaded, hosts, options, seeded('fleet-ca'))
  return {
    fleet: true,
    sharedCa,
    hosts: hosts.map((h) => ({
      ...h,
      ...planHost(loaded, {
        config: h.config,
        options,
        rng: seeded(`fleet/${h.hostname}`),
        previous: options.secretsDir ? readStoredSecrets(join(options.secretsDir, h.dir)) : undefined,
        siteCa: sharedCa,
        stack,
        ...(storageCredentials ? { storageCredentials } : {}),
      }),
    })),
  }
}

/** A new CA for the fleet: its name constraints cover every host's names and addresses. */
function fleetCa(loaded: LoadedConfig, hosts: SiteHost[], options: BuildOptions, rng: ReturnType<typeof rngFor>): StoredCa {
  // planPki makes a CA and a server certificate; the first host's certificate is made again with its own stream.
  const pki = planPki({
    config: hosts[0]!.config,
    caScope: caScope(hosts.map((h) => h.config)),
    rng,
    epoch: options.epoch,
    configDir: configDirOf(loaded),
  })
  return { caCertPem: pki.caCertPem, caKeyPem: pki.caKeyPem! }
}

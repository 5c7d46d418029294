// A fleet: one config whose `host` section is the template and whose
// `fleet.hosts` list the machines. Each host gets its own plan (hostname,
// static address bound to its MAC, disk, secrets, server certificate) and
// all of them share ONE CA, so clients that trust one site trust them all.
//
// Secrets are reused across rebuilds like a single appliance's: the CA in
// secrets/fleet-ca.json, each host's generated values and its server
// certificate and key in secrets/hosts/<hostname>/secrets.json (the
// certificate reissued only when that host's names, the validity or the CA
// change, exactly as for one appliance). With a seed (tests, demos) every
// host draws from its own stream (`seed/fleet/<hostname>`), so adding a host
// changes no other host's secrets or keys.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { DEFAULT_CONFIG_NAME, type LoadedConfig } from '../config/load.js'
import { prefixToNetmask } from '../config/normalize.js'
import type { Config, FleetHost } from '../config/types.js'
import { UserError } from '../errors.js'
import { caScope, planPki } from '../plan/pki.js'
import { finishPlan } from '../plan/plan.js'
import { seededRng, systemRng, type Rng } from '../plan/random.js'
import { planSecrets, readStoredSecrets, type StoredSecrets } from '../plan/secrets.js'
import type { Plan } from '../plan/types.js'
import { registryHostSpec } from '../registry/hostspec.js'
import { resolveStack, type StackImage } from '../payload/lock.js'
import { readStorageCredentials, type StorageCredentials } from '../registry/storage.js'

export const FLEET_CA_FILE = 'fleet-ca.json'

export interface FleetMember {
  host: FleetHost
  plan: Plan
  /** What secrets/hosts/<hostname>/secrets.json must hold (no CA: that is fleet-wide) */
  stored: StoredSecrets
}

export interface FleetPlan {
  ca: { caCertPem: string; caKeyPem: string }
  members: FleetMember[]
}

/** The normalized config of one fleet host: the template with this host's facts. */
export function fleetHostConfig(config: Config, h: FleetHost, prefixGiven: boolean): Config {
  const base = config.host
  const storage = config.registry.storage
  return {
    ...config,
    host: {
      ...base,
      hostname: h.hostname,
      shortName: h.hostname.split('.')[0]!,
      network: {
        mode: 'static',
        ...(h.interface ? { interface: h.interface } : {}),
        mac: h.mac,
        address: h.address,
        prefix: h.prefix,
        netmask: prefixToNetmask(h.prefix),
        ...(h.gateway ? { gateway: h.gateway } : {}),
        dns: base.network.dns,
        searchDomains: base.network.searchDomains,
      },
      disk: { ...base.disk, device: h.disk ?? base.disk.device },
    },
    registry: {
      ...config.registry,
      initUser: {
        ...config.registry.initUser,
        // the default e-mail names the host; a given one is kept
        email: config.registry.initUser.email.endsWith(`@${base.hostname}`) ? `${config.registry.initUser.name}@${h.hostname}` : config.registry.initUser.email,
      },
      // hosts sharing a bucket keep apart under their own prefix unless the config set one
      ...(storage ? { storage: { ...storage, prefix: prefixGiven ? storage.prefix : h.hostname } } : {}),
    },
    fleet: undefined,
  }
}

function readFleetCa(secretsDir: string | undefined): { caCertPem: string; caKeyPem: string } | undefined {
  if (!secretsDir) return undefined
  const file = join(secretsDir, FLEET_CA_FILE)
  if (!existsSync(file)) return undefined
  try {
    const j = JSON.parse(readFileSync(file, 'utf8')) as { version: number; caCertPem: string; caKeyPem: string }
    if (j.version !== 1 || typeof j.caCertPem !== 'string' || typeof j.caKeyPem !== 'string') throw new Error('unknown format')
    return { caCertPem: j.caCertPem, caKeyPem: j.caKeyPem }
  } catch (e) {
    throw new UserError(`${file}: cannot read the fleet CA (${(e as Error).message})`, 'restore it from a backup; every host of the fleet is signed by it')
  }
}

export function planFleet(loaded: LoadedConfig, options: { epoch: number; seed?: string; secretsDir?: string; stack?: StackImage[] }): FleetPlan {
  const config = loaded.config
  const hosts = config.fleet?.hosts
  if (!hosts?.length) throw new Error('planFleet: the config has no fleet.hosts')
  const rngFor = (purpose: string): Rng => (options.seed !== undefined ? seededRng(`${options.seed}/${purpose}`) : systemRng)
  const configDir = loaded.file === DEFAULT_CONFIG_NAME ? process.cwd() : dirname(resolve(loaded.file))
  const prefixGiven = loaded.input.registry?.storage?.prefix !== undefined
  // Keys are read once for the whole fleet.
  const creds: StorageCredentials | undefined = config.registry.storage ? readStorageCredentials(config.registry.storage) : undefined
  const configs = hosts.map((h) => fleetHostConfig(config, h, prefixGiven))
  // One stack for every host (the lock with the config's registry.images), resolved once.
  const stack = options.stack ?? resolveStack(config)

  let ca = readFleetCa(options.secretsDir)
  if (!ca) {
    // one CA for the fleet: its name constraints cover every host's names and addresses
    const first = planPki({ config: configs[0]!, caScope: caScope(configs), rng: rngFor('fleet-ca'), epoch: options.epoch, configDir })
    ca = { caCertPem: first.caCertPem, caKeyPem: first.caKeyPem! }
  }

  const members = hosts.map((h, i) => {
    const hostConfig = configs[i]!
    const rng = rngFor(`fleet/${h.hostname}`)
    const previous = options.secretsDir ? readStoredSecrets(join(options.secretsDir, 'hosts', h.hostname)) : undefined
    const { secrets, stored } = planSecrets(hostConfig, rng, previous)
    delete stored.caCertPem
    delete stored.caKeyPem
    const existingServer = stored.serverCertPem && stored.serverKeyPem ? { serverCertPem: stored.serverCertPem, serverKeyPem: stored.serverKeyPem } : undefined
    const pki = planPki({ config: hostConfig, rng, epoch: options.epoch, configDir, existing: ca, ...(existingServer ? { existingServer } : {}) })
    if (pki.caKeyPem) {
      stored.serverCertPem = pki.serverCertPem
      stored.serverKeyPem = pki.serverKeyPem
    }
    const host = registryHostSpec({ config: hostConfig, secrets, pki, stack, ...(creds ? { storageCredentials: creds } : {}) })
    const plan = finishPlan(loaded, hostConfig, options, { secrets, pki, host, stack })
    return { host: h, plan, stored }
  })
  return { ca, members }
}

/** The summary table the build prints (and writes to fleet.txt). */
export function fleetTable(rows: { hostname: string; role: string; address: string; mac: string; disk: string; medium: string }[]): string {
  const head = { hostname: 'HOST', role: 'ROLE', address: 'ADDRESS', mac: 'MAC', disk: 'DISK', medium: 'BOOT WITH' }
  const all = [head, ...rows]
  const cols = Object.keys(head) as (keyof typeof head)[]
  const width = Object.fromEntries(cols.map((c) => [c, Math.max(...all.map((r) => r[c].length))])) as Record<keyof typeof head, number>
  return all.map((r) => cols.map((c, i) => (i === cols.length - 1 ? r[c] : r[c].padEnd(width[c]))).join('  ')).join('\n') + '\n'
}

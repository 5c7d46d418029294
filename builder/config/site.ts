// A site: the hosts one config describes. Without `fleet` it is one host, the
// config's own; with `fleet` each of fleet.hosts is the `host` section (the
// template) with that host's facts. The plan, the render, the media and the
// manifest all go over this list (mkosi's run_verb over its images), so a
// single host is a fleet of one and nothing is written twice.

import { prefixToNetmask } from './normalize.js'
import type { LoadedConfig } from './load.js'
import type { Config, FleetHost } from './types.js'

export interface SiteHost {
  hostname: string
  /** The normalized config of this host: a fleet host's is the template with its facts */
  config: Config
  /** Its fleet.hosts entry; absent for a site of one */
  fleet?: FleetHost
  /**
   * Where its outputs go, relative to the output directory and to secrets/:
   * '' for a site of one (the flat layout of every single-host build),
   * hosts/<hostname> for a fleet's hosts.
   */
  dir: string
}

/** The hosts of the config: one, or one per fleet.hosts entry. */
export function siteHosts(loaded: Pick<LoadedConfig, 'config' | 'input'>): SiteHost[] {
  const config = loaded.config
  if (!config.fleet) return [{ hostname: config.host.hostname, config, dir: '' }]
  const prefixGiven = loaded.input.registry?.storage?.prefix !== undefined
  return config.fleet.hosts.map((h) => ({
    hostname: h.hostname,
    config: fleetHostConfig(config, h, prefixGiven),
    fleet: h,
    dir: `hosts/${h.hostname}`,
  }))
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
        email: config.registry.initUser.email.endsWith(`@${base.hostname}`)
          ? `${config.registry.initUser.name}@${h.hostname}`
          : config.registry.initUser.email,
      },
      // hosts sharing a bucket keep apart under their own prefix unless the config set one
      ...(storage ? { storage: { ...storage, prefix: prefixGiven ? storage.prefix : h.hostname } } : {}),
    },
    fleet: undefined,
  }
}

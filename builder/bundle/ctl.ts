// mirror-registryctl: the one bash script for installing onto an existing
// RHEL 8 host (from the bundle) and for day 2 on every appliance. Its
// configuration section is generated from the plan's host spec, so it names
// exactly the files, units and certificates first boot and the renderers use;
// the body is the template templates/bundle/mirror-registryctl.hbs.

import { VERSION } from '../context.js'
import { pinnedRef } from '../payload/lock.js'
import type { HostAccount, HostFile, Plan } from '../plan/types.js'
import { networkServiceName, podmanNetworkName } from '../registry/containers.js'
import { NETWORK } from '../registry/hostspec.js'
import * as L from '../registry/layout.js'
import { hasQuadlet, RHEL_PODMAN } from '../registry/quadlet-keys.js'
import { renderTemplate } from '../render/templates.js'

/** Where the script lives on a host (appliance or bundle install). */
export const REGISTRYCTL_PATH = '/usr/local/bin/mirror-registryctl'
/** What the bundle-installed host records about itself (data dir, version), read by day-2 commands. */
export const REGISTRYCTL_STATE = `${L.CONF_DIR}/registryctl.conf`

export interface CtlData {
  version: string
  flavor: string
  hostname: string
  shortName: string
  port: number
  dataDir: string
  quadlet: boolean
  podman: string
  units: string[]
  /** Plain units to enable (RHEL < 8.8); quadlet units are enabled by their [Install] section */
  enableUnits: string[]
  networkUnit: string
  podmanNetwork: string
  firewallPorts: string[]
  healthPath: string
  healthCode: number
  stackRefs: string[]
  initUser: string
  initEmail: string
  /** The account that reserves the container's uid (quay), or empty fields */
  account: { name: string; uid: string; gecos: string; home: string; shell: string }
  certFiles: string[]
  keyFiles: string[]
  caFiles: string[]
  sanDns: string[]
  sanIp: string[]
  certNotBefore: number
  unitFiles: string[]
  hostFiles: string[]
  paths: typeof L & { REGISTRYCTL_PATH: string; REGISTRYCTL_STATE: string }
}

const isUnitFile = (f: HostFile) =>
  (f.path.startsWith(L.QUADLET_DIR + '/') || f.path.startsWith(L.SYSTEMD_DIR + '/')) && !f.path.includes('mirror-appliance-firstboot')

/** The registry container units, in start order, read from the host spec's unit files. */
export function registryUnits(plan: Plan): string[] {
  const out: string[] = []
  for (const f of plan.host.files.filter(isUnitFile)) {
    const base = f.path.slice(f.path.lastIndexOf('/') + 1)
    if (base.endsWith('.container')) out.push(base.replace(/\.container$/, '.service'))
    else if (base.endsWith('.service') && base !== networkServiceName(NETWORK)) out.push(base)
  }
  return out
}

const accountData = (a: HostAccount | undefined): CtlData['account'] =>
  a ? { name: a.name, uid: String(a.uid), gecos: a.gecos, home: a.home, shell: a.shell } : { name: '', uid: '', gecos: '', home: '', shell: '' }

const text = (c: string | Buffer) => (typeof c === 'string' ? c : c.toString('utf8'))

export function ctlData(plan: Plan): CtlData {
  const { config, pki, host } = plan
  const podman = RHEL_PODMAN[config.host.rhel]
  const quadlet = hasQuadlet(podman)
  const units = registryUnits(plan)
  const same = (pem: string) => host.files.filter((f) => text(f.contents) === pem).map((f) => f.path)
  const certFiles = [...new Set([...same(pki.serverChainPem), ...same(pki.serverCertPem)])]
  const keyFiles = same(pki.serverKeyPem)
  const caFiles = same(pki.caCertPem)
  if (!certFiles.length || !keyFiles.length || !caFiles.length)
    throw new Error('host spec holds no server certificate, key or CA file: mirror-registryctl cannot rotate certificates')
  const quay = config.registry.flavor === 'quay'
  return {
    version: VERSION,
    flavor: config.registry.flavor,
    hostname: config.host.hostname,
    shortName: config.host.shortName,
    port: config.registry.port,
    dataDir: config.registry.dataDir,
    quadlet,
    podman,
    units,
    enableUnits: quadlet ? [] : [networkServiceName(NETWORK), ...units],
    networkUnit: networkServiceName(NETWORK),
    podmanNetwork: podmanNetworkName(NETWORK),
    firewallPorts: host.firewallPorts,
    healthPath: quay ? '/health/instance' : '/v2/',
    healthCode: quay ? 200 : 401,
    // The plan's resolved stack: the same images the host spec's units name.
    stackRefs: plan.stack.map(pinnedRef),
    initUser: config.registry.initUser.name,
    initEmail: config.registry.initUser.email,
    account: accountData(host.accounts?.[0]),
    certFiles,
    keyFiles,
    caFiles,
    sanDns: pki.dnsNames,
    sanIp: pki.ipAddresses,
    certNotBefore: Math.floor(pki.notBefore.getTime() / 1000),
    unitFiles: host.files.filter(isUnitFile).map((f) => f.path),
    // The script itself is one of the host's files whether or not the spec holds it yet: the same text either way.
    hostFiles: [...new Set([...host.files.map((f) => f.path), REGISTRYCTL_PATH])],
    paths: { ...L, REGISTRYCTL_PATH, REGISTRYCTL_STATE },
  }
}

/** The mirror-registryctl script for this plan (mode 0755). */
export function renderRegistryctl(plan: Plan): string {
  return renderTemplate('templates/bundle/mirror-registryctl.hbs', ctlData(plan))
}

/**
 * The script as a host file, for the appliance's host spec (day 2 on every
 * appliance). Computed from the finished host spec, so the integrator appends
 * it after registryHostSpec(): host.files.push(registryctlHostFile(plan)).
 */
export function registryctlHostFile(plan: Plan): HostFile {
  return { path: REGISTRYCTL_PATH, contents: renderRegistryctl(plan), mode: 0o755, owner: 'root', group: 'root' }
}

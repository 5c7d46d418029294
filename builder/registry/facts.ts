// The facts of a registry host as the file its scripts source
// (layout.HOST_FACTS): one `NAME=value` or `NAME=(values…)` line per fact,
// every value quoted by the project's one shell quoting function (shq), so a
// value is always exactly one bash word whatever it holds. The host's shell
// scripts (templates/host/) are static: everything they know about this host
// comes from here, together with the host paths of layout.ts.
//
// This table is the one place a fact gets its shell name: the scripts use
// these names, test/host-scripts.test.ts sources the result in bash.

import type { HostFacts, HostSpec } from '../plan/types.js'
import { shq } from '../quote.js'
import * as L from './layout.js'

type Value = string | number | boolean | readonly (string | number)[]

/** Host paths every host has at the same place (layout.ts), by their shell name. */
const PATHS: [string, string | readonly string[]][] = [
  ['STATE_DIR', L.STATE_DIR],
  ['PAYLOAD_DIR', L.PAYLOAD_DIR],
  ['FIRSTBOOT_STATE_DIR', L.FIRSTBOOT_STATE_DIR],
  ['FIRSTBOOT_DONE', L.FIRSTBOOT_DONE],
  ['FIRSTBOOT_SCRIPT', L.FIRSTBOOT_SCRIPT],
  ['FIRSTBOOT_UNIT', L.FIRSTBOOT_UNIT],
  ['FIRSTBOOT_FINISH_UNIT', L.FIRSTBOOT_FINISH_UNIT],
  ['CONF_DIR', L.CONF_DIR],
  ['OUT_DIR', L.ROOT_OUT_DIR],
  ['OPENSHIFT_OUT_DIR', L.OPENSHIFT_OUT_DIR],
  ['PAYLOAD_HANDOFF_DIR', L.PAYLOAD_HANDOFF_DIR],
  ['PAYLOAD_TREE_DIR', L.PAYLOAD_TREE_DIR],
  ['CA_ANCHOR', L.CA_ANCHOR],
  ['MOTD_FILE', L.MOTD_FILE],
  ['MOTD_READY', L.MOTD_READY],
  ['HOST_FACTS', L.HOST_FACTS],
  ['HOST_LIB', L.HOST_LIB],
  ['CTL_PATH', L.REGISTRYCTL_PATH],
  ['CTL_STATE', L.REGISTRYCTL_STATE],
  ['HOSTSPEC_BEGIN', L.HOSTSPEC_BEGIN],
  ['KS_COPIES', L.ANACONDA_KS_COPIES],
  ['HEALTH_UNIT', L.HEALTH_UNIT],
  ['HEALTH_STATE_DIR', L.HEALTH_STATE_DIR],
  ['RENEW_UNIT', L.RENEW_UNIT],
  ['CA_KEY_ON_HOST', L.CA_KEY_ON_HOST],
  ['CERT_MOTD', L.CERT_MOTD],
]

/** Each fact by its shell name, in the order of the file. */
function factLines(f: HostFacts): [string, Value][] {
  const a = f.account
  return [
    ['VERSION', f.version],
    ['FLAVOR', f.flavor],
    ['REGISTRY_HOST', f.hostname],
    ['SHORT_NAME', f.shortName],
    ['PORT', f.port],
    ['REGISTRY_ADDRESS', f.address],
    ['SELF_ADDRESS', f.selfAddress],
    ['BUILT_DATA_DIR', f.dataDir],
    ['QUADLET', f.quadlet],
    ['PODMAN', f.podman],
    ['UNITS', f.units],
    ['ENABLE_UNITS', f.enableUnits],
    ['NETWORK_UNIT', f.networkUnit],
    ['PODMAN_NETWORK', f.podmanNetwork],
    ['FIREWALL_PORTS', f.firewallPorts],
    ['HEALTH_PATH', f.health.path],
    ['HEALTH_CODE', f.health.code],
    ['STACK_REFS', f.stackRefs],
    ['INIT_USER', f.initUser],
    ['INIT_EMAIL', f.initEmail],
    ['ACCOUNT_NAME', a?.name ?? ''],
    ['ACCOUNT_UID', a ? String(a.uid) : ''],
    ['ACCOUNT_GECOS', a?.gecos ?? ''],
    ['ACCOUNT_HOME', a?.home ?? ''],
    ['ACCOUNT_SHELL', a?.shell ?? ''],
    ['CERT_FILES', f.certFiles],
    ['KEY_FILES', f.keyFiles],
    ['CA_FILES', f.caFiles],
    ['SAN_DNS', f.sanDns],
    ['SAN_IP', f.sanIp],
    ['CERT_NOT_BEFORE', f.certNotBefore],
    ['UNIT_FILES', f.unitFiles],
    ['UPGRADE_KEEP', f.upgradeKeep],
    ['HOST_FILES', f.hostFiles],
    ['OPEN_UNITS', f.openAfterInit.map((o) => o.unit)],
    ['OPEN_UNIT_FILES', f.openAfterInit.map((o) => o.file)],
    ['OPEN_UNIT_SOURCES', f.openAfterInit.map((o) => o.open)],
    ['STORAGE_ENDPOINT', f.storage?.endpoint ?? ''],
    ['STORAGE_BUCKET', f.storage?.bucket ?? ''],
    ['STORAGE_PREFLIGHT', f.storage?.preflight ?? ''],
    ['STORAGE_ENV_FILE', f.storage?.envFile ?? ''],
    ['CONTENT_TREE_DIR', f.contentTreeDir],
    ['BUILT_STORAGE_DIR', f.storageDir],
    ['BUILT_SQLITE_DIR', f.databaseDir],
    ['KEEP_PAYLOAD', f.keepPayload],
    ['HEALTH_RESTART_AFTER', f.healthWatch.restartAfter],
    ['HEALTH_GRACE', f.healthWatch.grace],
    ['AUTO_RENEW', f.autoRenew],
  ]
}

function line(name: string, v: Value, field: string): string {
  if (typeof v === 'boolean') return `${name}=${v ? 1 : 0}`
  if (Array.isArray(v)) return `${name}=(${v.map((x) => shq(String(x), field)).join(' ')})`
  return `${name}=${shq(String(v), field)}`
}

/** The facts file (layout.HOST_FACTS): bash assignments, no commands, mode 0644 (no secret in it). */
export function renderFacts(f: HostFacts): string {
  const head = [
    `# mirror-appliance ${f.version}: the facts of the ${f.flavor} registry https://${f.address},`,
    '# written with its host spec (builder/registry/facts.ts). First boot and',
    '# mirror-registryctl source this file, then the library beside the first-boot',
    '# script. Assignments only; every value is one bash word.',
  ]
  const body = [
    ...factLines(f).map(([n, v]) => line(n, v, `host fact ${n}`)),
    '# host paths (builder/registry/layout.ts)',
    ...PATHS.map(([n, v]) => line(n, v, `host path ${n}`)),
  ]
  return [...head, ...body].join('\n') + '\n'
}

/** The facts of a registry host spec; throws for a spec that has none (not a registry host). */
export function factsOf(host: HostSpec): HostFacts {
  if (!host.facts) throw new Error('this host spec has no facts: it was not built by registryHostSpec()')
  return host.facts
}

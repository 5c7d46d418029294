// Which quadlet keys each podman version knows, per unit file type. Podman
// 4.4's quadlet drops a whole unit that carries one key it does not know
// (silently, at boot), so the renderer asks this table before it writes a key.
//
// Source: the supported*Keys maps in pkg/systemd/quadlet/quadlet.go at podman
// tags v4.4.1 .. v5.5.0, as summarised in the project's reference list
// test/fixtures/reference/quadlet-keys-by-podman-version.txt
// (test/registry-units.test.ts checks this table against it). Only versions RHEL 8 ships matter here
// (RHEL 8 never gets podman 5), but the table goes on to 5.5 so a key added
// later is known to be "too new" rather than unknown.

import type { RhelMinor } from '../rhel.js'

export type QuadletFileType = 'container' | 'network' | 'volume' | 'kube'
export type PodmanVersion = [number, number, number]

/** Keys podman 4.4.1 supports, per file type. */
const BASE_4_4: Record<QuadletFileType, string[]> = {
  container: [
    'AddCapability',
    'AddDevice',
    'Annotation',
    'ContainerName',
    'DropCapability',
    'Environment',
    'EnvironmentFile',
    'EnvironmentHost',
    'Exec',
    'ExposeHostPort',
    'Group',
    'Image',
    'Label',
    'Network',
    'NoNewPrivileges',
    'Notify',
    'PodmanArgs',
    'PublishPort',
    'ReadOnly',
    'RemapGid',
    'RemapUid',
    'RemapUidSize',
    'RemapUsers',
    'RunInit',
    'SeccompProfile',
    'Timezone',
    'User',
    'VolatileTmp',
    'Volume',
  ],
  volume: ['Copy', 'Device', 'Group', 'Label', 'Options', 'Type', 'User'],
  network: ['DisableDNS', 'Driver', 'Gateway', 'IPAMDriver', 'IPRange', 'IPv6', 'Internal', 'Label', 'Options', 'Subnet'],
  kube: ['ConfigMap', 'Network', 'PublishPort', 'RemapGid', 'RemapUid', 'RemapUidSize', 'RemapUsers', 'Yaml'],
}

/** Keys added after 4.4.1: [file type, key, version that added it]. */
const ADDED: [QuadletFileType, string, string][] = [
  ...(
    [
      'HealthCmd',
      'HealthInterval',
      'HealthOnFailure',
      'HealthRetries',
      'HealthStartPeriod',
      'HealthStartupCmd',
      'HealthStartupInterval',
      'HealthStartupRetries',
      'HealthStartupSuccess',
      'HealthStartupTimeout',
      'HealthTimeout',
      'IP',
      'IP6',
      'LogDriver',
      'Mount',
      'Rootfs',
      'Secret',
      'SecurityLabelDisable',
      'SecurityLabelFileType',
      'SecurityLabelLevel',
      'SecurityLabelType',
      'Tmpfs',
      'UserNS',
    ] as const
  ).map((k) => ['container', k, '4.5.0'] as [QuadletFileType, string, string]),
  ['kube', 'LogDriver', '4.5.0'],
  ['kube', 'UserNS', '4.5.0'],
  ...(['AutoUpdate', 'HostName', 'Mask', 'Pull', 'SecurityLabelNested', 'Sysctl', 'Unmask', 'WorkingDir'] as const).map(
    (k) => ['container', k, '4.6.0'] as [QuadletFileType, string, string],
  ),
  ['kube', 'ExitCodePropagation', '4.6.0'],
  ['kube', 'PodmanArgs', '4.6.0'],
  ['network', 'PodmanArgs', '4.6.0'],
  ['volume', 'PodmanArgs', '4.6.0'],
  ...(['DNS', 'DNSOption', 'DNSSearch', 'PidsLimit', 'ShmSize', 'Ulimit'] as const).map(
    (k) => ['container', k, '4.7.0'] as [QuadletFileType, string, string],
  ),
  ['kube', 'AutoUpdate', '4.7.0'],
  ['kube', 'SetWorkingDirectory', '4.7.0'],
  ['network', 'DNS', '4.7.0'],
  ['network', 'NetworkName', '4.7.0'],
  ['volume', 'VolumeName', '4.7.0'],
  ...(['ContainersConfModule', 'GIDMap', 'GlobalArgs', 'ReadOnlyTmpfs', 'SubGIDMap', 'SubUIDMap', 'UIDMap'] as const).map(
    (k) => ['container', k, '4.8.0'] as [QuadletFileType, string, string],
  ),
  ['kube', 'ContainersConfModule', '4.8.0'],
  ['kube', 'GlobalArgs', '4.8.0'],
  ['kube', 'KubeDownForce', '4.8.0'],
  ['network', 'ContainersConfModule', '4.8.0'],
  ['network', 'GlobalArgs', '4.8.0'],
  ['volume', 'ContainersConfModule', '4.8.0'],
  ['volume', 'Driver', '4.8.0'],
  ['volume', 'GlobalArgs', '4.8.0'],
  ['volume', 'Image', '4.8.0'],
  ['container', 'Entrypoint', '5.0.0'],
  ['container', 'Pod', '5.0.0'],
  ['container', 'StopTimeout', '5.0.0'],
  ['container', 'GroupAdd', '5.1.0'],
  ['container', 'LogOpt', '5.2.0'],
  ['container', 'NetworkAlias', '5.2.0'],
  ['container', 'StopSignal', '5.2.0'],
  ['kube', 'LogOpt', '5.2.0'],
  ...(
    ['AddHost', 'CgroupsMode', 'HealthLogDestination', 'HealthMaxLogCount', 'HealthMaxLogSize', 'ServiceName', 'StartWithPod'] as const
  ).map((k) => ['container', k, '5.3.0'] as [QuadletFileType, string, string]),
  ['kube', 'ServiceName', '5.3.0'],
  ['network', 'ServiceName', '5.3.0'],
  ['volume', 'ServiceName', '5.3.0'],
  ...(['Memory', 'ReloadCmd', 'ReloadSignal', 'Retry', 'RetryDelay'] as const).map(
    (k) => ['container', k, '5.5.0'] as [QuadletFileType, string, string],
  ),
  ['network', 'NetworkDeleteOnStop', '5.5.0'],
]

/** Values of a key that are newer than the key itself. */
const ADDED_VALUES: [QuadletFileType, string, string, string][] = [['container', 'Notify', 'healthy', '5.0.0']]

export function parseVersion(v: string): PodmanVersion {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v)
  if (!m) throw new Error(`bad podman version ${v}`)
  return [Number(m[1]), Number(m[2]), Number(m[3])]
}

function atLeast(have: PodmanVersion, want: PodmanVersion): boolean {
  for (let i = 0; i < 3; i++) if (have[i]! !== want[i]!) return have[i]! > want[i]!
  return true
}

/** Podman each RHEL 8 minor ships; null where there is no quadlet (< 8.8: plain units). */
export const RHEL_PODMAN: Record<RhelMinor, string> = {
  '8.4': '3.0.1',
  '8.5': '3.3.1',
  '8.6': '4.0.2',
  '8.7': '4.2.0',
  '8.8': '4.4.1',
  '8.9': '4.6.1',
  '8.10': '4.9.4',
}

export const QUADLET_MIN: PodmanVersion = [4, 4, 0]

export function hasQuadlet(podman: string): boolean {
  return atLeast(parseVersion(podman), QUADLET_MIN)
}

/** Whether quadlet in `podman` accepts `key` (and, when given, this value of it) in a .`type` file. */
export function quadletSupports(podman: string, type: QuadletFileType, key: string, value?: string): boolean {
  const v = parseVersion(podman)
  if (!atLeast(v, QUADLET_MIN)) return false
  const added = ADDED.find(([t, k]) => t === type && k === key)
  const known = BASE_4_4[type].includes(key) || (added !== undefined && atLeast(v, parseVersion(added[2])))
  if (!known) return false
  const newer = ADDED_VALUES.find(([t, k, val]) => t === type && k === key && val === value)
  return !newer || atLeast(v, parseVersion(newer[3]))
}

/** Every key quadlet in `podman` knows for a file type (for tests and docs). */
export function quadletKeys(podman: string, type: QuadletFileType): string[] {
  const v = parseVersion(podman)
  return [...BASE_4_4[type], ...ADDED.filter(([t, , since]) => t === type && atLeast(v, parseVersion(since))).map(([, k]) => k)].sort()
}

/** Keys of the [Quadlet] section (any file type), by version. */
export function quadletSectionKeys(podman: string): string[] {
  return atLeast(parseVersion(podman), [5, 3, 0]) ? ['DefaultDependencies'] : []
}

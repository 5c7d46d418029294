// One model of each registry container, rendered two ways: a quadlet
// .container unit for RHEL 8.8+ (podman >= 4.4) and a plain systemd unit that
// runs `podman run` for older minors. Both come from the same list of
// settings, each known as a quadlet key and as the podman run flag it stands
// for; the quadlet renderer writes a key only when the target podman's
// quadlet knows it and moves the rest into PodmanArgs=, because podman 4.4
// drops a whole unit for one unknown key.

import { renderTemplate } from '../render/templates.js'
import { quadletSupports } from './quadlet-keys.js'

export interface Volume {
  host: string
  container: string
  /** e.g. "Z" or "ro,Z" */
  options: string
}

export interface HealthCheck {
  cmd: string
  interval: string
  retries: number
  startPeriod: string
  timeout: string
}

export interface ContainerModel {
  /** Container name, also the unit name: <name>.container -> <name>.service */
  name: string
  description: string
  /** repo@sha256:… — never a tag, never pulled */
  image: string
  /** Command and arguments after the image */
  exec?: string[]
  environment?: Record<string, string>
  environmentFile?: string
  volumes: Volume[]
  /** host:container port mappings */
  publish: string[]
  /** Base name of the shared network unit (mirror-appliance -> mirror-appliance.network) */
  network: string
  ip?: string
  /** host:ip entries for /etc/hosts in the container */
  addHosts?: string[]
  user?: string
  health?: HealthCheck
  /** Other containers (by name) this one needs running first */
  requires: string[]
  timeoutStartSec: number
}

export interface NetworkModel {
  /** Unit base name; quadlet names the podman network systemd-<name> */
  name: string
  subnet: string
  gateway: string
}

/** The podman network name quadlet gives a .network unit (podman < 4.7 has no NetworkName=). */
export const podmanNetworkName = (n: { name: string }) => `systemd-${n.name}`
/** Both renderers name the network's service like quadlet does. */
export const networkServiceName = (n: { name: string }) => `${n.name}-network.service`

interface Setting {
  key: string
  value: string
  /** The podman run arguments this setting stands for */
  cli: string[]
}

function settings(c: ContainerModel, net: NetworkModel): Setting[] {
  const s: Setting[] = [
    { key: 'ContainerName', value: c.name, cli: ['--name', c.name] },
    { key: 'Pull', value: 'never', cli: ['--pull=never'] },
    { key: 'Network', value: `${net.name}.network`, cli: ['--network', podmanNetworkName(net)] },
  ]
  if (c.ip) s.push({ key: 'IP', value: c.ip, cli: ['--ip', c.ip] })
  for (const h of c.addHosts ?? []) s.push({ key: 'AddHost', value: h, cli: ['--add-host', h] })
  for (const p of c.publish) s.push({ key: 'PublishPort', value: p, cli: ['--publish', p] })
  for (const v of c.volumes) {
    const spec = `${v.host}:${v.container}:${v.options}`
    s.push({ key: 'Volume', value: spec, cli: ['--volume', spec] })
  }
  for (const [k, v] of Object.entries(c.environment ?? {})) s.push({ key: 'Environment', value: `${k}=${v}`, cli: ['--env', `${k}=${v}`] })
  if (c.environmentFile) s.push({ key: 'EnvironmentFile', value: c.environmentFile, cli: ['--env-file', c.environmentFile] })
  if (c.user) s.push({ key: 'User', value: c.user, cli: ['--user', c.user] })
  if (c.health) {
    const h = c.health
    s.push(
      { key: 'HealthCmd', value: h.cmd, cli: ['--health-cmd', h.cmd] },
      { key: 'HealthInterval', value: h.interval, cli: ['--health-interval', h.interval] },
      { key: 'HealthRetries', value: String(h.retries), cli: ['--health-retries', String(h.retries)] },
      { key: 'HealthStartPeriod', value: h.startPeriod, cli: ['--health-start-period', h.startPeriod] },
      { key: 'HealthTimeout', value: h.timeout, cli: ['--health-timeout', h.timeout] },
    )
  }
  return s
}

/**
 * One word for a systemd command line (ExecStart=, and quadlet's Exec= and
 * PodmanArgs=, which quadlet splits with the same rules). `$` and `%` would be
 * expanded by systemd; none of our values need them, so they are refused
 * rather than escaped in two different ways for two consumers.
 */
export function systemdWord(w: string): string {
  if (/[$%\n\r\0]/.test(w)) throw new Error(`systemd word must not contain $, % or a line break: ${JSON.stringify(w)}`)
  if (/^[A-Za-z0-9_@+=:,./-]+$/.test(w)) return w
  return `"${w.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

const words = (ws: string[]) => ws.map(systemdWord).join(' ')

function checkValue(key: string, v: string): string {
  if (/[\n\r\0]/.test(v)) throw new Error(`${key}= value must be one line: ${JSON.stringify(v)}`)
  return v
}

/** The [Container] entries for a podman version: known keys as keys, the rest as PodmanArgs=. */
export function quadletEntries(c: ContainerModel, net: NetworkModel, podman: string): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [{ key: 'Image', value: c.image }]
  const args: string[] = []
  for (const st of settings(c, net)) {
    // A value that contains spaces must stay one argument: quadlet splits
    // HealthCmd as one word, so keys keep raw values.
    if (quadletSupports(podman, 'container', st.key, st.value)) out.push({ key: st.key, value: checkValue(st.key, st.value) })
    else args.push(...st.cli)
  }
  if (args.length) out.push({ key: 'PodmanArgs', value: words(args) })
  if (c.exec?.length) out.push({ key: 'Exec', value: words(c.exec) })
  return out
}

function unitDeps(c: ContainerModel, net: NetworkModel) {
  const req = c.requires.map((r) => `${r}.service`)
  return {
    after: ['network-online.target', networkServiceName(net), ...req],
    wants: ['network-online.target'],
    requires: [networkServiceName(net), ...req],
  }
}

export function renderQuadletContainer(c: ContainerModel, net: NetworkModel, podman: string): string {
  return renderTemplate('templates/quadlet/container.hbs', {
    description: c.description,
    podman,
    // quadlet adds After=/Requires= for the .network itself
    after: ['network-online.target', ...c.requires.map((r) => `${r}.service`)],
    wants: ['network-online.target'],
    requires: c.requires.map((r) => `${r}.service`),
    entries: quadletEntries(c, net, podman),
    timeoutStartSec: c.timeoutStartSec,
  })
}

export function renderQuadletNetwork(net: NetworkModel, podman: string): string {
  return renderTemplate('templates/quadlet/network.hbs', { ...net, podman, podmanName: podmanNetworkName(net) })
}

/** podman run argv (after `podman run`) for the plain unit. */
export function podmanRunArgs(c: ContainerModel, net: NetworkModel): string[] {
  return [
    '--cidfile=%t/%N.cid',
    '--cgroups=no-conmon',
    '--rm',
    '--sdnotify=conmon',
    '--detach',
    '--replace',
    ...settings(c, net).flatMap((s) => s.cli),
    c.image,
    ...(c.exec ?? []),
  ]
}

export function renderPlainContainer(c: ContainerModel, net: NetworkModel, podman: string): string {
  const deps = unitDeps(c, net)
  // %t and %N are systemd specifiers on purpose; everything else goes through systemdWord.
  const [cid, ...rest] = podmanRunArgs(c, net)
  return renderTemplate('templates/systemd/podman-container.service.hbs', {
    description: c.description,
    podman,
    ...deps,
    runArgs: [cid, words(rest)].join(' '),
    name: c.name,
    timeoutStartSec: c.timeoutStartSec,
  })
}

export function renderPlainNetwork(net: NetworkModel, podman: string): string {
  return renderTemplate('templates/systemd/podman-network.service.hbs', { ...net, podman, podmanName: podmanNetworkName(net) })
}

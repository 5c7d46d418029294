// The pure half of laying a HostSpec into a disk image: what `systemctl
// enable` would link, what `firewall-offline-cmd --add-port` would write,
// owner names to numbers from the image's own /etc/passwd and /etc/group,
// and the cloud-init NoCloud seed. No tools here; qcow2.ts applies it.

import { UserError } from '../errors.js'
import type { Network, RhelMinor } from '../config/types.js'
import { chpasswdForm } from './cloud-init-forms.js'
import type { HostSpec, Plan } from '../plan/types.js'
import { hostModel } from '../render/host-model.js'
import { renderTemplate } from '../render/templates.js'

// ---- systemd ---------------------------------------------------------------

export interface InstallSection {
  wantedBy: string[]
  requiredBy: string[]
  alias: string[]
  also: string[]
}

/** The [Install] section of a unit file, as systemctl reads it (lists are space separated, keys may repeat). */
export function parseInstallSection(unitText: string): InstallSection {
  const r: InstallSection = { wantedBy: [], requiredBy: [], alias: [], also: [] }
  let inInstall = false
  for (const raw of unitText.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('[')) {
      inInstall = line === '[Install]'
      continue
    }
    if (!inInstall || line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const m = /^([A-Za-z]+)\s*=\s*(.*)$/.exec(line)
    if (!m) continue
    const key = ({ WantedBy: 'wantedBy', RequiredBy: 'requiredBy', Alias: 'alias', Also: 'also' } as const)[m[1] as 'WantedBy']
    if (!key) continue
    const values = m[2]!.split(/\s+/).filter(Boolean)
    if (values.length === 0)
      r[key] = [] // an empty assignment resets the list
    else r[key].push(...values)
  }
  return r
}

export interface Symlink {
  /** Path of the link in the image */
  link: string
  /** What it points to */
  target: string
}

/** The links `systemctl enable` makes in /etc/systemd/system for a unit file at unitPath. */
export function enableLinks(unit: string, unitPath: string, install: InstallSection): Symlink[] {
  const links: Symlink[] = []
  for (const t of install.wantedBy) links.push({ link: `/etc/systemd/system/${t}.wants/${unit}`, target: unitPath })
  for (const t of install.requiredBy) links.push({ link: `/etc/systemd/system/${t}.requires/${unit}`, target: unitPath })
  for (const a of install.alias) links.push({ link: `/etc/systemd/system/${a}`, target: unitPath })
  return links
}

/** Where systemd looks for unit files, in order, on RHEL 8 (first match wins). */
export const UNIT_DIRS = ['/etc/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system']

export const UNIT_NAME = /^[A-Za-z0-9@._:\\-]+\.(service|socket|timer|target|path|mount)$/

// ---- firewalld ---------------------------------------------------------------

/** DefaultZone= from /etc/firewalld/firewalld.conf; firewalld's default is public. */
export function defaultZone(firewalldConf: string | undefined): string {
  const m = /^\s*DefaultZone\s*=\s*(\S+)\s*$/m.exec(firewalldConf ?? '')
  return m?.[1] ?? 'public'
}

const PORT = /^(\d{1,5}(?:-\d{1,5})?)\/(tcp|udp|sctp)$/

/** A zone file with <port> elements added for each port it does not have yet (what firewall-offline-cmd --add-port writes). */
export function zoneWithPorts(zoneXml: string, ports: readonly string[]): string {
  let xml = zoneXml
  const add: string[] = []
  for (const p of new Set(ports)) {
    const m = PORT.exec(p)
    if (!m) throw new UserError(`firewall port "${p}" is not PORT/PROTO (e.g. 8443/tcp)`)
    const [, port, proto] = m
    const has = new RegExp(`<port\\b(?=[^>]*\\bport="${port}")(?=[^>]*\\bprotocol="${proto}")[^>]*/>`).test(xml)
    if (!has) add.push(`  <port protocol="${proto}" port="${port}"/>\n`)
  }
  if (add.length === 0) return xml
  const end = xml.lastIndexOf('</zone>')
  if (end < 0) throw new Error('firewalld zone file has no </zone>')
  // Keep the closing tag on a line of its own.
  const before = xml.slice(0, end)
  xml = before + (before.endsWith('\n') ? '' : '\n') + add.join('') + xml.slice(end)
  return xml
}

/**
 * A zone file without the <service> elements of the given services (what
 * firewall-offline-cmd --remove-service writes, and what the kickstart's
 * firewall --remove-service makes Anaconda run).
 */
export function zoneWithoutServices(zoneXml: string, services: readonly string[]): string {
  let xml = zoneXml
  for (const s of services) {
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(s)) throw new Error(`not a firewalld service name: ${s}`)
    xml = xml.replace(new RegExp(`^[ \\t]*<service\\b(?=[^>]*\\bname="${s}")[^>]*/>[ \\t]*\\r?\\n?`, 'gm'), '')
  }
  return xml
}

export function defaultPublicZone(): string {
  return renderTemplate('templates/qcow2/firewalld-zone.xml.hbs', {})
}

// ---- users and groups ----------------------------------------------------------

/** name → number from an /etc/passwd or /etc/group text (third field). */
export function parseIds(text: string): Map<string, number> {
  const m = new Map<string, number>()
  for (const line of text.split('\n')) {
    const f = line.split(':')
    if (f.length >= 3 && f[0] && /^\d+$/.test(f[2]!)) m.set(f[0], Number(f[2]))
  }
  return m
}

/** Numeric id for an owner: a name from the image's tables, or a number as is. */
export function resolveId(name: string, table: Map<string, number>, kind: 'user' | 'group', path: string): number {
  if (/^\d+$/.test(name)) return Number(name)
  const id = table.get(name)
  if (id === undefined)
    throw new UserError(`${path}: ${kind} "${name}" does not exist in the base image's /etc/${kind === 'user' ? 'passwd' : 'group'}`)
  return id
}

// ---- fstab -----------------------------------------------------------------------

/** fstab with one line for the data disk (an earlier line for the same mount point is replaced). */
export function fstabWithMount(fstab: string, uuid: string, mountPoint: string, fsType = 'xfs'): string {
  if (/\s/.test(mountPoint)) throw new UserError(`data disk mount point "${mountPoint}" contains white space`)
  const lines = fstab.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  const kept = lines.filter((l) => {
    const f = l.trim().split(/\s+/)
    return l.trim().startsWith('#') || f[1] !== mountPoint
  })
  kept.push(`UUID=${uuid} ${mountPoint} ${fsType} defaults,nofail 0 0`)
  return kept.join('\n') + '\n'
}

// ---- cloud-init NoCloud seed ------------------------------------------------------

export interface SeedUser {
  name: string
  gecos: string
  groups: string[]
  passwordHash: string | null
  sshKeys: string[]
}

export interface NoCloudSeed {
  instanceId: string
  hostname: string
  users: SeedUser[]
  rootPasswordHash: string | null
  network?: Network
  /** The target's RHEL minor: decides which form of a key its cloud-init reads (cloud-init-forms.ts) */
  rhel: RhelMinor
  /**
   * host.ssh.passwordAuthentication, as ssh_pwauth. cloud-init's set_passwords
   * rewrites every PasswordAuthentication line of sshd_config to this value
   * (cloudinit/ssh_util.py update_ssh_config_lines, 22.4.2), the one at the top
   * that the sshd settings unit wrote included; and RHEL's /etc/cloud/cloud.cfg
   * sets ssh_pwauth itself when the seed does not. So the seed says what the
   * config says, never "whether anyone has a password".
   */
  sshPasswordAuthentication: boolean
}

export interface NoCloudFiles {
  'meta-data': string
  'user-data': string
  'network-config'?: string
}

/** The seed a plan asks for: its hostname, users with their hashes and keys, root's hash, static network. */
export function noCloudSeedFromPlan(plan: Plan): NoCloudSeed {
  const m = hostModel(plan)
  return {
    instanceId: `mirror-appliance-${plan.configDigest.slice(0, 16)}`,
    hostname: plan.config.host.hostname,
    users: m.users.map((u) => ({ name: u.name, gecos: u.gecos, groups: u.groups, passwordHash: u.passwordHash, sshKeys: u.sshKeys })),
    rootPasswordHash: m.rootPasswordHash,
    network: plan.config.host.network,
    rhel: plan.config.host.rhel,
    sshPasswordAuthentication: plan.config.host.ssh.passwordAuthentication,
  }
}

/**
 * What the qcow2 lays into the image: the host model's files and units, as
 * the kickstart, Butane and Ignition hosts get them (the sshd settings script
 * and its unit, the sudoers drop-ins of key-only sudo users), not the bare
 * plan. Users and root's password come through the NoCloud seed instead.
 */
export function qcow2HostSpec(plan: Plan): HostSpec {
  const { users: _users, rootPasswordHash: _root, ...spec } = hostModel(plan)
  return spec
}

export function renderNoCloud(seed: NoCloudSeed): NoCloudFiles {
  for (const u of seed.users) if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(u.name)) throw new UserError(`user name "${u.name}" is not valid`)
  if (seed.rootPasswordHash !== null && !/^\$[0-9a-z]+\$[^\s:]+$/.test(seed.rootPasswordHash))
    throw new UserError('the root password hash is not a crypt hash')
  const files: NoCloudFiles = {
    'meta-data': renderTemplate('templates/qcow2/meta-data.hbs', { instanceId: seed.instanceId, hostname: seed.hostname }),
    'user-data': renderTemplate('templates/qcow2/user-data.hbs', {
      hostname: seed.hostname,
      shortName: seed.hostname.split('.')[0],
      users: seed.users,
      sshPasswordAuthentication: seed.sshPasswordAuthentication,
      rootPasswordHash: seed.rootPasswordHash,
      chpasswdUsers: chpasswdForm(seed.rhel) === 'users',
      rootListEntry: `root:${seed.rootPasswordHash ?? ''}`,
    }),
  }
  const n = seed.network
  if (n?.mode === 'static') {
    files['network-config'] = renderTemplate('templates/qcow2/network-config.hbs', {
      mac: n.mac ?? null,
      interface: n.interface ?? null,
      cidr: `${n.address}/${n.prefix}`,
      gateway: n.gateway ?? null,
      dns: n.dns,
      searchDomains: n.searchDomains,
    })
  }
  return files
}

// ---- libvirt / virt-install ------------------------------------------------------

export interface VmDescription {
  name: string
  /** Absolute paths; the first is the boot disk */
  disks: string[]
  memoryMiB?: number
  vcpus?: number
  /** libvirt network name (default "default") */
  network?: string
  /** virt-install --os-variant, e.g. rhel8.10 */
  osVariant?: string
}

const xmlEscape = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')

export function libvirtDomainXml(vm: VmDescription): string {
  if (!/^[A-Za-z0-9_.+-]+$/.test(vm.name)) throw new UserError(`VM name "${vm.name}" may only hold letters, digits and _.+-`)
  return renderTemplate('templates/qcow2/domain.xml.hbs', {
    name: vm.name,
    memoryMiB: vm.memoryMiB ?? 8192,
    vcpus: vm.vcpus ?? 4,
    network: xmlEscape(vm.network ?? 'default'),
    disks: vm.disks.map((file, i) => ({ file: xmlEscape(file), dev: `vd${String.fromCharCode(97 + i)}` })),
  })
}

/** virt-install --import argv (without the program name). */
export function virtInstallArgs(vm: VmDescription): string[] {
  const a = ['--import', '--name', vm.name, '--memory', String(vm.memoryMiB ?? 8192), '--vcpus', String(vm.vcpus ?? 4)]
  a.push('--os-variant', vm.osVariant ?? 'rhel8-unknown')
  for (const d of vm.disks) a.push('--disk', `path=${d.replace(/,/g, ',,')},format=qcow2,bus=virtio`)
  a.push(
    '--network',
    `network=${vm.network ?? 'default'},model=virtio`,
    '--graphics',
    'none',
    '--console',
    'pty,target_type=serial',
    '--noautoconsole',
  )
  return a
}

// ks.cfg for RHEL 8.4 - 8.10 from kickstart/ks.cfg.hbs and its partials.
// This module turns the plan into a view of ready-to-print facts; every
// value that comes from the config is checked here (one line, no leading
// dash where it is a positional argument) and quoted in the templates with
// {{ksq}} (kickstart lines) or {{shq}} (%post shell lines).

import { UserError } from '../errors.js'
import type { Plan } from '../plan/types.js'
import { assertOneLine, base64Lines, octal, regexEscape } from '../quote.js'
import { checkDiskLayout, computeDiskLayout } from './disk.js'
import { hostModel } from './host-model.js'
import { renderTemplate } from './templates.js'

export interface KickstartOptions {
  /**
   * Where Anaconda installs packages from and where the payload is:
   * cdrom  - the remastered ISO: packages and /appliance/ on the same medium
   * oemdrv - the unmodified RHEL ISO for packages, payload on the OEMDRV medium
   * url    - packages from `url`, payload from `payloadUrl` over HTTP (PXE)
   */
  source: 'cdrom' | 'oemdrv' | 'url'
  /** Installation tree (BaseOS) for source url */
  url?: string
  /** Base URL of the payload directory (holding SHA256SUMS) for source url; default `${url}/appliance` */
  payloadUrl?: string
  /**
   * Volume label of the medium holding the payload for source oemdrv
   * (default OEMDRV: the same medium as ks.cfg). A fleet puts the payload on
   * one shared medium and only ks.cfg on each host's OEMDRV.
   */
  payloadLabel?: string
  /** reboot (default; ejects the medium) or poweroff (installing into a VM disk image) */
  finish?: 'reboot' | 'poweroff'
}

/** Where %post --nochroot puts the payload on the installed system. */
// Where the host finds the payload: one constant, shared with first boot.
export { PAYLOAD_DIR } from '../registry/layout.js'
import { PAYLOAD_DIR, SSHD_SETTINGS_SCRIPT, SSHD_SETTINGS_UNIT } from '../registry/layout.js'
/** Directory of the payload on the install medium (ISO and OEMDRV alike) */
export const MEDIUM_PAYLOAD_DIR = 'appliance'
/** Where the payload is really stored on the host: on the registry data volume, which is sized for it. */
export const payloadStore = (dataDir: string) => `${dataDir.replace(/\/+$/, '')}/.payload`
// Marker comments around the host-spec part of %post (tests run that part in
// a temp root; first boot finds the section by them in Anaconda's copies).
import { HOSTSPEC_BEGIN, HOSTSPEC_END } from '../registry/layout.js'
export { HOSTSPEC_BEGIN, HOSTSPEC_END }

function fail(what: string): never {
  throw new Error(`${what}: not a volume label (A-Z, 0-9, _)`)
}

function one(value: string, field: string): string {
  assertOneLine(value, field)
  return value
}

function positional(value: string, field: string): string {
  one(value, field)
  if (value.startsWith('-') || value === '')
    throw new UserError(`${field}: "${value}" cannot be empty or start with "-" (kickstart would read it as an option)`)
  return value
}

/** An IPv4 address or a DNS name: what kickstart's --ip/--gateway/--nameserver take. */
function address(value: string, field: string): string {
  if (!/^[A-Za-z0-9.:-]+$/.test(value) || value.startsWith('-')) throw new UserError(`${field}: "${value}" is not an IP address`)
  return value
}

function portSpec(p: string, i: number): { port: string; proto: string } {
  const m = /^(\d{1,5}(?:-\d{1,5})?)\/(tcp|udp|sctp)$/.exec(p)
  if (!m) throw new Error(`host.firewallPorts[${i}]: "${p}" is not PORT/PROTO`)
  return { port: m[1]!, proto: m[2]! }
}

function serviceName(s: string): string {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(s)) throw new Error(`not a firewalld service name: ${s}`)
  return s
}

function unitName(u: string): string {
  if (!/^[A-Za-z0-9@._:\\-]+\.(service|socket|timer|target|path|mount)$/.test(u)) throw new Error(`not a systemd unit name: ${u}`)
  return u
}

export function renderKickstart(plan: Plan, opts: KickstartOptions): string {
  const { config } = plan
  const h = config.host
  const diskErrors = checkDiskLayout(config)
  if (diskErrors.length) throw new UserError(diskErrors.map((e) => `${e.path.join('.')}: ${e.message}`).join('\n'))
  const layout = computeDiskLayout(config)
  const model = hostModel(plan)

  let url: string | undefined
  let payloadUrl: string | undefined
  if (opts.source === 'url') {
    if (!opts.url) throw new UserError('the url install source needs the URL of the installation tree (outputs.pxe.baseUrl)')
    url = one(opts.url, 'outputs.pxe.baseUrl')
    payloadUrl = one(opts.payloadUrl ?? `${opts.url.replace(/\/+$/, '')}/${MEDIUM_PAYLOAD_DIR}`, 'outputs.pxe.baseUrl')
    if (!/^(https?|ftp):\/\//.test(url)) throw new UserError(`outputs.pxe.baseUrl: "${url}" must be an http://, https:// or ftp:// URL`)
  }

  const net = h.network
  const device = net.interface ?? net.mac ?? 'link'
  const network = {
    static: net.mode === 'static',
    device: one(device, net.interface ? 'host.network.interface' : 'host.network.mac'),
    hostname: one(h.hostname, 'host.hostname'),
    ip: net.mode === 'static' ? address(net.address, 'host.network.address') : '',
    netmask: net.mode === 'static' ? address(net.netmask, 'host.network.address') : '',
    gateway: net.mode === 'static' && net.gateway ? address(net.gateway, 'host.network.gateway') : '',
    nameservers: net.dns.map((d, i) => address(d, `host.network.dns[${i}]`)).join(','),
    searchDomains: net.searchDomains.map((d, i) => one(d, `host.network.searchDomains[${i}]`)).join(' '),
  }

  const users = model.users.map((u) => {
    const keys = u.sshKeys.map((k, j) => positional(k.trim(), `host.users[${u.index}].sshKeys[${j}]`))
    return {
      name: one(u.name, `host.users[${u.index}].name`),
      gecos: one(u.gecos, `host.users[${u.index}].gecos`),
      groups: u.groups.join(','),
      passwordHash: u.passwordHash === null ? null : one(u.passwordHash, `host.users[${u.index}].password`),
      // pykickstart allows one sshkey line per user; %post appends the rest
      sshKey: keys[0] ?? null,
      extraSshKeys: keys.slice(1),
    }
  })

  // Before the users: Anaconda runs the user commands in file order, and a
  // uid the registry needs must be taken before useradd hands it to a person.
  const accounts = (model.accounts ?? []).map((a) => ({
    name: one(a.name, 'the registry account'),
    gecos: one(a.gecos, 'the registry account'),
    uid: a.uid,
    home: one(a.home, 'the registry account'),
    shell: one(a.shell, 'the registry account'),
  }))

  const ports = model.firewallPorts.map(portSpec)
  const xlayout = one(h.keyboard, 'host.keyboard')
  const view = {
    configDigest: plan.configDigest,
    rhel: h.rhel,
    source: {
      cdrom: opts.source !== 'url',
      oemdrv: opts.source === 'oemdrv',
      url: opts.source === 'url',
      installUrl: url ?? '',
      payloadUrl: payloadUrl ?? '',
      payloadLabel: /^[A-Z0-9_]{1,32}$/.test(opts.payloadLabel ?? 'OEMDRV')
        ? (opts.payloadLabel ?? 'OEMDRV')
        : fail(`payload label ${opts.payloadLabel}`),
    },
    finish: opts.finish ?? 'reboot',
    language: positional(h.language, 'host.language'),
    keyboard: { xlayouts: xlayout, vckeymap: /^[a-z]{2,3}$/.test(xlayout) ? xlayout : '' },
    timezone: positional(h.timezone, 'host.timezone'),
    ntpServers: h.ntpServers.map((s, i) => address(s, `host.ntpServers[${i}]`)).join(','),
    network,
    fips: h.fips,
    root: { hash: model.rootPasswordHash === null ? null : one(model.rootPasswordHash, 'host.root') },
    accounts,
    users,
    firewall: {
      ksPorts: ports.map((p) => `${p.port}:${p.proto}`).join(','),
      ports: ports.map((p) => `${p.port}/${p.proto}`),
      // Anaconda runs firewall-offline-cmd --remove-service=S for each (pyanaconda/modules/network/firewall/installation.py)
      removeServices: (model.firewallRemoveServices ?? []).map(serviceName).join(','),
    },
    services: ['sshd', 'chronyd', 'firewalld'].join(','),
    disk: {
      device: layout.device,
      reqpart: layout.firmware === 'auto',
      gpt: layout.firmware !== 'auto',
      bootPartitions: layout.firmware === 'auto' ? layout.bootPartitions.filter((p) => p.mount === '/boot') : layout.bootPartitions,
      volumeGroup: layout.volumeGroup,
      volumes: layout.volumes.map((v) => ({ ...v, mount: one(v.mount, 'registry.dataDir') })),
    },
    payload: { dir: PAYLOAD_DIR, mediumDir: MEDIUM_PAYLOAD_DIR, store: payloadStore(plan.config.registry.dataDir) },
    sshd: { script: SSHD_SETTINGS_SCRIPT, unit: SSHD_SETTINGS_UNIT },
    host: {
      begin: HOSTSPEC_BEGIN,
      end: HOSTSPEC_END,
      dirs: model.dirs.map((d) => ({ ...d, mode: octal(d.mode), owner: `${d.owner}:${d.group}` })),
      files: model.files.map((f) => ({
        path: f.path,
        mode: octal(f.mode),
        owner: `${f.owner}:${f.group}`,
        parent: f.path.replace(/\/[^/]*$/, '') || '/',
        base64: base64Lines(f.contents),
      })),
      selinux: [
        ...model.dirs
          .filter((d) => d.selinuxType)
          .map((d) => ({ type: d.selinuxType!, path: d.path, regex: `${regexEscape(d.path)}(/.*)?` })),
        ...model.files.filter((f) => f.selinuxType).map((f) => ({ type: f.selinuxType!, path: f.path, regex: regexEscape(f.path) })),
      ],
      enableUnits: model.enableUnits.map(unitName),
      disableUnits: model.disableUnits.map(unitName),
    },
  }
  for (const p of [...model.dirs.map((d) => d.path), ...model.files.map((f) => f.path)])
    if (!p.startsWith('/') || p.split('/').includes('..')) throw new Error(`host spec path is not absolute and normalized: ${p}`)
  return renderTemplate('kickstart/ks.cfg.hbs', view)
}

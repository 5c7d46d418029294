// Cross-field rules the schema cannot express. Each returns problems with the
// field path they belong to; the loader turns paths into file:line:col (or
// names the build flag that set the key). A build's rules see the config with
// its flags merged in (flags.ts), so what a build refuses to make (a qcow2
// for a fleet) is refused here, at its key, before any work; `validate`
// checks the file alone, where the build's flags may still add an input.

import { UserError } from '../errors.js'
import type { FieldPath } from './diagnostics.js'
import { normalizeBaseUrl } from './pxe-url.js'
import { checkDiskLayout } from '../render/disk.js'
import { STACK_ROLES } from '../payload/lock.js'
import type { Config, ConfigInput } from './types.js'

export interface RuleResult {
  path: FieldPath
  message: string
  severity: 'error' | 'warning'
  /** Point at the key of the last path element rather than at its value */
  atKey?: boolean
}

/** What the rules check the config for: as a file (validate, render) or for the build about to run (with its flags). */
export interface RuleContext {
  build: boolean
}

type Rule = (input: ConfigInput, config: Config, ctx: RuleContext) => RuleResult[]

const error = (path: FieldPath, message: string): RuleResult => ({ path, message, severity: 'error' })
const warning = (path: FieldPath, message: string): RuleResult => ({ path, message, severity: 'warning' })

const network: Rule = (input) => {
  const n = input.host?.network
  if (!n) return []
  const out: RuleResult[] = []
  const base = ['host', 'network']
  if (n.mode === 'static' && !n.address) out.push(error(base, 'mode static needs "address" (e.g. 192.0.2.10/24)'))
  if (n.mode !== 'static') {
    for (const k of ['address', 'gateway'] as const) {
      if (n[k] !== undefined) out.push(error([...base, k], `is only used with "mode: static"; set mode: static or remove ${k}`))
    }
  }
  if (n.mode === 'static' && n.address && n.gateway) {
    const [addr, prefix] = n.address.split('/') as [string, string]
    const toInt = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0)
    const size = 2 ** (32 - Number(prefix))
    if (Math.floor(toInt(addr) / size) !== Math.floor(toInt(n.gateway) / size)) {
      out.push(error([...base, 'gateway'], `${n.gateway} is not inside ${n.address}`))
    }
    if (toInt(addr) === toInt(n.gateway)) out.push(error([...base, 'gateway'], 'must differ from the host address'))
  }
  return out
}

// The layout check lives with the layout computation (render/disk.ts) so the
// two cannot disagree; here its findings get their place in the file.
const disk: Rule = (input, config) =>
  input.host?.disk?.device
    ? checkDiskLayout(config).map((e) => error(e.path, e.message))
    : [
        error(
          input.host?.disk ? ['host', 'disk'] : input.host ? ['host'] : [],
          'missing "host.disk.device": name the one disk to install on (e.g. vda); no disk the config does not name is ever wiped',
        ),
      ]

const users: Rule = (input) => {
  const out: RuleResult[] = []
  const seen = new Set<string>()
  ;(input.host?.users ?? []).forEach((u, i) => {
    if (u.name === 'root') out.push(error(['host', 'users', i, 'name'], 'root is configured under host.root, not as a user'))
    if (seen.has(u.name)) out.push(error(['host', 'users', i, 'name'], `user "${u.name}" is listed twice`))
    seen.add(u.name)
  })
  return out
}

const tls: Rule = (input) => {
  const t = input.registry?.tls
  if (!t) return []
  const base = ['registry', 'tls']
  const provided = t.mode === 'provided' || (t.mode === undefined && t.certFile !== undefined)
  if (provided) {
    return (['certFile', 'keyFile'] as const).filter((k) => !t[k]).map((k) => error(base, `mode provided needs "${k}"`))
  }
  return (['certFile', 'keyFile', 'caFile'] as const)
    .filter((k) => t[k] !== undefined)
    .map((k) => error([...base, k], 'is only used with "mode: provided"'))
}

const storage: Rule = (input) => {
  const s = input.registry?.storage
  if (!s) return []
  const base = ['registry', 'storage']
  const s3Only = ['endpoint', 'bucket', 'region', 'prefix', 'accessKeyFile', 'secretKeyFile', 'caFile'] as const
  if (s.type !== 's3') {
    return s3Only.filter((k) => s[k] !== undefined).map((k) => error([...base, k], 'is only used with "type: s3"'))
  }
  const out = (['endpoint', 'bucket', 'accessKeyFile', 'secretKeyFile'] as const)
    .filter((k) => !s[k])
    .map((k) => error(base, `type s3 needs "${k}"`))
  if (s.endpoint?.startsWith('http://')) {
    if (s.caFile) out.push(error([...base, 'caFile'], 'is only used with an https:// endpoint'))
    else
      out.push(
        warning(
          [...base, 'endpoint'],
          'plain http: the access keys sign requests but images cross the network unencrypted; use https outside a lab',
        ),
      )
  }
  return out
}

const fleet: Rule = (input) => {
  const hosts = input.fleet?.hosts
  if (!hosts) return []
  const out: RuleResult[] = []
  const toInt = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0)
  const seen: Record<'hostname' | 'mac' | 'address', Map<string, number>> = { hostname: new Map(), mac: new Map(), address: new Map() }
  hosts.forEach((h, i) => {
    const base = ['fleet', 'hosts', i]
    const addr = h.address.split('/')[0]!
    for (const [k, v] of [
      ['hostname', h.hostname],
      ['mac', h.mac],
      ['address', addr],
    ] as const) {
      const prev = seen[k].get(v)
      if (prev !== undefined) out.push(error([...base, k], `${v} is already used by fleet.hosts[${prev}]`))
      else seen[k].set(v, i)
    }
    if (h.gateway) {
      const size = 2 ** (32 - Number(h.address.split('/')[1]))
      if (Math.floor(toInt(addr) / size) !== Math.floor(toInt(h.gateway) / size))
        out.push(error([...base, 'gateway'], `${h.gateway} is not inside ${h.address}`))
    }
  })
  if (input.registry?.tls?.mode === 'provided' || input.registry?.tls?.certFile)
    out.push(
      error(
        ['registry', 'tls'],
        'a fleet gets one generated CA and a certificate per host; provided certificates are not supported with fleet',
      ),
    )
  if (input.host?.hostname) out.push(warning(['host', 'hostname'], 'not used with a fleet: each of fleet.hosts names its host'))
  if (input.host?.network?.address || input.host?.network?.mac)
    out.push(warning(['host', 'network'], 'address and mac are not used with a fleet: each of fleet.hosts gives its own'))
  return out
}

// What a fleet is built as: one payload.iso and an OEMDRV per host, or one
// PXE tree. Media made for one machine (a remastered ISO, a VM disk, the
// bundle for an existing host) have no meaning for a list of them. What a
// build's --pxe could still make right is checked for the build only.
const fleetOutputs: Rule = (_input, config, ctx) => {
  if (!config.fleet) return []
  const o = config.outputs
  const out: RuleResult[] = []
  if (ctx.build && o.iso && !o.pxe)
    out.push(
      error(
        ['outputs', 'iso'],
        'one remastered ISO per host is not available for fleets: a fleet is built as one payload.iso plus one OEMDRV per host (with --pxe or outputs.pxe, the ISO is the installer of the PXE tree)',
      ),
    )
  if (o.qcow2) out.push(error(['outputs', 'qcow2'], 'qcow2 output is not available for fleets'))
  if (o.bundle) out.push(error(['outputs', 'bundle'], 'the install bundle is not available for fleets'))
  if (ctx.build && !o.oemdrv && !o.pxe)
    out.push(
      error(
        ['outputs', 'oemdrv'],
        'a fleet needs its OEMDRV media, or a PXE tree (--pxe or outputs.pxe): drop --no-oemdrv or outputs.oemdrv: false',
      ),
    )
  return out
}

// What the schema's pattern lets through but is no URL (a port above 65535).
const pxeUrl: Rule = (_input, config) => {
  const url = config.outputs.pxe?.baseUrl
  if (url === undefined) return []
  try {
    normalizeBaseUrl(url)
    return []
  } catch (e) {
    if (!(e instanceof UserError)) throw e
    return [error(['outputs', 'pxe', 'baseUrl'], e.message)]
  }
}

// Inputs a medium is made from. Only for a build: the config may leave them
// to the build's flags (--iso, --base-image), which validate does not see.
const buildInputs: Rule = (_input, config, ctx) => {
  if (!ctx.build) return []
  const o = config.outputs
  const out: RuleResult[] = []
  if (o.pxe && !o.iso)
    out.push(
      error(
        ['outputs', 'pxe'],
        'a PXE tree needs the RHEL ISO to take the kernel and initrd from: add --iso BASE.iso, or outputs.iso.base in the config',
      ),
    )
  if (o.qcow2 && !o.qcow2.baseImage && !o.iso && !config.fleet)
    out.push(
      error(
        ['outputs', 'qcow2'],
        'a qcow2 needs either a RHEL 8 KVM guest image (--base-image rhel-8.x-x86_64-kvm.qcow2, or outputs.qcow2.baseImage) or the RHEL ISO to install from (--iso BASE.iso, or outputs.iso.base)',
      ),
    )
  return out
}

const images: Rule = (input, config) => {
  const out: RuleResult[] = []
  const targets = new Map<string, number>()
  ;(input.content?.images ?? []).forEach((img, i) => {
    const inRef = img.ref.match(/@(sha256:[a-f0-9]{64})$/)?.[1]
    if (inRef && img.digest && inRef !== img.digest) {
      out.push(error(['content', 'images', i, 'digest'], `differs from the digest in ref (${inRef})`))
    }
    if (!inRef && !img.digest) {
      out.push(warning(['content', 'images', i, 'ref'], 'no digest: the image is pinned when fetched, not by this config'))
    }
    const n = config.content.images[i]!
    const key = `${n.target}${img.ref.match(/:[^/:@]+(?=@|$)/)?.[0] ?? ''}`
    const prev = targets.get(key)
    if (prev !== undefined) out.push(error(['content', 'images', i, 'target'], `same target as content.images[${prev}] (${key})`))
    targets.set(key, i)
  })
  return out
}

// registry.images.<role>: only the roles the flavor's stack has (the schema
// checks each entry's ref and digest).
const stackImages: Rule = (input, config) => {
  const images = input.registry?.images
  if (!images) return []
  const flavor = config.registry.flavor
  const roles = STACK_ROLES[flavor]
  return Object.keys(images)
    .filter((r) => !(roles as readonly string[]).includes(r))
    .map((r) => ({
      ...error(
        ['registry', 'images', r],
        `flavor ${flavor}${input.registry?.flavor ? '' : ' (the default)'} has no "${r}" image; its stack images are: ${roles.join(', ')}`,
      ),
      atKey: true,
    }))
}

const podman: Rule = (_input, config) => {
  const [, minor] = config.host.rhel.split('.').map(Number) as [number, number]
  return minor < 8
    ? [warning(['host', 'rhel'], `RHEL ${config.host.rhel} has no quadlet (podman < 4.4): plain systemd units running podman are used`)]
    : []
}

// Without a key and without passwords nobody logs in over SSH: said, not refused (a console-only host is a choice).
const ssh: Rule = (input, config) =>
  input.host?.ssh?.passwordAuthentication === false && !config.host.users.some((u) => u.sshKeys.length > 0)
    ? [
        warning(
          ['host', 'ssh', 'passwordAuthentication'],
          'false, and no user in host.users has sshKeys: nobody can log in over SSH (console only)',
        ),
      ]
    : []

const RULES: Rule[] = [network, disk, users, tls, storage, fleet, fleetOutputs, pxeUrl, buildInputs, images, stackImages, podman, ssh]

export function checkRules(input: ConfigInput, config: Config, ctx: RuleContext = { build: false }): RuleResult[] {
  return RULES.flatMap((r) => r(input, config, ctx))
}

// From what the user wrote to the config every later stage reads: defaults
// filled in, paths made absolute, derived values (short name, netmask)
// computed once here.

import { isAbsolute, resolve } from 'node:path'
import type { Config, ConfigInput, Network, NetworkInput, Password, PasswordInput, S3Storage, StorageInput, User } from './types.js'

export const DEFAULTS = {
  hostname: 'mirror.example.internal',
  rhel: '8.10',
  timezone: 'UTC',
  keyboard: 'us',
  language: 'en_US.UTF-8',
  minSizeGiB: 64,
  rootGiB: 20,
  swapGiB: 4,
  varGiB: 0,
  flavor: 'quay',
  port: 8443,
  dataDir: '/var/lib/mirror-registry',
  initUser: 'init',
  validityDays: 730,
  architecture: 'amd64',
} as const

export function normalizePassword(p: PasswordInput | undefined, fallback: Password): Password {
  if (!p) return fallback
  if ('plain' in p) return { kind: 'plain', plain: p.plain }
  if ('hash' in p) return { kind: 'hash', hash: p.hash }
  if ('generate' in p) return { kind: 'generate' }
  return { kind: 'locked' }
}

export function prefixToNetmask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 0xff).join('.')
}

function normalizeNetwork(n: NetworkInput | undefined): Network {
  const common = {
    ...(n?.interface ? { interface: n.interface } : {}),
    ...(n?.mac ? { mac: n.mac } : {}),
    dns: n?.dns ?? [],
    searchDomains: n?.searchDomains ?? [],
  }
  if (n?.mode === 'static' && n.address) {
    const [address, prefix] = n.address.split('/') as [string, string]
    return {
      mode: 'static',
      ...common,
      address,
      prefix: Number(prefix),
      netmask: prefixToNetmask(Number(prefix)),
      ...(n.gateway ? { gateway: n.gateway } : {}),
    }
  }
  return { mode: 'dhcp', ...common }
}

/** The signing region an AWS endpoint names (s3.eu-west-1.amazonaws.com), if any. */
export function awsRegionOf(endpoint: string): string | undefined {
  return /^https?:\/\/s3[.-]([a-z0-9-]+)\.amazonaws\.com(:\d+)?\/?$/.exec(endpoint)?.[1]
}

function normalizeStorage(s: StorageInput | undefined, hostname: string, abs: (p: string) => string): S3Storage | undefined {
  if (s?.type !== 's3') return undefined
  const endpoint = (s.endpoint ?? '').replace(/\/+$/, '')
  return {
    type: 's3',
    endpoint,
    bucket: s.bucket ?? '',
    region: s.region ?? awsRegionOf(endpoint) ?? 'us-east-1',
    prefix: s.prefix ?? hostname,
    accessKeyFile: s.accessKeyFile ? abs(s.accessKeyFile) : '',
    secretKeyFile: s.secretKeyFile ? abs(s.secretKeyFile) : '',
    ...(s.caFile ? { caFile: abs(s.caFile) } : {}),
  }
}

export function normalizeConfig(input: ConfigInput, opts: { baseDir: string }): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(opts.baseDir, p))
  const h = input.host ?? {}
  const hostname = h.hostname ?? DEFAULTS.hostname
  const users: User[] = (h.users ?? []).map((u) => ({
    name: u.name,
    gecos: u.gecos ?? '',
    sudo: u.sudo ?? true,
    password: normalizePassword(u.password, { kind: 'locked' }),
    sshKeys: u.sshKeys ?? [],
  }))
  const d = h.disk ?? {}
  const r = input.registry ?? {}
  const tls = r.tls ?? {}
  const c = input.content ?? {}
  const o = input.outputs ?? {}
  return {
    apiVersion: input.apiVersion,
    host: {
      hostname,
      shortName: hostname.split('.')[0]!,
      rhel: h.rhel ?? DEFAULTS.rhel,
      timezone: h.timezone ?? DEFAULTS.timezone,
      ntpServers: h.ntpServers ?? [],
      keyboard: h.keyboard ?? DEFAULTS.keyboard,
      language: h.language ?? DEFAULTS.language,
      fips: h.fips ?? false,
      network: normalizeNetwork(h.network),
      root: normalizePassword(h.root, { kind: 'generate' }),
      users,
      ssh: {
        permitRootLogin: h.ssh?.permitRootLogin ?? 'prohibit-password',
        // Once someone can log in by key, passwords over SSH are only a way in for guessers.
        passwordAuthentication: h.ssh?.passwordAuthentication ?? !users.some((u) => u.sshKeys.length > 0),
      },
      firewall: { keepServices: h.firewall?.keepServices ?? [] },
      disk: {
        device: (d.device ?? '').replace(/^\/dev\/(?!disk\/)/, ''),
        minSizeGiB: d.minSizeGiB ?? DEFAULTS.minSizeGiB,
        firmware: d.firmware ?? 'auto',
        layout: {
          rootGiB: d.layout?.rootGiB ?? DEFAULTS.rootGiB,
          swapGiB: d.layout?.swapGiB ?? DEFAULTS.swapGiB,
          varGiB: d.layout?.varGiB ?? DEFAULTS.varGiB,
          registryDataGiB: d.layout?.registryDataGiB ?? 'rest',
        },
      },
    },
    registry: {
      flavor: r.flavor ?? DEFAULTS.flavor,
      port: r.port ?? DEFAULTS.port,
      dataDir: r.dataDir ?? DEFAULTS.dataDir,
      initUser: {
        name: r.initUser?.name ?? DEFAULTS.initUser,
        ...(r.initUser?.password !== undefined ? { password: r.initUser.password } : {}),
        email: r.initUser?.email ?? `${r.initUser?.name ?? DEFAULTS.initUser}@${hostname}`,
      },
      tls: {
        mode: tls.mode ?? (tls.certFile ? 'provided' : 'generate'),
        ...(tls.certFile ? { certFile: abs(tls.certFile) } : {}),
        ...(tls.keyFile ? { keyFile: abs(tls.keyFile) } : {}),
        ...(tls.caFile ? { caFile: abs(tls.caFile) } : {}),
        validityDays: tls.validityDays ?? DEFAULTS.validityDays,
        extraSANs: tls.extraSANs ?? [],
        autoRenew: tls.autoRenew ?? true,
      },
      ...(r.storage?.type === 's3' ? { storage: normalizeStorage(r.storage, hostname, abs) } : {}),
      // Sign-up stays closed unless asked for: the init user creates the others.
      quay: { userCreation: r.quay?.userCreation ?? false },
      ...(r.images && Object.keys(r.images).length
        ? {
            images: Object.fromEntries(
              (['quay', 'redis', 'registry'] as const).flatMap((role) => {
                const i = r.images?.[role]
                return i ? [[role, { ref: i.ref, digest: i.digest }]] : []
              }),
            ),
          }
        : {}),
    },
    content: {
      architecture: c.architecture ?? DEFAULTS.architecture,
      images: (c.images ?? []).map((i) => {
        const digest = i.digest ?? i.ref.match(/@(sha256:[a-f0-9]{64})$/)?.[1]
        return {
          ref: i.ref,
          ...(digest ? { digest } : {}),
          target:
            i.target ??
            i.ref
              .replace(/@.*$/, '')
              .replace(/^[^/]+\//, '')
              .replace(/:[^/:]+$/, ''),
        }
      }),
      archives: (c.archives ?? []).map((a) => ({ path: abs(a.path), format: a.format ?? 'auto' })),
      ocMirrorArchives: (c.ocMirrorArchives ?? []).map(abs),
      keepPayload: c.keepPayload ?? false,
    },
    outputs: {
      oemdrv: o.oemdrv ?? true,
      ...(o.iso ? { iso: { base: abs(o.iso.base) } } : {}),
      ...(o.qcow2
        ? {
            qcow2: {
              ...(o.qcow2.baseImage ? { baseImage: abs(o.qcow2.baseImage) } : {}),
              sizeGiB: o.qcow2.sizeGiB ?? 100,
              compress: o.qcow2.compress ?? false,
            },
          }
        : {}),
      ...(o.pxe ? { pxe: { baseUrl: o.pxe.baseUrl.replace(/\/+$/, '') } } : {}),
      bundle: o.bundle ?? false,
    },
    ...(input.fleet
      ? {
          fleet: {
            hosts: input.fleet.hosts.map((fh) => {
              const [address, prefix] = fh.address.split('/') as [string, string]
              return {
                hostname: fh.hostname,
                address,
                prefix: Number(prefix),
                mac: fh.mac,
                ...(fh.gateway ? { gateway: fh.gateway } : {}),
                ...(fh.interface ? { interface: fh.interface } : {}),
                ...(fh.disk ? { disk: fh.disk.replace(/^\/dev\/(?!disk\/)/, '') } : {}),
                role: fh.role ?? 'registry',
              }
            }),
          },
        }
      : {}),
  }
}

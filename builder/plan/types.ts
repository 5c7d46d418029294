// The plan: the normalized config plus everything derived from it before any
// text is rendered: secrets, PKI material, and the host spec.

import type { Config } from '../config/types.js'
import type { StackImage } from '../payload/lock.js'

/** One file the installed host gets. Rendered into kickstart %post, Butane and Ignition alike. */
export interface HostFile {
  /** Absolute path on the host, e.g. /etc/containers/systemd/quay-app.container */
  path: string
  /** Exact contents */
  contents: string | Buffer
  /** Octal permission bits, e.g. 0o644 */
  mode: number
  owner: string
  group: string
  /** SELinux type to set (chcon -t) where the default label is wrong, e.g. container_file_t */
  selinuxType?: string
  /** True for files holding secrets: never logged, audited by the secrets test */
  secret?: boolean
}

/** A locked system account: no password, no login shell, its own group with gid = uid. */
export interface HostAccount {
  name: string
  uid: number
  gecos: string
  home: string
  shell: string
}

export interface HostDir {
  path: string
  mode: number
  owner: string
  group: string
  selinuxType?: string
}

/**
 * The installed host, as one model. Every renderer (kickstart %post, Butane,
 * Ignition) reads only this, so they cannot disagree.
 */
export interface HostSpec {
  dirs: HostDir[]
  /**
   * Locked accounts that reserve the ids of a container's user (Quay runs as
   * uid 1001), created before any configured user so that no person gets
   * that uid and with it the registry's keys. Absent: none.
   */
  accounts?: HostAccount[]
  files: HostFile[]
  /** systemd units to enable (names, e.g. mirror-appliance-firstboot.service) */
  enableUnits: string[]
  /** systemd units to disable */
  disableUnits: string[]
  /** firewalld ports to open, e.g. "8443/tcp" */
  firewallPorts: string[]
  /**
   * Services of RHEL's default zone to close on an installed host (e.g.
   * cockpit); absent: none. Not for the bundle: an existing host's firewall
   * beyond the registry port is its administrator's.
   */
  firewallRemoveServices?: string[]
}

/** Secrets generated for (or given by) this appliance. Only ever written to secrets/ (0600) and the host. */
export interface Secrets {
  /** SHA-512 crypt hash for root, or null when root is locked */
  rootPasswordHash: string | null
  /** The generated root password when the config asked for one (written to secrets/ only) */
  rootPasswordGenerated?: string
  /** name -> SHA-512 crypt hash for admin users with a password */
  userPasswordHashes: Record<string, string>
  /** Registry init user password (plain: needed at first boot for Quay's API and for the pull secret) */
  initPassword: string
  /** Redis password (quay flavor) */
  redisPassword: string
  /** Quay SECRET_KEY and DATABASE_SECRET_KEY */
  quaySecretKey: string
  quayDatabaseSecretKey: string
}

export interface Pki {
  /** PEM of the CA certificate (goes on the host and into the OpenShift trust bundle) */
  caCertPem: string
  /** PEM of the CA private key; only in secrets/, never on media. Absent for provided certs without CA key. */
  caKeyPem?: string
  serverCertPem: string
  serverKeyPem: string
  /** Full chain (server cert then intermediates) as served by the registry */
  serverChainPem: string
  /** SANs of the server certificate */
  dnsNames: string[]
  ipAddresses: string[]
  notBefore: Date
  notAfter: Date
  /** Where this build's server certificate came from, said in the build summary (absent: issued, nothing stored to compare) */
  serverCertSource?: ServerCertSource
  /** Generated CAs: constrained (pathlen:0 and name constraints) or legacy (an older CA kept from secrets/) */
  caProfile?: 'constrained' | 'legacy'
}

/**
 * reused: the certificate and key stored in secrets/ by an earlier build (the
 * media then come out byte-identical); new: none stored yet; reissued: one was
 * stored but no longer fits (reason says why); provided: registry.tls.certFile.
 */
export type ServerCertSource = { kind: 'reused' } | { kind: 'new' } | { kind: 'reissued'; reason: string } | { kind: 'provided' }

export interface BuildOptions {
  /** Seconds since epoch for every timestamp we write (SOURCE_DATE_EPOCH) */
  epoch: number
  /** Deterministic secrets for tests and reproducible demos; never for production */
  seed?: string
}

export interface Plan {
  config: Config
  /** Absolute path of the config file, or "<default>" for the embedded one */
  configPath: string
  /** sha256 of the config text */
  configDigest: string
  options: BuildOptions
  secrets: Secrets
  pki: Pki
  host: HostSpec
  /** The stack images the host spec names (resolveStack: the lock with the config's registry.images) */
  stack: StackImage[]
}

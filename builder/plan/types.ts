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
  /**
   * What the host's scripts need to know about it, built with the rest of
   * the spec (builder/registry/hostspec.ts) and written on the host as one
   * bash file (builder/registry/facts.ts). Absent: a host spec that is no
   * registry host (tests of the renderers).
   */
  facts?: HostFacts
}

/**
 * The facts of one registry host: the one record first boot,
 * mirror-registryctl, the bundle and the tests read, so none of them derives
 * a fact a second time. Host paths that are the same on every host
 * (builder/registry/layout.ts) are not repeated here; the facts file carries
 * them too.
 */
export interface HostFacts {
  /** mirror-appliance version that built the host */
  version: string
  flavor: 'quay' | 'distribution'
  /** The registry's name (host.hostname) and its first label */
  hostname: string
  shortName: string
  port: number
  /** hostname:port, what clients use */
  address: string
  /** What the host's own name resolves to when no DNS knows it yet */
  selfAddress: string
  /** registry.dataDir as built (the bundle's install may move it) */
  dataDir: string
  /** RHEL 8.8+: quadlet units; older: plain units running podman */
  quadlet: boolean
  /** The podman version the units were rendered for */
  podman: string
  /** Registry container units, in start order */
  units: string[]
  /** Units to enable with systemctl (plain units; quadlets are enabled by their [Install]) */
  enableUnits: string[]
  networkUnit: string
  podmanNetwork: string
  firewallPorts: string[]
  /** What says the registry is up: this path answering this HTTP code */
  health: { path: string; code: number }
  /** Stack images as the units name them, repo@digest */
  stackRefs: string[]
  initUser: string
  initEmail: string
  /** The locked account that reserves the uid of the registry's container (quay), or null */
  account: HostAccount | null
  /** Where the host keeps its server certificate (chain), key and the CA */
  certFiles: string[]
  keyFiles: string[]
  caFiles: string[]
  /** Names and addresses of the server certificate (for rotate-cert) */
  sanDns: string[]
  sanIp: string[]
  /** Seconds since the epoch: the certificate is not valid before */
  certNotBefore: number
  /** Unit files of the registry (rebased to a moved data dir, swapped on upgrade) */
  unitFiles: string[]
  /**
   * What a new release may change at its first start and upgrade must put
   * back on rollback: Quay's SQLite database directory (Quay migrates its
   * schema on start), distribution's config file
   */
  upgradeKeep: string[]
  /** Every file of the host spec, paths only */
  hostFiles: string[]
  /**
   * Units whose port stays on loopback until the init user exists: `file`
   * is the live unit, `open` the same unit publishing on every address,
   * which first boot puts in its place once the user exists.
   */
  openAfterInit: { unit: string; file: string; open: string }[]
  /** Object storage: the first-boot preflight and the env file it reads; null for the host's disk */
  storage: { endpoint: string; bucket: string; preflight: string; envFile: string } | null
  /**
   * The registry's storage directory on the host (mounted at its
   * rootdirectory) into which first boot moves the payload's registry
   * storage tree instead of pushing (distribution on the host's disk); '' when
   * content is pushed (Quay, object storage)
   */
  contentTreeDir: string
  /**
   * Where the registry keeps its blobs on the host's disk as built (Quay's
   * /datastorage, distribution's rootdirectory), '' when they are in a
   * bucket; mirror-registryctl install --quayStorage moves it
   */
  storageDir: string
  /** Quay's SQLite database directory as built ('' for distribution); install --sqliteStorage moves it */
  databaseDir: string
  /** content.keepPayload: the payload stays after first boot */
  keepPayload: boolean
  /** The watchdog: restart the registry after this many failed probes in a row, not within `grace` seconds of its start */
  healthWatch: { restartAfter: number; grace: number }
  /** registry.tls.autoRenew: the daily renewal timer is installed */
  autoRenew: boolean
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

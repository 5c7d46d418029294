// The configuration in two shapes: what the user wrote (every field optional
// but apiVersion, exactly what schema.json allows) and the normalized config
// (defaults filled in, derived values computed) that every later stage reads.
// test/config-schema.test.ts keeps these types and schema.json in step.

import type { RhelMinor } from '../rhel.js'

export type { RhelMinor }
export type Flavor = 'quay' | 'distribution'
export type Architecture = 'all' | 'amd64' | 'arm64' | 'ppc64le' | 's390x'
export type Size = number | 'rest'

export type PasswordInput = { plain: string } | { hash: string } | { generate: true } | { locked: true }

export interface UserInput {
  name: string
  gecos?: string
  sudo?: boolean
  password?: PasswordInput
  sshKeys?: string[]
}

export interface NetworkInput {
  mode?: 'dhcp' | 'static'
  interface?: string
  mac?: string
  address?: string
  gateway?: string
  dns?: string[]
  searchDomains?: string[]
}

export interface DiskInput {
  device?: string
  minSizeGiB?: number
  firmware?: 'auto' | 'bios' | 'uefi'
  layout?: {
    rootGiB?: number
    swapGiB?: number
    varGiB?: number
    registryDataGiB?: Size
  }
}

/** PermitRootLogin values the config may choose. */
export type PermitRootLogin = 'prohibit-password' | 'no' | 'yes'

export interface SshInput {
  permitRootLogin?: PermitRootLogin
  passwordAuthentication?: boolean
}

/** Services RHEL 8's default firewalld zone opens besides ssh, which the appliance removes unless kept. */
export type RhelZoneService = 'cockpit' | 'dhcpv6-client'

export interface FirewallInput {
  keepServices?: RhelZoneService[]
}

export interface HostInput {
  hostname?: string
  rhel?: RhelMinor
  timezone?: string
  ntpServers?: string[]
  keyboard?: string
  language?: string
  fips?: boolean
  network?: NetworkInput
  root?: PasswordInput
  users?: UserInput[]
  disk?: DiskInput
  ssh?: SshInput
  firewall?: FirewallInput
}

export interface TlsInput {
  mode?: 'generate' | 'provided'
  certFile?: string
  keyFile?: string
  caFile?: string
  validityDays?: number
  extraSANs?: string[]
  autoRenew?: boolean
}

/**
 * Where the registry keeps image data: the host's disk (local, the default)
 * or an existing S3-compatible object store (Ceph RGW, ODF, MinIO, AWS S3).
 * The keys are never written in the config: they are read at build time from
 * the files named here.
 */
export interface StorageInput {
  type?: 'local' | 's3'
  /** https://host[:port] (http:// only for labs) */
  endpoint?: string
  bucket?: string
  region?: string
  /** Key prefix inside the bucket; default: host.hostname (hosts may share a bucket) */
  prefix?: string
  /** Files on the build machine holding the access key id and the secret key */
  accessKeyFile?: string
  secretKeyFile?: string
  /** PEM CA bundle that signed a private endpoint's certificate */
  caFile?: string
}

/** Role of an image in the registry stack: quay and redis (flavor quay), registry (flavor distribution). */
export type StackRole = 'quay' | 'redis' | 'registry'

/** A stack image the site chooses instead of the lock's, pinned by its digest (an index digest for multi-arch images). */
export interface StackImageInput {
  /** Repository with optional tag, e.g. registry.redhat.io/quay/quay-rhel8:v3.12.1 */
  ref: string
  /** sha256:… the image (or its index) has */
  digest: string
}

export interface RegistryInput {
  flavor?: Flavor
  port?: number
  dataDir?: string
  initUser?: { name?: string; password?: string; email?: string }
  tls?: TlsInput
  storage?: StorageInput
  /** Settings of the quay flavor's Quay */
  quay?: QuayInput
  /** Stack images that replace the lock's (images/<flavor>.lock.json), by role */
  images?: { [R in StackRole]?: StackImageInput }
}

export interface QuayInput {
  /** Anyone who reaches the registry may sign up (Quay's FEATURE_USER_CREATION); default false */
  userCreation?: boolean
}

export interface ImageInput {
  ref: string
  digest?: string
  target?: string
}

export interface ArchiveInput {
  path: string
  format?: 'auto' | 'docker-archive' | 'oci-archive' | 'oci-dir'
}

export interface ContentInput {
  architecture?: Architecture
  images?: ImageInput[]
  archives?: ArchiveInput[]
  ocMirrorArchives?: string[]
  /** Keep the payload on the host after first boot put its content into the registry (default false) */
  keepPayload?: boolean
}

export interface OutputsInput {
  oemdrv?: boolean
  iso?: { base: string }
  qcow2?: { baseImage?: string; sizeGiB?: number; compress?: boolean }
  pxe?: { baseUrl: string }
  bundle?: boolean
}

/** One host of a fleet: what differs from the shared `host` section. */
export interface FleetHostInput {
  hostname: string
  /** Static address with prefix, e.g. 192.0.2.11/24 */
  address: string
  /** The configuration is bound to the interface with this MAC */
  mac: string
  /** Default: host.network.gateway */
  gateway?: string
  interface?: string
  /** Default: host.disk.device */
  disk?: string
  /** Free label shown in the summary and manifest, e.g. registry or standby; default registry */
  role?: string
}

/** Many appliances from one build: the config's host section is the template, each entry overrides it. */
export interface FleetInput {
  hosts: FleetHostInput[]
}

/** What the user wrote, as validated by schema.json. */
export interface ConfigInput {
  apiVersion: 'mirror-appliance/v1'
  host?: HostInput
  registry?: RegistryInput
  content?: ContentInput
  outputs?: OutputsInput
  fleet?: FleetInput
}

// ---- normalized ----------------------------------------------------------

export type Password = { kind: 'plain'; plain: string } | { kind: 'hash'; hash: string } | { kind: 'generate' } | { kind: 'locked' }

export interface User {
  name: string
  gecos: string
  sudo: boolean
  password: Password
  sshKeys: string[]
}

export type Network =
  | {
      mode: 'dhcp'
      interface?: string
      mac?: string
      dns: string[]
      searchDomains: string[]
    }
  | {
      mode: 'static'
      interface?: string
      mac?: string
      /** Address without prefix, e.g. 192.0.2.10 */
      address: string
      prefix: number
      /** Dotted netmask derived from prefix, e.g. 255.255.255.0 */
      netmask: string
      gateway?: string
      dns: string[]
      searchDomains: string[]
    }

export interface Disk {
  /** Device name without /dev/ for plain names (vda), full path for /dev/disk/by-* */
  device: string
  minSizeGiB: number
  firmware: 'auto' | 'bios' | 'uefi'
  layout: { rootGiB: number; swapGiB: number; varGiB: number; registryDataGiB: Size }
}

export interface Host {
  hostname: string
  /** First label of hostname */
  shortName: string
  rhel: RhelMinor
  timezone: string
  ntpServers: string[]
  keyboard: string
  language: string
  fips: boolean
  network: Network
  root: Password
  users: User[]
  disk: Disk
  /** sshd settings; passwordAuthentication defaults from the users' SSH keys */
  ssh: { permitRootLogin: PermitRootLogin; passwordAuthentication: boolean }
  firewall: { keepServices: RhelZoneService[] }
}

export interface Tls {
  mode: 'generate' | 'provided'
  /** Absolute paths (resolved against the config file's directory) */
  certFile?: string
  keyFile?: string
  caFile?: string
  validityDays: number
  extraSANs: string[]
  /**
   * A daily timer on the host renews the server certificate 30 days before
   * it expires, with the CA key when the administrator has put it on the host
   * (it never travels on the media); without it, the timer only warns
   * (journal, motd). false: no timer.
   */
  autoRenew: boolean
}

/** Image data on an S3-compatible object store (absent from Registry: the host's disk). */
export interface S3Storage {
  type: 's3'
  /** scheme://host[:port], no trailing slash */
  endpoint: string
  bucket: string
  region: string
  /** No leading or trailing slash */
  prefix: string
  /** Absolute paths on the build machine */
  accessKeyFile: string
  secretKeyFile: string
  caFile?: string
}

export interface Registry {
  flavor: Flavor
  port: number
  dataDir: string
  initUser: { name: string; password?: string; email: string }
  tls: Tls
  /** Object storage for image data; absent: the host's disk (registry.dataDir) */
  storage?: S3Storage
  /** Quay's settings (used by the quay flavor only) */
  quay: { userCreation: boolean }
  /** Stack images the config names instead of the lock's, by role; absent: all from the lock (see resolveStack) */
  images?: { [R in StackRole]?: { ref: string; digest: string } }
}

export interface Image {
  ref: string
  digest?: string
  /** Repository path in the mirror registry */
  target: string
}

export interface Content {
  architecture: Architecture
  images: Image[]
  archives: { path: string; format: 'auto' | 'docker-archive' | 'oci-archive' | 'oci-dir' }[]
  ocMirrorArchives: string[]
  /** The payload stays on the host after first boot (else removed once the registry serves the content) */
  keepPayload: boolean
}

export interface Outputs {
  oemdrv: boolean
  iso?: { base: string }
  qcow2?: { baseImage?: string; sizeGiB: number; compress: boolean }
  pxe?: { baseUrl: string }
  bundle: boolean
}

export interface FleetHost {
  hostname: string
  address: string
  prefix: number
  mac: string
  gateway?: string
  interface?: string
  disk?: string
  role: string
}

export interface Config {
  apiVersion: 'mirror-appliance/v1'
  host: Host
  registry: Registry
  content: Content
  outputs: Outputs
  /** Absent: one appliance (host). Present: one appliance per entry, host as the template. */
  fleet?: { hosts: FleetHost[] }
}

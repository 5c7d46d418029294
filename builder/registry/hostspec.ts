// The registry host: every file, directory and unit the installed RHEL 8
// machine needs to come up as a TLS registry on first boot, for both flavors,
// and the record of facts its scripts read (HostSpec.facts, written on the
// host as layout.HOST_FACTS). A pure function of the plan: kickstart %post,
// Butane, Ignition and the bundle render what it returns. The host's shell
// scripts are static files (templates/host/): the facts are their only input.

import { createHmac } from 'node:crypto'
import type { Config } from '../config/types.js'
import { VERSION } from '../context.js'
import { pinnedRef, resolveStack, type StackImage } from '../payload/lock.js'
import type { HostAccount, HostDir, HostFacts, HostFile, HostSpec, Pki, Secrets } from '../plan/types.js'
import { renderTemplate, staticFile } from '../render/templates.js'
import {
  networkServiceName,
  podmanNetworkName,
  renderPlainContainer,
  renderPlainNetwork,
  renderQuadletContainer,
  renderQuadletNetwork,
  type ContainerModel,
  type NetworkModel,
} from './containers.js'
import { renderFacts } from './facts.js'
import { BCRYPT_COST_CHOSEN, BCRYPT_COST_GENERATED, htpasswdLine } from './htpasswd.js'
import * as L from './layout.js'
import { hasQuadlet, RHEL_PODMAN } from './quadlet-keys.js'
import {
  distributionS3,
  PREFLIGHT_SCRIPT,
  quayStorage,
  readStorageCredentials,
  STORAGE_CA_FILE,
  STORAGE_ENV_FILE,
  storageEnv,
  type StorageCredentials,
} from './storage.js'

export interface RegistryHostSpecInput {
  config: Config
  secrets: Secrets
  pki: Pki
  /** Stack images; default: resolveStack(config), the lock with the config's registry.images */
  stack?: StackImage[]
  /** Object-store keys; default: read from the files config.registry.storage names */
  storageCredentials?: StorageCredentials
}

/** The network both flavors' containers share. 10.89.77.0/24: inside podman's own default pool, away from its first picks. */
export const NETWORK: NetworkModel = { name: 'mirror-appliance', subnet: '10.89.77.0/24', gateway: '10.89.77.1' }
export const REDIS_IP = '10.89.77.10'
/**
 * What RHEL 8's default firewalld zone (public) opens besides ssh. The
 * appliance needs neither: its address is static or DHCPv4, and it has no
 * web console. host.firewall.keepServices keeps them.
 */
export const RHEL_ZONE_EXTRAS = ['cockpit', 'dhcpv6-client'] as const
/** Quay runs as this uid (its Dockerfile: USER 1001, files chgrp 0). */
export const QUAY_UID = '1001'
/**
 * The account that holds Quay's uid on the host. Without it the uid is free,
 * and the second person a kickstart or Ignition creates (uids count up from
 * 1000) would own Quay's TLS key, config.yaml and database. Locked, no login
 * shell. Its home is an empty /home/quay-container: Anaconda always makes one
 * (useradd -m unless the directory exists, and an existing one it re-owns
 * recursively, so "/" is no choice), and Ignition is told to do the same so
 * that the renderings agree.
 */
export const QUAY_ACCOUNT: HostAccount = {
  name: 'quay-container',
  uid: Number(QUAY_UID),
  gecos: "Quay's container user (mirror-appliance)",
  home: '/home/quay-container',
  shell: '/sbin/nologin',
}

/** A secret derived from a generated one, so the plan's Secrets need no new field (HMAC: one-way, independent per purpose). */
function derive(key: string, purpose: string, n = 32): Buffer {
  return createHmac('sha256', key).update(`mirror-appliance/${purpose}`).digest().subarray(0, n)
}

function stackImage(stack: StackImage[], name: string): StackImage {
  const img = stack.find((i) => i.name === name)
  if (!img) throw new Error(`stack lock has no image named ${name}`)
  return img
}

/** Repository of a pinned stack image, as images.tsv's targetRepo carries it. */
export const stackRepo = (img: StackImage) => pinnedRef(img).replace(/@sha256:[a-f0-9]{64}$/, '')

export interface Flavored {
  containers: ContainerModel[]
  files: HostFile[]
  dirs: HostDir[]
  /** What first boot polls, and the HTTP code that means "up" */
  health: { path: string; code: number }
  /** Where this flavor keeps the server certificate (chain), its key and the CA, besides the host-wide places */
  tls: { cert: string[]; key: string[]; ca: string[] }
  /** Containers whose published port stays on loopback until first boot has made the init user */
  openAfterInit: string[]
  /** What upgrade snapshots before the new release starts, and restores on rollback (HostFacts.upgradeKeep) */
  upgradeKeep: string[]
  /** The host directory mounted at the registry's storage root, when first boot lays the payload's storage tree there (HostFacts.contentTreeDir) */
  contentTreeDir?: string
  /** The host directory of the registry's blob storage, when on the host's disk (HostFacts.storageDir) */
  storageDir?: string
  /** Quay's SQLite database directory (HostFacts.databaseDir) */
  databaseDir?: string
}

/**
 * The registry serves a storage tree the payload carries, moved into place at
 * first boot with no push (payload/registry-tree.ts): distribution keeping its
 * data on the host's disk. Quay's storage is its own, and a bucket is not a
 * directory: those are pushed to.
 */
export function laysContentTree(config: Config): boolean {
  return config.registry.flavor === 'distribution' && !config.registry.storage
}

/** The host's shell scripts: static files (templates/host/), their facts in layout.HOST_FACTS. */
export const HOST_SCRIPTS: { source: string; path: string; mode: number }[] = [
  { source: 'templates/host/lib.sh', path: L.HOST_LIB, mode: 0o644 },
  { source: 'templates/host/firstboot', path: L.FIRSTBOOT_SCRIPT, mode: 0o755 },
  { source: 'templates/host/mirror-registryctl', path: L.REGISTRYCTL_PATH, mode: 0o755 },
]

const file = (path: string, contents: string | Buffer, mode: number, extra: Partial<HostFile> = {}): HostFile => ({
  path,
  contents,
  mode,
  owner: 'root',
  group: 'root',
  ...extra,
})
const dir = (path: string, mode: number, extra: Partial<HostDir> = {}): HostDir => ({ path, mode, owner: 'root', group: 'root', ...extra })

/** Quay's database: SQLite in the data directory (templates/quay/config.yaml.hbs writes this DB_URI). */
export const QUAY_DB_URI = 'sqlite:////sqlite/quay_sqlite.db'

/**
 * The environment Quay needs for its database. On SQLite every gunicorn
 * worker is a writer to one file, and several of them fail with "database is
 * locked" under load (PROJQUAY-8758): one worker per pool, as Red Hat's
 * mirror-registry runs it (quay/mirror-registry 4b2cbcc,
 * ansible-runner/context/app/project/roles/mirror_appliance/templates/quay.service.j2:
 * `-e WORKER_COUNT_UNSUPPORTED_MINIMUM=1 -e WORKER_COUNT=1`; without the
 * first, Quay raises WORKER_COUNT back to its per-pool minimum). A database
 * server (postgres) takes concurrent writers: no pin.
 */
export function quaySqliteWorkers(dbUri: string): Record<string, string> {
  return dbUri.startsWith('sqlite:') ? { WORKER_COUNT_UNSUPPORTED_MINIMUM: '1', WORKER_COUNT: '1' } : {}
}

function quay(config: Config, secrets: Secrets, pki: Pki, stack: StackImage[], creds?: StorageCredentials): Flavored {
  const d = config.registry.dataDir
  const s3 = config.registry.storage && creds ? quayStorage(config.registry.storage, creds) : null
  // Quay trusts the PEMs in extra_ca_certs; boto3 (its S3 client) reads AWS_CA_BUNDLE.
  const storageCa = creds?.caPem ? `${d}/quay-config/extra_ca_certs/storage-ca.crt` : null
  const quayImg = stackImage(stack, 'quay')
  const redisImg = stackImage(stack, 'redis')
  const owned = { owner: QUAY_UID, group: 'root' }
  const configYaml = renderTemplate('templates/quay/config.yaml.hbs', {
    serverHostname: L.serverHostname(config),
    redisHost: 'quay-redis',
    redisPassword: secrets.redisPassword,
    secretKey: secrets.quaySecretKey,
    databaseSecretKey: secrets.quayDatabaseSecretKey,
    initUser: config.registry.initUser.name,
    userCreation: config.registry.quay.userCreation,
    storage: s3 ?? false,
    dbUri: QUAY_DB_URI,
  })
  const redisConf = renderTemplate('templates/quay/redis.conf.hbs', { password: secrets.redisPassword })
  return {
    health: { path: '/health/instance', code: 200 },
    tls: {
      cert: [`${d}/quay-config/ssl.cert`],
      key: [`${d}/quay-config/ssl.key`],
      ca: [`${d}/quay-config/extra_ca_certs/mirror-appliance-ca.crt`],
    },
    // Whoever reaches Quay before first boot has made the init user could
    // claim its name (a superuser): its port stays on loopback until then.
    openAfterInit: ['quay-app'],
    // Quay migrates this database on start: a rollback needs it as it was
    upgradeKeep: [`${d}/quay-sqlite`],
    // bind-mounted at /datastorage and /sqlite below; a bucket holds the blobs instead with s3
    ...(s3 ? {} : { storageDir: `${d}/quay-storage` }),
    databaseDir: `${d}/quay-sqlite`,
    dirs: [
      dir(`${d}/quay-config`, 0o750, owned),
      dir(`${d}/quay-config/extra_ca_certs`, 0o750, owned),
      dir(`${d}/quay-storage`, 0o750, owned),
      dir(`${d}/quay-sqlite`, 0o750, owned),
      dir(`${d}/redis`, 0o700),
    ],
    files: [
      file(`${d}/quay-config/config.yaml`, configYaml, 0o640, { ...owned, secret: true }),
      file(`${d}/quay-config/ssl.cert`, pki.serverChainPem, 0o644, owned),
      file(`${d}/quay-config/ssl.key`, pki.serverKeyPem, 0o640, { ...owned, secret: true }),
      file(`${d}/quay-config/extra_ca_certs/mirror-appliance-ca.crt`, pki.caCertPem, 0o644, owned),
      ...(storageCa ? [file(storageCa, creds!.caPem!, 0o644, owned)] : []),
      file(`${d}/redis/redis.conf`, redisConf, 0o600, { secret: true }),
      file(
        `${L.CONF_DIR}/quay-initialize.json`,
        renderTemplate('templates/quay/initialize.json.hbs', {
          username: config.registry.initUser.name,
          password: secrets.initPassword,
          email: config.registry.initUser.email,
        }),
        0o600,
        { secret: true },
      ),
    ],
    containers: [
      {
        name: 'quay-redis',
        description: 'Redis for Quay (mirror-appliance)',
        image: pinnedRef(redisImg),
        // The password comes from a root-only file: the root shell opens it
        // onto stdin, then redis drops to its own user (gosu) and reads its
        // config from stdin, so the password is in no argv and no env.
        exec: ['sh', '-c', 'exec gosu redis redis-server - < /etc/mirror-appliance-redis.conf'],
        volumes: [{ host: `${d}/redis/redis.conf`, container: '/etc/mirror-appliance-redis.conf', options: 'ro,Z' }],
        publish: [],
        network: NETWORK.name,
        ip: REDIS_IP,
        requires: [],
        timeoutStartSec: 300,
      },
      {
        name: 'quay-app',
        description: 'Quay registry (mirror-appliance)',
        image: pinnedRef(quayImg),
        volumes: [
          { host: `${d}/quay-config`, container: '/quay-registry/conf/stack', options: 'Z' },
          { host: `${d}/quay-storage`, container: '/datastorage', options: 'Z' },
          { host: `${d}/quay-sqlite`, container: '/sqlite', options: 'Z' },
        ],
        publish: [`${config.registry.port}:8443`],
        network: NETWORK.name,
        addHosts: [`quay-redis:${REDIS_IP}`],
        environment: {
          ...quaySqliteWorkers(QUAY_DB_URI),
          ...(storageCa ? { AWS_CA_BUNDLE: '/quay-registry/conf/stack/extra_ca_certs/storage-ca.crt' } : {}),
        },
        health: {
          cmd: `python3 -c "import ssl,urllib.request; urllib.request.urlopen('https://localhost:8443/health/instance', context=ssl._create_unverified_context(), timeout=10)"`,
          interval: '30s',
          retries: 3,
          startPeriod: '300s',
          timeout: '15s',
        },
        requires: ['quay-redis'],
        // first start migrates the SQLite database
        timeoutStartSec: 900,
      },
    ],
  }
}

function distribution(config: Config, secrets: Secrets, pki: Pki, stack: StackImage[], creds?: StorageCredentials): Flavored {
  const d = `${config.registry.dataDir}/registry`
  const img = stackImage(stack, 'registry')
  const s3 = config.registry.storage && creds ? distributionS3(config.registry.storage) : null
  const configYml = renderTemplate('templates/distribution/config.yml.hbs', {
    addr: ':5000',
    httpSecret: derive(secrets.quaySecretKey, 'distribution-http-secret').toString('hex'),
    certificate: '/certs/server.crt',
    key: '/certs/server.key',
    htpasswd: '/auth/htpasswd',
    rootdirectory: '/var/lib/registry',
    s3: s3 ?? false,
    realm: `${config.host.hostname} (mirror-appliance)`,
  })
  // A password the config gives was chosen by a person: the higher cost against guessing.
  const cost = config.registry.initUser.password !== undefined ? BCRYPT_COST_CHOSEN : BCRYPT_COST_GENERATED
  const htpasswd =
    htpasswdLine(config.registry.initUser.name, secrets.initPassword, derive(secrets.quaySecretKey, 'htpasswd-salt', 16), cost) + '\n'
  return {
    health: { path: '/v2/', code: 401 },
    tls: { cert: [`${d}/certs/server.crt`], key: [`${d}/certs/server.key`], ca: [] },
    // no init user to make: published from the start
    openAfterInit: [],
    upgradeKeep: [`${d}/config.yml`],
    // on the host's disk the registry serves a storage tree laid at build time (payload/registry-tree.ts)
    ...(s3 ? {} : { contentTreeDir: `${d}/storage`, storageDir: `${d}/storage` }),
    dirs: [dir(d, 0o755), dir(`${d}/auth`, 0o700), dir(`${d}/certs`, 0o755), ...(s3 ? [] : [dir(`${d}/storage`, 0o755)])],
    files: [
      file(`${d}/config.yml`, configYml, 0o600, { secret: true }),
      file(`${d}/auth/htpasswd`, htpasswd, 0o600, { secret: true }),
      file(`${d}/certs/server.crt`, pki.serverChainPem, 0o644),
      file(`${d}/certs/server.key`, pki.serverKeyPem, 0o600, { secret: true }),
    ],
    containers: [
      {
        name: 'registry',
        description: 'Container registry (CNCF distribution, mirror-appliance)',
        image: pinnedRef(img),
        volumes: [
          { host: `${d}/config.yml`, container: '/etc/docker/registry/config.yml', options: 'ro,Z' },
          { host: `${d}/auth`, container: '/auth', options: 'ro,Z' },
          { host: `${d}/certs`, container: '/certs', options: 'ro,Z' },
          ...(s3 ? [] : [{ host: `${d}/storage`, container: '/var/lib/registry', options: 'Z' }]),
          // Go reads SSL_CERT_FILE; AWS_CA_BUNDLE would make the s3 driver panic at start.
          ...(creds?.caPem ? [{ host: STORAGE_CA_FILE, container: '/etc/mirror-appliance/storage-ca.crt', options: 'ro,Z' }] : []),
        ],
        ...(s3 ? { environmentFile: STORAGE_ENV_FILE } : {}),
        ...(creds?.caPem ? { environment: { SSL_CERT_FILE: '/etc/mirror-appliance/storage-ca.crt' } } : {}),
        publish: [`${config.registry.port}:5000`],
        network: NETWORK.name,
        requires: [],
        timeoutStartSec: 300,
      },
    ],
  }
}

/**
 * The container as it runs until first boot has made the init user: every
 * published port bound to 127.0.0.1 (quadlet PublishPort= and podman run
 * --publish take IP:HOST:CONTAINER; podman 4.4.1's quadlet passes it on,
 * pkg/systemd/quadlet/quadlet.go at v4.4.1, 34e8f393). Podman publishes a
 * port with DNAT rules of its own, ahead of firewalld's zones, so a closed
 * firewall port would not keep anyone out: the bind address does.
 */
export function loopbackOnly(c: ContainerModel): ContainerModel {
  return { ...c, publish: c.publish.map((p) => `127.0.0.1:${p}`) }
}

/** A container's unit file and the service it gives, for this podman (quadlet .container, or a plain unit). */
function unitFile(c: ContainerModel, podman: string, dir: string = hasQuadlet(podman) ? L.QUADLET_DIR : L.SYSTEMD_DIR): HostFile {
  return hasQuadlet(podman)
    ? file(`${dir}/${c.name}.container`, renderQuadletContainer(c, NETWORK, podman), 0o644)
    : file(`${dir}/${c.name}.service`, renderPlainContainer(c, NETWORK, podman), 0o644)
}

/**
 * The watchdog's knobs: 3 failed probes in a row (a minute apart, each up to
 * 30 s) restart the registry; none within the slowest container's start
 * timeout of its start, so a Quay that migrates its database on start is
 * never killed half way.
 */
function healthWatch(f: Flavored): HostFacts['healthWatch'] {
  return { restartAfter: 3, grace: Math.max(...f.containers.map((c) => c.timeoutStartSec)) }
}

/**
 * The timers of the watchdog and the certificate renewal (issue 19 points 7
 * and 8). The watchdog is the same host-side timer on every RHEL minor, not
 * podman's own health check (HealthCmd/HealthOnFailure=kill): that needs
 * quadlet 4.5 (RHEL 8.9) for the keys and podman 4.3 for
 * --health-on-failure (8.4-8.7 ship 3.0-4.2, so they need the timer anyway);
 * it runs inside the container, where the distribution stack image (and its
 * stand-in, Debian's docker-registry binary) may have no shell, curl or wget;
 * and it probes the container's own loopback, while the host-side probe goes
 * through the published port and TLS certificate as clients do, which is what
 * fails in mirror-registry #144. One mechanism also gives `status` one
 * record of restarts to read.
 */
function watchdogFiles(config: Config, f: Flavored, data: Record<string, unknown>): HostFile[] {
  const unit = (name: string, template: string, extra: Record<string, unknown> = {}) =>
    file(`${L.SYSTEMD_DIR}/${name}`, renderTemplate(`templates/systemd/${template}`, { ...data, ...extra }), 0o644)
  return [
    unit(L.HEALTH_UNIT, 'health-check.service.hbs', { health: f.health, restartAfter: healthWatch(f).restartAfter }),
    unit(L.HEALTH_TIMER, 'health-check.timer.hbs'),
    ...(config.registry.tls.autoRenew ? [unit(L.RENEW_UNIT, 'renew-cert.service.hbs'), unit(L.RENEW_TIMER, 'renew-cert.timer.hbs')] : []),
  ]
}

/** Timers to enable (their services are started by them). */
function timerUnits(config: Config): string[] {
  return [L.HEALTH_TIMER, ...(config.registry.tls.autoRenew ? [L.RENEW_TIMER] : [])]
}

export function registryHostSpec(input: RegistryHostSpecInput): HostSpec {
  const { config, secrets, pki } = input
  const stack = input.stack ?? resolveStack(config)
  const storage = config.registry.storage
  const creds = storage ? (input.storageCredentials ?? readStorageCredentials(storage)) : undefined
  const f = config.registry.flavor === 'quay' ? quay(config, secrets, pki, stack, creds) : distribution(config, secrets, pki, stack, creds)
  // Both flavors: the preflight reads endpoint, bucket and keys from one 0600 env file.
  const storageFiles: HostFile[] =
    storage && creds
      ? [
          file(STORAGE_ENV_FILE, storageEnv(storage, creds), 0o600, { secret: true }),
          ...(creds.caPem ? [file(STORAGE_CA_FILE, creds.caPem, 0o644)] : []),
          file(PREFLIGHT_SCRIPT, renderTemplate('templates/firstboot/s3-preflight.py.hbs', {}), 0o755),
        ]
      : []
  const podman = RHEL_PODMAN[config.host.rhel]
  const quadlet = hasQuadlet(podman)
  const address = L.registryAddress(config)
  const units = f.containers.map((c) => `${c.name}.service`)

  // A container that opens after init: the live unit publishes on loopback,
  // its open twin waits in OPEN_UNITS_DIR for first boot to put it in place.
  const opening = f.containers.filter((c) => f.openAfterInit.includes(c.name))
  const openAfterInit = opening.map((c) => ({
    unit: `${c.name}.service`,
    live: unitFile(loopbackOnly(c), podman),
    open: unitFile(c, podman, L.OPEN_UNITS_DIR),
  }))
  const unitFiles: HostFile[] = [
    quadlet
      ? file(`${L.QUADLET_DIR}/${NETWORK.name}.network`, renderQuadletNetwork(NETWORK, podman), 0o644)
      : file(`${L.SYSTEMD_DIR}/${networkServiceName(NETWORK)}`, renderPlainNetwork(NETWORK, podman), 0o644),
    ...f.containers.map((c) => openAfterInit.find((o) => o.unit === `${c.name}.service`)?.live ?? unitFile(c, podman)),
    ...openAfterInit.map((o) => o.open),
  ]

  // certs.d for every name and address clients may use (not wildcards: podman looks a directory up by exact host:port)
  const certHosts = [...pki.dnsNames.filter((n) => !n.includes('*')), ...pki.ipAddresses.map((ip) => (ip.includes(':') ? `[${ip}]` : ip))]
  const certsD = certHosts.map((h) => file(`/etc/containers/certs.d/${h}:${config.registry.port}/ca.crt`, pki.caCertPem, 0o644))

  const auth = Buffer.from(`${config.registry.initUser.name}:${secrets.initPassword}`).toString('base64')
  const pullSecret = renderTemplate('templates/firstboot/pull-secret.json.hbs', { address, auth, email: config.registry.initUser.email })
  const staticAddress = config.host.network.mode === 'static' ? config.host.network.address : '127.0.0.1'
  const data = {
    flavor: config.registry.flavor,
    address,
    initUser: config.registry.initUser.name,
    units,
    paths: L,
    dataDir: config.registry.dataDir,
    url: `https://${address}`,
  }
  const caOut = `${L.ROOT_OUT_DIR}/ca.crt`
  const account = config.registry.flavor === 'quay' ? QUAY_ACCOUNT : null

  const files: HostFile[] = [
    ...unitFiles,
    ...f.files,
    ...storageFiles,
    file(L.CA_ANCHOR, pki.caCertPem, 0o644),
    ...certsD,
    file(
      `${L.CONF_DIR}/registry-auth.curl`,
      renderTemplate('templates/firstboot/registry-auth.curl.hbs', {
        userpass: `${config.registry.initUser.name}:${secrets.initPassword}`,
      }),
      0o600,
      { secret: true },
    ),
    file(`${L.ROOT_OUT_DIR}/pull-secret.json`, pullSecret, 0o600, { secret: true }),
    file(
      `${L.ROOT_OUT_DIR}/credentials.txt`,
      renderTemplate('templates/firstboot/credentials.txt.hbs', {
        ...data,
        password: secrets.initPassword,
      }),
      0o600,
      { secret: true },
    ),
    file(caOut, pki.caCertPem, 0o644),
    file(`${L.SYSTEMD_DIR}/${L.FIRSTBOOT_UNIT}`, renderTemplate('templates/firstboot/firstboot.service.hbs', data), 0o644),
    file(`${L.SYSTEMD_DIR}/${L.FIRSTBOOT_FINISH_UNIT}`, renderTemplate('templates/firstboot/firstboot-finish.service.hbs', data), 0o644),
    file(L.MOTD_FILE, renderTemplate('templates/motd-pending.hbs', data), 0o644),
    file(L.MOTD_READY, renderTemplate('templates/motd.hbs', data), 0o644),
    ...watchdogFiles(config, f, data),
  ]
  const scripts = HOST_SCRIPTS.map((s) => file(s.path, staticFile(s.source), s.mode))
  const facts: HostFacts = {
    version: VERSION,
    flavor: config.registry.flavor,
    hostname: config.host.hostname,
    shortName: config.host.shortName,
    port: config.registry.port,
    address,
    selfAddress: staticAddress,
    dataDir: config.registry.dataDir,
    quadlet,
    podman,
    units,
    enableUnits: [...(quadlet ? [] : [networkServiceName(NETWORK), ...units]), ...timerUnits(config)],
    networkUnit: networkServiceName(NETWORK),
    podmanNetwork: podmanNetworkName(NETWORK),
    firewallPorts: [`${config.registry.port}/tcp`],
    health: f.health,
    stackRefs: f.containers.map((c) => c.image),
    initUser: config.registry.initUser.name,
    initEmail: config.registry.initUser.email,
    account,
    certFiles: f.tls.cert,
    keyFiles: f.tls.key,
    caFiles: [...f.tls.ca, L.CA_ANCHOR, ...certsD.map((c) => c.path), caOut],
    sanDns: pki.dnsNames,
    sanIp: pki.ipAddresses,
    certNotBefore: Math.floor(pki.notBefore.getTime() / 1000),
    unitFiles: unitFiles.map((u) => u.path),
    upgradeKeep: f.upgradeKeep,
    // every file of the spec, the facts file and the scripts included
    hostFiles: [...files, ...scripts].map((x) => x.path).concat(L.HOST_FACTS),
    openAfterInit: openAfterInit.map((o) => ({ unit: o.unit, file: o.live.path, open: o.open.path })),
    storage: storage
      ? { endpoint: storage.endpoint, bucket: storage.bucket, preflight: PREFLIGHT_SCRIPT, envFile: STORAGE_ENV_FILE }
      : null,
    contentTreeDir: f.contentTreeDir ?? '',
    storageDir: f.storageDir ?? '',
    databaseDir: f.databaseDir ?? '',
    keepPayload: config.content.keepPayload,
    healthWatch: healthWatch(f),
    autoRenew: config.registry.tls.autoRenew,
  }

  return {
    ...(account ? { accounts: [account] } : {}),
    dirs: [
      dir(L.STATE_DIR, 0o755),
      dir(L.FIRSTBOOT_STATE_DIR, 0o700),
      dir(L.CONF_DIR, 0o700),
      dir(L.ROOT_OUT_DIR, 0o700),
      dir('/usr/local/libexec/mirror-appliance', 0o755),
      dir('/usr/local/share/mirror-appliance', 0o755),
      dir(config.registry.dataDir, 0o755),
      ...(openAfterInit.length ? [dir(L.OPEN_UNITS_DIR, 0o700)] : []),
      ...f.dirs,
    ],
    files: [...files, file(L.HOST_FACTS, renderFacts(facts), 0o644), ...scripts],
    enableUnits: [L.FIRSTBOOT_UNIT, L.FIRSTBOOT_FINISH_UNIT, ...facts.enableUnits],
    disableUnits: [],
    firewallPorts: facts.firewallPorts,
    firewallRemoveServices: RHEL_ZONE_EXTRAS.filter((s) => !config.host.firewall.keepServices.includes(s)),
    facts,
  }
}

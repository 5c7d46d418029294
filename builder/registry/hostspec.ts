// The registry host: every file, directory and unit the installed RHEL 8
// machine needs to come up as a TLS registry on first boot, for both flavors.
// A pure function of the plan: kickstart %post, Butane and Ignition render
// what it returns.

import { createHmac } from 'node:crypto'
import type { Config } from '../config/types.js'
import { pinnedRef, resolveStack, type StackImage } from '../payload/lock.js'
import type { HostAccount, HostDir, HostFile, HostSpec, Pki, Secrets } from '../plan/types.js'
import { renderTemplate } from '../render/templates.js'
import {
  networkServiceName,
  renderPlainContainer,
  renderPlainNetwork,
  renderQuadletContainer,
  renderQuadletNetwork,
  type ContainerModel,
  type NetworkModel,
} from './containers.js'
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
}

const file = (path: string, contents: string | Buffer, mode: number, extra: Partial<HostFile> = {}): HostFile => ({
  path,
  contents,
  mode,
  owner: 'root',
  group: 'root',
  ...extra,
})
const dir = (path: string, mode: number, extra: Partial<HostDir> = {}): HostDir => ({ path, mode, owner: 'root', group: 'root', ...extra })

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
    storage: s3 ?? false,
  })
  const redisConf = renderTemplate('templates/quay/redis.conf.hbs', { password: secrets.redisPassword })
  return {
    health: { path: '/health/instance', code: 200 },
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
        ...(storageCa ? { environment: { AWS_CA_BUNDLE: '/quay-registry/conf/stack/extra_ca_certs/storage-ca.crt' } } : {}),
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

export function registryHostSpec(input: RegistryHostSpecInput): HostSpec {
  const { config, secrets, pki } = input
  const stack = input.stack ?? resolveStack(config)
  const storage = config.registry.storage
  const creds = storage ? (input.storageCredentials ?? readStorageCredentials(storage)) : undefined
  const f =
    config.registry.flavor === 'quay' ? quay(config, secrets, pki, stack, creds) : distribution(config, secrets, pki, stack, creds)
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

  const unitFiles: HostFile[] = quadlet
    ? [
        file(`${L.QUADLET_DIR}/${NETWORK.name}.network`, renderQuadletNetwork(NETWORK, podman), 0o644),
        ...f.containers.map((c) => file(`${L.QUADLET_DIR}/${c.name}.container`, renderQuadletContainer(c, NETWORK, podman), 0o644)),
      ]
    : [
        file(`${L.SYSTEMD_DIR}/${networkServiceName(NETWORK)}`, renderPlainNetwork(NETWORK, podman), 0o644),
        ...f.containers.map((c) => file(`${L.SYSTEMD_DIR}/${c.name}.service`, renderPlainContainer(c, NETWORK, podman), 0o644)),
      ]

  // certs.d for every name and address clients may use (not wildcards: podman looks a directory up by exact host:port)
  const certHosts = [...pki.dnsNames.filter((n) => !n.includes('*')), ...pki.ipAddresses.map((ip) => (ip.includes(':') ? `[${ip}]` : ip))]
  const certsD = certHosts.map((h) => file(`/etc/containers/certs.d/${h}:${config.registry.port}/ca.crt`, pki.caCertPem, 0o644))

  const auth = Buffer.from(`${config.registry.initUser.name}:${secrets.initPassword}`).toString('base64')
  const pullSecret = renderTemplate('templates/firstboot/pull-secret.json.hbs', { address, auth, email: config.registry.initUser.email })
  const staticAddress = config.host.network.mode === 'static' ? config.host.network.address : '127.0.0.1'
  const stackRefs = f.containers.map((c) => c.image)
  const data = {
    flavor: config.registry.flavor,
    address,
    hostname: config.host.hostname,
    shortName: config.host.shortName,
    selfAddress: staticAddress,
    initUser: config.registry.initUser.name,
    units,
    stackRefs,
    healthPath: f.health.path,
    healthCode: f.health.code,
    paths: L,
    dataDir: config.registry.dataDir,
    url: `https://${address}`,
    storage: storage ? { endpoint: storage.endpoint, bucket: storage.bucket, prefix: storage.prefix, envFile: STORAGE_ENV_FILE, preflight: PREFLIGHT_SCRIPT } : false,
  }

  return {
    ...(config.registry.flavor === 'quay' ? { accounts: [QUAY_ACCOUNT] } : {}),
    dirs: [
      dir(L.STATE_DIR, 0o755),
      dir(L.FIRSTBOOT_STATE_DIR, 0o700),
      dir(L.CONF_DIR, 0o700),
      dir(L.ROOT_OUT_DIR, 0o700),
      dir('/usr/local/libexec/mirror-appliance', 0o755),
      dir('/usr/local/share/mirror-appliance', 0o755),
      dir(config.registry.dataDir, 0o755),
      ...f.dirs,
    ],
    files: [
      ...unitFiles,
      ...f.files,
      ...storageFiles,
      file(L.CA_ANCHOR, pki.caCertPem, 0o644),
      ...certsD,
      file(`${L.CONF_DIR}/registry-auth.curl`, renderTemplate('templates/firstboot/registry-auth.curl.hbs', {
        userpass: `${config.registry.initUser.name}:${secrets.initPassword}`,
      }), 0o600, { secret: true }),
      file(`${L.ROOT_OUT_DIR}/pull-secret.json`, pullSecret, 0o600, { secret: true }),
      file(`${L.ROOT_OUT_DIR}/credentials.txt`, renderTemplate('templates/firstboot/credentials.txt.hbs', {
        ...data,
        password: secrets.initPassword,
      }), 0o600, { secret: true }),
      file(`${L.ROOT_OUT_DIR}/ca.crt`, pki.caCertPem, 0o644),
      file(L.FIRSTBOOT_SCRIPT, renderTemplate('templates/firstboot/firstboot.sh.hbs', data), 0o755),
      file(`${L.SYSTEMD_DIR}/${L.FIRSTBOOT_UNIT}`, renderTemplate('templates/firstboot/firstboot.service.hbs', data), 0o644),
      file(`${L.SYSTEMD_DIR}/${L.FIRSTBOOT_FINISH_UNIT}`, renderTemplate('templates/firstboot/firstboot-finish.service.hbs', data), 0o644),
      file(L.MOTD_FILE, renderTemplate('templates/motd-pending.hbs', data), 0o644),
      file(L.MOTD_READY, renderTemplate('templates/motd.hbs', data), 0o644),
    ],
    enableUnits: [L.FIRSTBOOT_UNIT, L.FIRSTBOOT_FINISH_UNIT, ...(quadlet ? [] : [networkServiceName(NETWORK), ...units])],
    disableUnits: [],
    firewallPorts: [`${config.registry.port}/tcp`],
    firewallRemoveServices: RHEL_ZONE_EXTRAS.filter((s) => !config.host.firewall.keepServices.includes(s)),
  }
}

// Registry data on an existing S3-compatible object store (Ceph RGW,
// OpenShift Data Foundation, MinIO, AWS S3) instead of the host's disk.
//
// One normalized description (config.registry.storage) becomes:
//   - Quay: a DISTRIBUTED_STORAGE_CONFIG entry. RadosGWStorage for every
//     S3-compatible store (Quay's documented driver for Ceph RGW, ODF and
//     MinIO: path-style requests to hostname[:port]), S3Storage for AWS
//     endpoints (*.amazonaws.com). Arguments exactly as quay/quay
//     storage/cloud.py takes them: RadosGWStorage(hostname, is_secure,
//     storage_path, access_key, secret_key, bucket_name, port);
//     S3Storage(storage_path, s3_bucket, s3_access_key, s3_secret_key, host,
//     port). Quay reads its keys from config.yaml only, so that file holds
//     them (0640, owner 1001 = Quay's uid, group root).
//   - distribution 2.8: storage.s3 with regionendpoint/region/bucket/secure/
//     v4auth/rootdirectory and redirect disabled; the keys come from an
//     environment file (REGISTRY_STORAGE_S3_ACCESSKEY/SECRETKEY, 0600), not
//     from config.yml. 2.8 has no forcepathstyle switch: with regionendpoint
//     set it always sends path-style requests, which every S3-compatible
//     store serves; for AWS the endpoint is left out and the SDK picks the
//     regional virtual-hosted endpoint from `region`.
//   - the first-boot preflight (templates/firstboot/s3-preflight.py.hbs):
//     a SigV4-signed PUT, GET and DELETE of a probe object, before the
//     registry starts, with one clear sentence when the bucket is not
//     reachable or not writable.
//
// Keys are read here, at build time, from the files the config names; they
// are checked to be one printable line (they go into an env file and YAML).

import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { S3Storage } from '../config/types.js'
import { UserError } from '../errors.js'

export interface StorageCredentials {
  accessKey: string
  secretKey: string
  /** PEM of the private endpoint's CA, when the config names one */
  caPem?: string
}

/** What the host needs, wherever a flavor keeps it. */
export const STORAGE_ENV_FILE = '/etc/mirror-appliance/storage.env'
export const STORAGE_CA_FILE = '/etc/mirror-appliance/storage-ca.crt'
export const PREFLIGHT_SCRIPT = '/usr/local/libexec/mirror-appliance/s3-preflight'

/** AWS endpoints get S3Storage / virtual-hosted requests; everything else is path-style. */
export function isAwsEndpoint(endpoint: string): boolean {
  return /\.amazonaws\.com$/i.test(new URL(endpoint).hostname)
}

function readKeyFile(path: string, field: 'accessKeyFile' | 'secretKeyFile'): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new UserError(`registry.storage.${field}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  const value = text.replace(/\r?\n$/, '')
  // Env files (podman --env-file, systemd) take the value up to the end of
  // the line literally; YAML gets it JSON-quoted. One visible line suits both.
  if (value === '') throw new UserError(`registry.storage.${field} (${path}): the file is empty`)
  if (!/^[\x21-\x7e]+$/.test(value))
    throw new UserError(
      `registry.storage.${field} (${path}): a key must be one line of printable ASCII without spaces`,
      'write only the key into the file (a trailing newline is fine)',
    )
  if (value.length > 256) throw new UserError(`registry.storage.${field} (${path}): ${value.length} characters is too long for a key`)
  return value
}

export function readStorageCredentials(s: S3Storage): StorageCredentials {
  const accessKey = readKeyFile(s.accessKeyFile, 'accessKeyFile')
  const secretKey = readKeyFile(s.secretKeyFile, 'secretKeyFile')
  if (!s.caFile) return { accessKey, secretKey }
  let text: string
  try {
    text = readFileSync(s.caFile, 'utf8')
  } catch (e) {
    throw new UserError(`registry.storage.caFile: cannot read ${s.caFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (!blocks.length) throw new UserError(`registry.storage.caFile (${s.caFile}): no PEM certificate in the file`)
  for (const [i, b] of blocks.entries()) {
    try {
      new X509Certificate(b)
    } catch (e) {
      throw new UserError(`registry.storage.caFile (${s.caFile}): certificate #${i + 1} cannot be parsed: ${(e as Error).message}`)
    }
  }
  return { accessKey, secretKey, caPem: blocks.map((b) => b + '\n').join('') }
}

interface Endpoint {
  secure: boolean
  hostname: string
  /** Explicit port, or undefined for the scheme's default */
  port?: number
}

function endpointParts(endpoint: string): Endpoint {
  const u = new URL(endpoint)
  return { secure: u.protocol === 'https:', hostname: u.hostname, ...(u.port ? { port: Number(u.port) } : {}) }
}

export type QuayStorageDriver = 'RadosGWStorage' | 'S3Storage'

/** Quay's DISTRIBUTED_STORAGE_CONFIG.default entry: [driver, arguments]. */
export function quayStorage(
  s: S3Storage,
  c: StorageCredentials,
): { driver: QuayStorageDriver; args: Record<string, string | number | boolean> } {
  const e = endpointParts(s.endpoint)
  const storagePath = `/${s.prefix}`
  if (isAwsEndpoint(s.endpoint)) {
    return {
      driver: 'S3Storage',
      args: {
        host: e.hostname,
        ...(e.port ? { port: e.port } : {}),
        s3_bucket: s.bucket,
        storage_path: storagePath,
        s3_access_key: c.accessKey,
        s3_secret_key: c.secretKey,
      },
    }
  }
  return {
    driver: 'RadosGWStorage',
    args: {
      hostname: e.hostname,
      is_secure: e.secure,
      port: e.port ?? (e.secure ? 443 : 80),
      bucket_name: s.bucket,
      storage_path: storagePath,
      access_key: c.accessKey,
      secret_key: c.secretKey,
    },
  }
}

/** The view templates/distribution/config.yml.hbs renders storage.s3 from (no keys: those come from the env file). */
export function distributionS3(s: S3Storage): {
  region: string
  regionendpoint?: string
  bucket: string
  secure: boolean
  rootdirectory: string
} {
  const e = endpointParts(s.endpoint)
  return {
    region: s.region,
    ...(isAwsEndpoint(s.endpoint) ? {} : { regionendpoint: s.endpoint }),
    bucket: s.bucket,
    secure: e.secure,
    rootdirectory: `/${s.prefix}`,
  }
}

/**
 * /etc/mirror-appliance/storage.env (0600): what the preflight reads, and
 * for distribution the keys the registry takes from its environment.
 */
export function storageEnv(s: S3Storage, c: StorageCredentials): string {
  const lines: [string, string][] = [
    ['MA_S3_ENDPOINT', s.endpoint],
    ['MA_S3_BUCKET', s.bucket],
    ['MA_S3_REGION', s.region],
    ['MA_S3_PREFIX', s.prefix],
    ['MA_S3_PATH_STYLE', isAwsEndpoint(s.endpoint) ? 'false' : 'true'],
    ...(c.caPem ? ([['MA_S3_CA_FILE', STORAGE_CA_FILE]] as [string, string][]) : []),
    ['REGISTRY_STORAGE_S3_ACCESSKEY', c.accessKey],
    ['REGISTRY_STORAGE_S3_SECRETKEY', c.secretKey],
  ]
  return lines.map(([k, v]) => `${k}=${v}`).join('\n') + '\n'
}

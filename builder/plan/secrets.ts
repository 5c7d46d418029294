// Generated secrets live in the output's secrets/ directory (0700, files
// 0600) and are reused by the next build into the same output, so a rebuild
// keeps the same credentials, CA and server certificate. Plain passwords from the config are
// hashed here and never stored; hash salts come from a stored random key so
// the same secrets give byte-identical outputs.
//
// The layout on disk: a site of one keeps everything in secrets/secrets.json
// (its CA too), as every single-host build always has; a fleet keeps its one
// CA in secrets/fleet-ca.json and each host's own values in
// secrets/hosts/<hostname>/secrets.json.

import { createHmac } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../errors.js'
import type { Config, Password } from '../config/types.js'
import { PLAIN_PASSWORD_ROUNDS, sha512crypt } from './crypt.js'
import { randomHex, randomPassword, type Rng } from './random.js'
import type { Secrets } from './types.js'

/** What secrets/secrets.json holds: only generated values, never the config's plain passwords. */
export interface StoredSecrets {
  version: 1
  saltKey: string
  rootPassword?: string
  userPasswords: Record<string, string>
  initPassword?: string
  redisPassword: string
  quaySecretKey: string
  quayDatabaseSecretKey: string
  /** CA of earlier builds, so that clients keep trusting a rebuilt appliance */
  caCertPem?: string
  caKeyPem?: string
  /**
   * Server certificate and key of earlier builds, reused while they fit the
   * config (names, validity, CA) so a rebuild gives byte-identical media
   */
  serverCertPem?: string
  serverKeyPem?: string
}

export const SECRETS_FILE = 'secrets.json'
/** A fleet's CA, shared by its hosts, beside their directories */
export const FLEET_CA_FILE = 'fleet-ca.json'

/** A CA and its key, as a fleet stores it. */
export interface StoredCa {
  caCertPem: string
  caKeyPem: string
}

/** The fleet CA an earlier build stored in dir, if any. */
export function readFleetCa(dir: string): StoredCa | undefined {
  const file = join(dir, FLEET_CA_FILE)
  if (!existsSync(file)) return undefined
  try {
    const j = JSON.parse(readFileSync(file, 'utf8')) as { version: number; caCertPem: string; caKeyPem: string }
    if (j.version !== 1 || typeof j.caCertPem !== 'string' || typeof j.caKeyPem !== 'string') throw new Error('unknown format')
    return { caCertPem: j.caCertPem, caKeyPem: j.caKeyPem }
  } catch (e) {
    throw new UserError(
      `${file}: cannot read the fleet CA (${(e as Error).message})`,
      'restore it from a backup; every host of the fleet is signed by it',
    )
  }
}

export function readStoredSecrets(dir: string): StoredSecrets | undefined {
  const file = join(dir, SECRETS_FILE)
  if (!existsSync(file)) return undefined
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as StoredSecrets
    if (s.version !== 1 || typeof s.saltKey !== 'string') throw new Error('unknown format')
    return s
  } catch (e) {
    throw new UserError(
      `${file}: cannot read stored secrets (${(e as Error).message})`,
      'restore it from a backup, or move it away to generate new secrets',
    )
  }
}

/** Write secrets/ with 0700/0600 modes (the umask does not matter). */
export function writeStoredSecrets(dir: string, s: StoredSecrets, extra: Record<string, string> = {}): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
  // Keys in a fixed order: the same secrets give the same bytes, however they were assembled.
  const canonical = Object.fromEntries(Object.entries(s).sort(([a], [b]) => (a < b ? -1 : 1)))
  const files: Record<string, string> = { [SECRETS_FILE]: JSON.stringify(canonical, null, 2) + '\n', ...extra }
  for (const [name, text] of Object.entries(files)) {
    const path = join(dir, name)
    writeFileSync(path, text, { mode: 0o600 })
    chmodSync(path, 0o600)
  }
}

/** secrets/ of a fleet: its CA (fleet-ca.json, ca.key 0600; ca.crt 0644, for clients to trust) once for all hosts. */
export function writeFleetCa(dir: string, ca: StoredCa): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
  const files: [string, string, number][] = [
    [FLEET_CA_FILE, JSON.stringify({ version: 1, ...ca }, null, 2) + '\n', 0o600],
    ['ca.crt', ca.caCertPem, 0o644],
    ['ca.key', ca.caKeyPem, 0o600],
  ]
  for (const [name, text, mode] of files) {
    writeFileSync(join(dir, name), text, { mode })
    chmodSync(join(dir, name), mode)
  }
}

function salt(saltKey: string, purpose: string, password: string): string {
  const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
  const mac = createHmac('sha256', saltKey).update(`${purpose}\0${password}`).digest()
  return [...mac.subarray(0, 16)].map((b) => ITOA64[b & 0x3f]).join('')
}

export function planSecrets(config: Config, rng: Rng, stored?: StoredSecrets): { secrets: Secrets; stored: StoredSecrets } {
  const next: StoredSecrets = {
    version: 1,
    saltKey: stored?.saltKey ?? randomHex(rng, 'salt-key'),
    userPasswords: {},
    redisPassword: stored?.redisPassword ?? randomPassword(rng, 'redis', 32),
    quaySecretKey: stored?.quaySecretKey ?? randomHex(rng, 'quay-secret-key', 32),
    quayDatabaseSecretKey: stored?.quayDatabaseSecretKey ?? randomHex(rng, 'quay-database-secret-key', 32),
    ...(stored?.caCertPem && stored.caKeyPem ? { caCertPem: stored.caCertPem, caKeyPem: stored.caKeyPem } : {}),
    ...(stored?.serverCertPem && stored.serverKeyPem ? { serverCertPem: stored.serverCertPem, serverKeyPem: stored.serverKeyPem } : {}),
  }
  const hashFor = (who: string, p: Password, generated: () => string): string | null => {
    switch (p.kind) {
      case 'locked':
        return null
      case 'hash':
        return p.hash
      case 'plain':
        return sha512crypt(p.plain, salt(next.saltKey, who, p.plain), PLAIN_PASSWORD_ROUNDS)
      case 'generate': {
        const pw = generated()
        return sha512crypt(pw, salt(next.saltKey, who, pw))
      }
    }
  }
  const rootPasswordHash = hashFor(
    'root',
    config.host.root,
    () => (next.rootPassword = stored?.rootPassword ?? randomPassword(rng, 'root')),
  )
  const userPasswordHashes: Record<string, string> = {}
  for (const u of config.host.users) {
    const h = hashFor(
      `user:${u.name}`,
      u.password,
      () => (next.userPasswords[u.name] = stored?.userPasswords[u.name] ?? randomPassword(rng, `user:${u.name}`)),
    )
    if (h) userPasswordHashes[u.name] = h
  }
  const initPassword = config.registry.initUser.password ?? (next.initPassword = stored?.initPassword ?? randomPassword(rng, 'init', 24))
  return {
    stored: next,
    secrets: {
      rootPasswordHash,
      ...(next.rootPassword ? { rootPasswordGenerated: next.rootPassword } : {}),
      userPasswordHashes,
      initPassword,
      redisPassword: next.redisPassword,
      quaySecretKey: next.quaySecretKey,
      quayDatabaseSecretKey: next.quayDatabaseSecretKey,
    },
  }
}

// The registry's PKI: a build-time CA whose key stays in dist/secrets/, and a
// server certificate it signs for every name and address clients use. Or, when
// the user brings their own certificate, the checks that keep a bad one from
// reaching a host that nobody can log in to: key matches, chain verifies,
// hostname covered, valid now.
//
// Determinism: with a seeded Rng (tests, reproducible demos) the keys come
// from that stream, so the same config + seed + epoch gives the same PEMs.
// node-forge's pure-JS key generation with a seeded PRNG takes 5 s for 2048
// bits and 35 s for 3072 here, so seeded keys are made by drawing candidates
// from the Rng and testing them with OpenSSL's native primality test
// (crypto.checkPrimeSync): the same construction, about 20x faster. Without a
// seed Node's native generateKeyPairSync makes the keys.
//
// node-forge builds the certificates (fields, extensions, DER); the RSA
// signature over them is OpenSSL's (caSigner): forge's pure-JS modular
// exponentiation took ~50 ms per signature with the 3072-bit CA key, more
// than everything else in a render with reused secrets. PKCS#1 v1.5
// signatures are deterministic, so the bytes are the same either way.

import { X509Certificate, checkPrimeSync, constants, createPrivateKey, generateKeyPairSync, privateEncrypt } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import forge from 'node-forge'
import type { Config } from '../config/types.js'
import { UserError } from '../errors.js'
import { systemRng, type Rng } from './random.js'
import type { Pki, ServerCertSource } from './types.js'

export const CA_KEY_BITS = 3072
export const SERVER_KEY_BITS = 2048
export const CA_VALIDITY_DAYS = 3650
export const MAX_VALIDITY_DAYS = 825
/** Certificates start one hour before the build so a client clock a little behind still accepts them. */
export const BACKDATE_SECONDS = 3600

export interface PlanPkiOptions {
  config: Config
  rng: Rng
  /** Seconds since the epoch (SOURCE_DATE_EPOCH): the certificates' notBefore */
  epoch: number
  /** CA from a previous build (dist/secrets/), reused so clients keep trusting the registry */
  existing?: { caCertPem: string; caKeyPem: string }
  /**
   * Server certificate and key from a previous build (dist/secrets/), reused
   * while they still fit (same names, validity and CA, not near expiry) so a
   * rebuild gives byte-identical media; otherwise a new pair is issued.
   */
  existingServer?: StoredServerCert
  /** Directory of the config file: relative certificate paths and messages are resolved against it */
  configDir: string
  /** Wall clock for the validity check of provided certificates (tests); default Date.now() */
  now?: Date
}

export function planPki(opts: PlanPkiOptions): Pki {
  return opts.config.registry.tls.mode === 'provided' ? providedPki(opts) : generatedPki(opts)
}

// ---- names ---------------------------------------------------------------

const IPV4 = /^(\d{1,3})(\.\d{1,3}){3}$/
export function isIpAddress(s: string): boolean {
  return IPV4.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s))
}

/** The names and addresses the server certificate covers, in a stable order without duplicates. */
export function serverNames(config: Config): { dnsNames: string[]; ipAddresses: string[] } {
  const dns = new Set<string>()
  const ips = new Set<string>()
  const add = (s: string) => (isIpAddress(s) ? ips.add(s) : dns.add(s.toLowerCase()))
  add(config.host.hostname)
  add(config.host.shortName)
  if (config.host.network.mode === 'static') add(config.host.network.address)
  for (const s of config.registry.tls.extraSANs) add(s)
  return { dnsNames: [...dns], ipAddresses: [...ips] }
}

// ---- key generation --------------------------------------------------------

const E = 65537n

function bigFromBytes(b: Buffer): bigint {
  return BigInt('0x' + b.toString('hex'))
}

function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [((a % m) + m) % m, m]
  let [oldS, s] = [1n, 0n]
  while (r !== 0n) {
    const q = oldR / r
    ;[oldR, r] = [r, oldR - q * r]
    ;[oldS, s] = [s, oldS - q * s]
  }
  if (oldR !== 1n) throw new Error('modInverse: not invertible')
  return ((oldS % m) + m) % m
}

/** A prime of exactly `bits` bits with the top two bits set, p mod e != 1, drawn from the Rng. */
function seededPrime(rng: Rng, purpose: string, bits: number): bigint {
  const b = rng.bytes(purpose, bits / 8)
  b[0]! |= 0xc0
  b[b.length - 1]! |= 1
  let x = bigFromBytes(b)
  // checks: 0 lets OpenSSL pick the number of Miller-Rabin rounds for the size (FIPS 186-4 table)
  while (x % E === 1n || !checkPrimeSync(x, { checks: 0 })) x += 2n
  return x
}

const keyCache = new Map<string, string>()

/** An RSA key as PKCS#1 PEM: from the Rng when seeded, else from OpenSSL. */
export function rsaKeyPem(rng: Rng, purpose: string, bits: number): string {
  if (rng === systemRng) {
    return generateKeyPairSync('rsa', {
      modulusLength: bits,
      publicExponent: 65537,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    }).privateKey
  }
  // Same Rng output -> same key: cache on the first bytes of the stream (tests build many plans).
  const cacheKey = `${bits}:${rng.bytes(`${purpose}/p`, 32).toString('hex')}`
  const hit = keyCache.get(cacheKey)
  if (hit) return hit
  let p = seededPrime(rng, `${purpose}/p`, bits / 2)
  let q = seededPrime(rng, `${purpose}/q`, bits / 2)
  if (p === q) throw new Error('seeded key generation drew the same prime twice')
  if (p < q) [p, q] = [q, p]
  const n = p * q
  const phi = (p - 1n) * (q - 1n)
  const d = modInverse(E, phi)
  const big = (v: bigint) => new forge.jsbn.BigInteger(v.toString(16), 16)
  const key = forge.pki.setRsaPrivateKey(big(n), big(E), big(d), big(p), big(q), big(d % (p - 1n)), big(d % (q - 1n)), big(modInverse(q, p)))
  const pem = forge.pki.privateKeyToPem(key)
  keyCache.set(cacheKey, pem)
  return pem
}

// ---- signing ---------------------------------------------------------------

/** DER prefix of a SHA-256 DigestInfo (RFC 8017 section 9.2, note 1); the 32-byte hash follows. */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex')

/**
 * What forge's cert.sign(key, md) needs of a key: sign(md) returning the
 * RSASSA-PKCS1-v1_5 signature of md's digest as a binary string (node-forge
 * 1.4.3 lib/x509.js cert.sign and lib/rsa.js key.sign). OpenSSL computes it:
 * a private-key operation with PKCS#1 type 1 padding over the DigestInfo is
 * that signature, byte for byte.
 */
export function caSigner(keyPem: string): forge.pki.rsa.PrivateKey {
  const key = createPrivateKey(keyPem)
  const sign = (md: forge.md.MessageDigest): forge.Bytes => {
    if (md.algorithm !== 'sha256') throw new Error(`caSigner: only sha256 certificates are signed here, not ${md.algorithm}`)
    const digestInfo = Buffer.concat([SHA256_DIGEST_INFO, Buffer.from(md.digest().getBytes(), 'binary')])
    return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, digestInfo).toString('binary')
  }
  return { sign } as unknown as forge.pki.rsa.PrivateKey
}

// ---- generated -------------------------------------------------------------

/** A positive, 16-byte serial number from the Rng (RFC 5280: positive, at most 20 octets). */
function serialHex(rng: Rng, purpose: string): string {
  const b = rng.bytes(purpose, 16)
  b[0] = (b[0]! & 0x7f) | 0x40
  return b.toString('hex')
}

const DAY = 86400

function generatedPki(opts: PlanPkiOptions): Pki {
  const { config, rng, epoch } = opts
  const tls = config.registry.tls
  if (!Number.isInteger(tls.validityDays) || tls.validityDays < 1 || tls.validityDays > MAX_VALIDITY_DAYS)
    throw new UserError(
      `registry.tls.validityDays: ${tls.validityDays} is outside 1..${MAX_VALIDITY_DAYS}`,
      'clients (Apple, Chrome, Go) refuse server certificates valid for more than 825 days',
    )
  const start = new Date((epoch - BACKDATE_SECONDS) * 1000)

  let caCert: forge.pki.Certificate
  let caKey: forge.pki.rsa.PrivateKey
  let caKeyPem: string
  if (opts.existing) {
    ;({ caCert, caKey } = reuseCa(opts.existing, epoch))
    caKeyPem = opts.existing.caKeyPem
  } else {
    caKeyPem = rsaKeyPem(rng, 'pki/ca-key', CA_KEY_BITS)
    caKey = forge.pki.privateKeyFromPem(caKeyPem)
    caCert = forge.pki.createCertificate()
    caCert.publicKey = forge.pki.setRsaPublicKey(caKey.n, caKey.e)
    caCert.serialNumber = serialHex(rng, 'pki/ca-serial')
    caCert.validity.notBefore = start
    caCert.validity.notAfter = new Date(start.getTime() + CA_VALIDITY_DAYS * DAY * 1000)
    const subject = [
      { shortName: 'O', value: 'mirror-appliance' },
      { shortName: 'CN', value: `mirror-appliance CA ${config.host.hostname}`.slice(0, 64) },
    ]
    caCert.setSubject(subject)
    caCert.setIssuer(subject)
    caCert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
    ])
    caCert.sign(caSigner(caKeyPem), forge.md.sha256.create())
  }

  const { dnsNames, ipAddresses } = serverNames(config)
  const caCertPemNow = forge.pki.certificateToPem(caCert)
  let serverCertSource: ServerCertSource = { kind: 'new' }
  if (opts.existingServer) {
    const changes = storedServerCertChanges(opts.existingServer, { caCertPem: caCertPemNow, dnsNames, ipAddresses, validityDays: tls.validityDays, epoch })
    if (changes.length === 0) return reusedServerPki(opts.existingServer, { caCertPem: caCertPemNow, caKeyPem, dnsNames, ipAddresses })
    serverCertSource = { kind: 'reissued', reason: changes.join('; ') }
  }
  const serverKeyPem = rsaKeyPem(rng, 'pki/server-key', SERVER_KEY_BITS)
  const serverKey = forge.pki.privateKeyFromPem(serverKeyPem)
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.setRsaPublicKey(serverKey.n, serverKey.e)
  cert.serialNumber = serialHex(rng, 'pki/server-serial')
  cert.validity.notBefore = start
  let notAfter = new Date(start.getTime() + tls.validityDays * DAY * 1000)
  // A certificate must not outlive its issuer: clients reject the chain from that day on anyway.
  if (notAfter > caCert.validity.notAfter) notAfter = caCert.validity.notAfter
  cert.validity.notAfter = notAfter
  cert.setSubject([{ shortName: 'CN', value: config.host.hostname.slice(0, 64) }])
  cert.setIssuer(caCert.subject.attributes)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...dnsNames.map((value) => ({ type: 2, value })), ...ipAddresses.map((ip) => ({ type: 7, ip }))],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ])
  cert.sign(caSigner(caKeyPem), forge.md.sha256.create())

  const caCertPem = forge.pki.certificateToPem(caCert)
  const serverCertPem = forge.pki.certificateToPem(cert)
  return {
    caCertPem,
    caKeyPem,
    serverCertPem,
    serverKeyPem,
    serverChainPem: serverCertPem,
    dnsNames,
    ipAddresses,
    notBefore: cert.validity.notBefore,
    notAfter: cert.validity.notAfter,
    serverCertSource,
  }
}

// ---- reusing the stored server certificate ---------------------------------

/** The server certificate and key an earlier build stored in secrets/secrets.json. */
export interface StoredServerCert {
  serverCertPem: string
  serverKeyPem: string
}

/**
 * A stored certificate is reissued when fewer than this many days of it are
 * left at build time (or a third of its lifetime, for shorter ones): media
 * built today must not install a registry whose certificate runs out soon.
 */
export const RENEW_BEFORE_DAYS = 30

/** What the server certificate must be for this build. */
interface WantedServerCert {
  caCertPem: string
  dnsNames: string[]
  ipAddresses: string[]
  validityDays: number
  /** Build time, seconds since the epoch */
  epoch: number
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10)

/**
 * Why the stored server certificate does not fit this build; empty when it
 * can be reused as it is. Checked: it is readable and its key belongs to it;
 * the CA in use signed it; it names exactly the names and addresses wanted
 * (in any order); it was issued for registry.tls.validityDays (or up to the
 * CA's end); it is valid at build time with RENEW_BEFORE_DAYS to spare; its
 * key has SERVER_KEY_BITS bits.
 */
export function storedServerCertChanges(stored: StoredServerCert, want: WantedServerCert): string[] {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(stored.serverCertPem)
    if (!cert.checkPrivateKey(createPrivateKey(stored.serverKeyPem))) return ['the stored key does not belong to the stored certificate']
  } catch (e) {
    return [`the stored certificate or key cannot be read (${(e as Error).message})`]
  }
  const changes: string[] = []
  const ca = new X509Certificate(want.caCertPem)
  if (!(cert.checkIssued(ca) && cert.verify(ca.publicKey))) changes.push('the CA changed')

  const have = sanList(cert)
  // DNS names compare without case; addresses are IPv4 (the schema takes no other), printed alike by OpenSSL and the config.
  const haveNames = new Set([...have.dnsNames.map((n) => n.toLowerCase()), ...have.ipAddresses])
  const wantNames = new Set([...want.dnsNames.map((n) => n.toLowerCase()), ...want.ipAddresses])
  const added = [...wantNames].filter((n) => !haveNames.has(n))
  const removed = [...haveNames].filter((n) => !wantNames.has(n))
  if (added.length || removed.length)
    changes.push(`names changed (${[added.length ? `added ${added.join(', ')}` : '', removed.length ? `removed ${removed.join(', ')}` : ''].filter(Boolean).join('; ')})`)

  const from = Date.parse(cert.validFrom)
  const to = Date.parse(cert.validTo)
  const issuedDays = Math.round((to - from) / (DAY * 1000))
  // Cut short at the CA's end when issued: the configured validity could not be had then either.
  const cutAtCa = to === Date.parse(ca.validTo)
  if (issuedDays !== want.validityDays && !cutAtCa) changes.push(`validity changed (${issuedDays} -> ${want.validityDays} days)`)
  const now = want.epoch * 1000
  if (from > now) changes.push(`not valid yet at build time (from ${cert.validFrom})`)
  const renewMs = Math.min(RENEW_BEFORE_DAYS * DAY * 1000, (to - from) / 3)
  if (to <= now) changes.push(`expired on ${day(to)}`)
  else if (to - now < renewMs) changes.push(`expires on ${day(to)}, too soon after this build`)

  const bits = cert.publicKey.asymmetricKeyDetails?.modulusLength
  if (bits !== SERVER_KEY_BITS) changes.push(`its key has ${bits ?? 'an unknown number of'} bits, not ${SERVER_KEY_BITS}`)
  return changes
}

/** The PKI of this build with the stored server certificate and key, byte for byte. */
function reusedServerPki(stored: StoredServerCert, now: { caCertPem: string; caKeyPem: string; dnsNames: string[]; ipAddresses: string[] }): Pki {
  const cert = new X509Certificate(stored.serverCertPem)
  return {
    caCertPem: now.caCertPem,
    caKeyPem: now.caKeyPem,
    serverCertPem: stored.serverCertPem,
    serverKeyPem: stored.serverKeyPem,
    serverChainPem: stored.serverCertPem,
    dnsNames: now.dnsNames,
    ipAddresses: now.ipAddresses,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    serverCertSource: { kind: 'reused' },
  }
}

/** The build summary's line about the server certificate. */
export function serverCertSummary(pki: Pki, where = 'secrets/'): string {
  const s = pki.serverCertSource ?? { kind: 'new' }
  const until = `valid until ${pki.notAfter.toISOString().slice(0, 10)}`
  switch (s.kind) {
    case 'reused':
      return `server certificate: reused from ${where} (${until})`
    case 'new':
      return `server certificate: issued (none in ${where} yet; ${until})`
    case 'reissued':
      return `server certificate: reissued: ${s.reason} (${until})`
    case 'provided':
      return `server certificate: provided (registry.tls.certFile, ${until})`
  }
}

function reuseCa(existing: { caCertPem: string; caKeyPem: string }, epoch: number) {
  const where = 'the CA from the previous build (secrets/ca.crt, secrets/ca.key)'
  let caCert: forge.pki.Certificate
  let caKey: forge.pki.rsa.PrivateKey
  try {
    caCert = forge.pki.certificateFromPem(existing.caCertPem)
    caKey = forge.pki.privateKeyFromPem(existing.caKeyPem)
  } catch (e) {
    throw new UserError(`${where}: cannot be read (${(e as Error).message})`, 'remove both files to make a new CA')
  }
  const pub = caCert.publicKey as forge.pki.rsa.PublicKey
  if (pub.n.compareTo(caKey.n) !== 0 || pub.e.compareTo(caKey.e) !== 0)
    throw new UserError(`${where}: the key does not belong to the certificate`, 'remove both files to make a new CA')
  if (caCert.validity.notAfter.getTime() <= epoch * 1000)
    throw new UserError(
      `${where}: expired on ${caCert.validity.notAfter.toISOString()}`,
      'remove both files to make a new CA (clients must then trust the new one)',
    )
  return { caCert, caKey }
}

// ---- provided --------------------------------------------------------------

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
}

function readPemFile(path: string, field: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (e) {
    throw new UserError(`registry.tls.${field}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
}

function parseCerts(text: string, path: string, field: string): X509Certificate[] {
  const blocks = splitPem(text)
  if (blocks.length === 0) throw new UserError(`registry.tls.${field} (${path}): no PEM certificate in the file`)
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b)
    } catch (e) {
      throw new UserError(`registry.tls.${field} (${path}): certificate #${i + 1} cannot be parsed: ${(e as Error).message}`)
    }
  })
}

function sanList(cert: X509Certificate): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = []
  const ipAddresses: string[] = []
  for (const part of (cert.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('DNS:')) dnsNames.push(part.slice(4))
    else if (part.startsWith('IP Address:')) ipAddresses.push(part.slice(11))
  }
  return { dnsNames, ipAddresses }
}

function providedPki(opts: PlanPkiOptions): Pki {
  const tls = opts.config.registry.tls
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(opts.configDir, p))
  if (!tls.certFile || !tls.keyFile) throw new UserError('registry.tls: mode provided needs certFile and keyFile')
  const certPath = abs(tls.certFile)
  const keyPath = abs(tls.keyFile)
  const certText = readPemFile(certPath, 'certFile')
  const chain = parseCerts(certText, certPath, 'certFile')
  const leaf = chain[0]!

  const keyText = readPemFile(keyPath, 'keyFile')
  let key
  try {
    key = createPrivateKey(keyText)
  } catch (e) {
    throw new UserError(`registry.tls.keyFile (${keyPath}): not a readable, unencrypted private key: ${(e as Error).message}`)
  }
  if (!leaf.checkPrivateKey(key))
    throw new UserError(`registry.tls.keyFile (${keyPath}): the key does not belong to the certificate in ${certPath}`)

  let roots: X509Certificate[]
  let caPath: string
  if (tls.caFile) {
    caPath = abs(tls.caFile)
    roots = parseCerts(readPemFile(caPath, 'caFile'), caPath, 'caFile')
  } else {
    const last = chain[chain.length - 1]!
    if (!(last.checkIssued(last) && last.verify(last.publicKey)))
      throw new UserError(
        `registry.tls.caFile: needed, because ${certPath} does not end with a self-signed root`,
        'set registry.tls.caFile to the CA that clients must trust',
      )
    caPath = certPath
    roots = [last]
  }

  // Walk leaf -> intermediates -> a root in caFile, checking each signature.
  let cur = leaf
  const pool = chain.slice(1)
  let root: X509Certificate | undefined
  for (let depth = 0; depth < 10 && !root; depth++) {
    root = roots.find((r) => cur.checkIssued(r) && cur.verify(r.publicKey))
    if (root) break
    const next = pool.find((c) => cur.checkIssued(c) && cur.verify(c.publicKey))
    if (!next)
      throw new UserError(
        `registry.tls.certFile (${certPath}): the chain does not verify to the CA in ${caPath}: no issuer found for "${cur.subject.replace(/\n/g, ', ')}"`,
        'put the server certificate first, then any intermediates, in certFile; the root in caFile',
      )
    cur = next
  }
  if (!root) throw new UserError(`registry.tls.certFile (${certPath}): the chain is longer than 10 certificates`)

  const now = opts.now ?? new Date()
  for (const c of [...chain, root]) {
    const from = new Date(c.validFrom)
    const to = new Date(c.validTo)
    const file = c === root ? caPath : certPath
    if (to <= now)
      throw new UserError(`registry.tls (${file}): certificate "${c.subject.replace(/\n/g, ', ')}" expired on ${to.toISOString()}`)
    if (from > now)
      throw new UserError(
        `registry.tls (${file}): certificate "${c.subject.replace(/\n/g, ', ')}" is not valid before ${from.toISOString()}`,
      )
  }

  const hostname = opts.config.host.hostname
  if (!leaf.checkHost(hostname, { subject: 'never' }))
    throw new UserError(
      `registry.tls.certFile (${certPath}): the certificate does not cover host.hostname ${hostname} (SANs: ${leaf.subjectAltName ?? 'none'})`,
    )

  const pem = (c: X509Certificate) => c.toString().trim() + '\n'
  return {
    caCertPem: pem(root),
    serverCertPem: pem(leaf),
    serverKeyPem: keyText.endsWith('\n') ? keyText : keyText + '\n',
    serverChainPem: chain.map(pem).join(''),
    ...sanList(leaf),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serverCertSource: { kind: 'provided' },
  }
}

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

import { X509Certificate, checkPrimeSync, createPrivateKey, generateKeyPairSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import forge from 'node-forge'
import type { Config } from '../config/types.js'
import { UserError } from '../errors.js'
import { systemRng, type Rng } from './random.js'
import type { Pki } from './types.js'

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
    caCert.sign(caKey, forge.md.sha256.create())
  }

  const { dnsNames, ipAddresses } = serverNames(config)
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
  cert.sign(caKey, forge.md.sha256.create())

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
  }
}

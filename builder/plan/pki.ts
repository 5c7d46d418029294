// The registry's PKI: a build-time CA whose key stays in dist/secrets/, and a
// server certificate it signs for every name and address clients use. Or, when
// the user brings their own certificate, the checks that keep a bad one from
// reaching a host that nobody can log in to: key matches, chain verifies,
// hostname covered, valid now.
//
// Keys come from keygen.ts: OpenSSL's primes without a seed (made ahead when
// the command asked for them early), primes drawn from the seed's stream with
// one (tests, reproducible demos: the same config + seed + epoch gives the
// same PEMs).
//
// node-forge builds the certificates (fields, extensions, DER); the RSA
// signature over them is OpenSSL's (caSigner): forge's pure-JS modular
// exponentiation took ~50 ms per signature with the 3072-bit CA key, more
// than everything else in a render with reused secrets. PKCS#1 v1.5
// signatures are deterministic, so the bytes are the same either way.

import { X509Certificate, constants, createPrivateKey, privateEncrypt } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import forge from 'node-forge'
import type { Config } from '../config/types.js'
import { UserError } from '../errors.js'
import { CA_KEY_BITS, rsaKeyPem, SERVER_KEY_BITS } from './keygen.js'
import type { Rng } from './random.js'
import type { Pki, ServerCertSource } from './types.js'

export { CA_KEY_BITS, rsaKeyPem, SERVER_KEY_BITS }
export const CA_VALIDITY_DAYS = 3650
export const MAX_VALIDITY_DAYS = 825
/** Certificates start one hour before the build so a client clock a little behind still accepts them. */
export const BACKDATE_SECONDS = 3600

export interface PlanPkiOptions {
  config: Config
  /**
   * Names and subnets a new CA may sign for (its name constraints); default:
   * this config's (caScope([config])). The fleet passes every host's.
   */
  caScope?: CaScope
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

// ---- the CA's name constraints -----------------------------------------------
//
// The CA is trusted widely (the host's trust store, OpenShift's
// additionalTrustBundle with policy Always), so a generated CA may sign
// server certificates only (pathlen:0) and only for the names of this
// appliance (nameConstraints, RFC 5280 4.2.1.10, checked by OpenSSL, Go's
// crypto/x509, NSS and browsers).
//
// The trade-off: the CA lives in secrets/ and is reused across rebuilds,
// while the server certificate is reissued whenever its names change. Name
// constraints are fixed when the CA is made; a name outside them later needs
// a new CA, and every cluster and client must then trust it again. So the
// constraints are a little wider than today's exact names:
//   - a DNS name of three labels or more permits its parent domain
//     (mirror.lab.example -> lab.example and everything under it), so another
//     alias in the same domain needs no new CA; shorter names (localhost, the
//     short name, registry.example) permit only themselves and names under
//     them, never a whole top-level domain;
//   - each configured address permits only itself; a static install network
//     also permits its subnet (host.network.address/prefix);
//   - with no address configured, no address at all (excluded 0.0.0.0/0 and
//     ::/0): without an IP constraint RFC 5280 leaves addresses unconstrained.
// A name added later outside these stops the build with what to do
// (checkNamesInCaScope) rather than issuing a certificate clients refuse.

/** What a new CA may sign for. */
export interface CaScope {
  /** Permitted DNS subtrees (a name and everything under it) */
  dnsDomains: string[]
  /** Permitted IPv4 ranges as CIDR */
  ipv4Ranges: string[]
}

/** The parent domain of a name with three labels or more, else the name itself. */
function dnsSubtreeFor(name: string): string {
  const labels = name.toLowerCase().split('.')
  return labels.length >= 3 ? labels.slice(1).join('.') : labels.join('.')
}

const inDnsSubtree = (name: string, domain: string) => {
  const n = name.toLowerCase()
  const d = domain.toLowerCase()
  return n === d || n.endsWith(`.${d}`)
}

function ipv4ToInt(ip: string): number {
  const parts = ip.split('.').map(Number)
  if (!IPV4.test(ip) || parts.some((p) => p > 255)) throw new Error(`not an IPv4 address: ${ip}`)
  return parts.reduce((n, p) => n * 256 + p, 0)
}
const prefixMask = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0)
const intToIpv4 = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.')

function parseCidr(cidr: string): { network: number; mask: number } {
  const [ip, prefix] = cidr.split('/')
  const mask = prefixMask(Number(prefix))
  return { network: (ipv4ToInt(ip!) & mask) >>> 0, mask }
}

/** The scope of a CA for these hosts' configs (one for a single host, every member for a fleet). */
export function caScope(configs: readonly Config[]): CaScope {
  const domains = new Set<string>()
  const ranges = new Set<string>()
  for (const config of configs) {
    const { dnsNames, ipAddresses } = serverNames(config)
    for (const n of dnsNames) domains.add(dnsSubtreeFor(n))
    for (const ip of ipAddresses) ranges.add(`${ip}/32`)
    const net = config.host.network
    if (net.mode === 'static') ranges.add(`${intToIpv4(parseCidr(`${net.address}/${net.prefix}`).network)}/${net.prefix}`)
  }
  // a subtree inside another adds nothing
  const dnsDomains = [...domains].filter((d) => ![...domains].some((o) => o !== d && inDnsSubtree(d, o))).sort()
  const cidrs = [...ranges].map((c) => ({ c, ...parseCidr(c) }))
  const ipv4Ranges = cidrs
    .filter((a) => !cidrs.some((b) => b.c !== a.c && b.mask !== a.mask && (a.network & b.mask) >>> 0 === b.network && b.mask <= a.mask))
    .map((a) => a.c)
    .sort()
  return { dnsDomains, ipv4Ranges }
}

/**
 * The nameConstraints extension (OID 2.5.29.30, critical as RFC 5280 asks),
 * DER built here: node-forge 1.x has no encoder for it.
 *   NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL,
 *                                  excludedSubtrees  [1] GeneralSubtrees OPTIONAL }
 *   GeneralSubtree ::= SEQUENCE { base GeneralName, ... }  (minimum 0 and no maximum: both left out)
 *   GeneralName: dNSName [2] IA5String, iPAddress [7] OCTET STRING (address then mask)
 */
export function nameConstraintsExtension(scope: CaScope): { id: string; critical: true; value: string } {
  const { asn1 } = forge
  const ctx = (tag: number, constructed: boolean, value: string | forge.asn1.Asn1[]) =>
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, constructed, value)
  const subtree = (name: forge.asn1.Asn1) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [name])
  const bytes = (...ns: number[]) =>
    Buffer.concat(
      ns.map((n) => {
        const b = Buffer.alloc(4)
        b.writeUInt32BE(n)
        return b
      }),
    ).toString('binary')
  const permitted = [
    ...scope.dnsDomains.map((d) => subtree(ctx(2, false, d))),
    ...scope.ipv4Ranges.map((c) => {
      const { network, mask } = parseCidr(c)
      return subtree(ctx(7, false, bytes(network, mask)))
    }),
  ]
  const excluded =
    scope.ipv4Ranges.length > 0 ? [] : [subtree(ctx(7, false, bytes(0, 0))), subtree(ctx(7, false, Buffer.alloc(32).toString('binary')))] // 0.0.0.0/0 and ::/0
  const parts = [...(permitted.length ? [ctx(0, true, permitted)] : []), ...(excluded.length ? [ctx(1, true, excluded)] : [])]
  const der = asn1.toDer(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, parts)).getBytes()
  return { id: '2.5.29.30', critical: true, value: der }
}

interface ParsedConstraints {
  dns: string[]
  /** permitted IPv4 (network, mask) */
  ipv4: { network: number; mask: number }[]
  /** Some IPv4 subtree is permitted or all of IPv4 excluded: addresses are constrained */
  ipv4Constrained: boolean
}

/** The constraints of a CA certificate as made above; null when it has none. */
function readNameConstraints(ca: forge.pki.Certificate): ParsedConstraints | null {
  const ext = ca.getExtension({ id: '2.5.29.30' } as unknown as { id: number }) as { value?: string } | null
  if (!ext?.value) return null
  const r: ParsedConstraints = { dns: [], ipv4: [], ipv4Constrained: false }
  const top = forge.asn1.fromDer(ext.value)
  for (const part of top.value as forge.asn1.Asn1[]) {
    for (const st of part.value as forge.asn1.Asn1[]) {
      const name = (st.value as forge.asn1.Asn1[])[0]!
      const v = Buffer.from(name.value as string, 'binary')
      if (part.type === 0 && name.type === 2) r.dns.push(v.toString('latin1'))
      if (name.type === 7 && v.length === 8) {
        r.ipv4Constrained = true
        if (part.type === 0) r.ipv4.push({ network: v.readUInt32BE(0), mask: v.readUInt32BE(4) })
      }
    }
  }
  return r
}

/** Every name of the server certificate must be inside the CA's constraints, or clients refuse it. */
function checkNamesInCaScope(ca: forge.pki.Certificate, names: { dnsNames: string[]; ipAddresses: string[] }): void {
  const nc = readNameConstraints(ca)
  if (!nc) return
  const outside = [
    ...names.dnsNames.filter((n) => nc.dns.length > 0 && !nc.dns.some((d) => inDnsSubtree(n, d))),
    ...names.ipAddresses.filter(
      (ip) => nc.ipv4Constrained && !nc.ipv4.some((r) => (ipv4ToInt(ip) & r.mask) >>> 0 === (r.network & r.mask) >>> 0),
    ),
  ]
  if (outside.length)
    throw new UserError(
      `registry.tls: ${outside.join(', ')} ${outside.length > 1 ? 'are' : 'is'} outside the names the CA in secrets/ may sign for (${[...nc.dns, ...nc.ipv4.map((r) => intToIpv4(r.network))].join(', ') || 'no addresses'}): clients would refuse the certificate`,
      'to rotate the CA: remove secrets/ca.crt and secrets/ca.key (for a fleet, secrets/fleet-ca.json), rebuild, and make every client and cluster trust the new ca.crt',
    )
}

/** constrained: pathlen:0 and name constraints (CAs made since issue 18); legacy: an older CA kept from secrets/. */
export type CaProfile = 'constrained' | 'legacy'

function caProfileOf(ca: forge.pki.Certificate): CaProfile {
  const bc = ca.getExtension('basicConstraints') as { pathLenConstraint?: number } | null
  return bc?.pathLenConstraint === 0 && readNameConstraints(ca) ? 'constrained' : 'legacy'
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
  let caProfile: CaProfile = 'constrained'
  if (opts.existing) {
    ;({ caCert, caKey } = reuseCa(opts.existing, epoch))
    caKeyPem = opts.existing.caKeyPem
    caProfile = caProfileOf(caCert)
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
      // pathlen:0: the CA signs server certificates only, never another CA
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      nameConstraintsExtension(opts.caScope ?? caScope([config])),
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
    ])
    caCert.sign(caSigner(caKeyPem), forge.md.sha256.create())
  }

  const { dnsNames, ipAddresses } = serverNames(config)
  checkNamesInCaScope(caCert, { dnsNames, ipAddresses })
  const caCertPemNow = forge.pki.certificateToPem(caCert)
  let serverCertSource: ServerCertSource = { kind: 'new' }
  if (opts.existingServer) {
    const changes = storedServerCertChanges(opts.existingServer, {
      caCertPem: caCertPemNow,
      dnsNames,
      ipAddresses,
      validityDays: tls.validityDays,
      epoch,
    })
    if (changes.length === 0)
      return { ...reusedServerPki(opts.existingServer, { caCertPem: caCertPemNow, caKeyPem, dnsNames, ipAddresses }), caProfile }
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
    caProfile,
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
    changes.push(
      `names changed (${[added.length ? `added ${added.join(', ')}` : '', removed.length ? `removed ${removed.join(', ')}` : ''].filter(Boolean).join('; ')})`,
    )

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
function reusedServerPki(
  stored: StoredServerCert,
  now: { caCertPem: string; caKeyPem: string; dnsNames: string[]; ipAddresses: string[] },
): Pki {
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

/** The build summary's line about the CA, when there is something to say: an older CA kept from secrets/ is not constrained. */
export function caSummary(pki: Pki, files = 'secrets/ca.crt and secrets/ca.key'): string | null {
  if (pki.caProfile !== 'legacy') return null
  return (
    `CA: kept from ${files}, made before CAs got pathlen:0 and name constraints (it may sign for any name, and sign other CAs); ` +
    `kept so that clients need not trust a new one. To rotate: remove ${files}, rebuild, ` +
    `and trust the new ca.crt on every client and cluster`
  )
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

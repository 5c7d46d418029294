// RSA keys. Real keys (no seed) are OpenSSL's own: generateKeyPair('rsa'),
// OpenSSL 3's SP 800-56B generator (crypto/rsa/rsa_gen.c), the one a FIPS
// build vouches for; nothing of ours touches their primes. With a seed (tests,
// reproducible demos) a key is built from two primes drawn from the seed's
// stream and tested with OpenSSL's primality test, so that the same seed
// gives the same key; that construction is the one OpenSSL used before 3.0
// (rsa_builtin_keygen() in crypto/rsa/rsa_gen.c, openssl/openssl at
// 0081a3e5: p != q, gcd(p-1, e) = 1, p > q) with the checks of FIPS 186-5
// appendix A.1.3 for probable primes: each prime has nlen/2 bits with its
// top two set, |p - q| > 2^(nlen/2-100), d = e^-1 mod lcm(p-1, q-1) and
// d > 2^(nlen/2). Seeded keys are test keys: their secrecy is the seed's.
//
// Made ahead: OpenSSL 3's generator is slow (on the 2-core VM this was
// measured on, a 3072-bit key took a median 360 ms, up to 1.4 s; a 2048-bit
// key 105 ms). A command that knows which keys it will need starts them first
// (prefetchRsaKeys) on libuv's threads, one after another so the main thread
// keeps the other core, loads the rest of the builder and the config
// meanwhile, and awaits them before it plans; the planner, which is
// synchronous, takes them (rsaKeyPem). A key nobody prefetched is made on the
// spot.
//
// This module loads nothing but node:crypto and random.ts, so that a command
// can start the keys before it imports anything heavy.

import { checkPrimeSync, createPrivateKey, generateKeyPair, generateKeyPairSync, type RSAKeyPairOptions } from 'node:crypto'
import { systemRng, type Rng } from './random.js'

export const CA_KEY_BITS = 3072
export const SERVER_KEY_BITS = 2048

const E = 65537n

// ---- from two primes to a key ----------------------------------------------

const bitLength = (x: bigint) => x.toString(2).length

/** A prime that may be half of a `bits`-bit key: exactly bits/2 bits, the top two set, and p - 1 prime to e. */
function goodHalf(x: bigint, bits: number): boolean {
  return bitLength(x) === bits / 2 && x >> BigInt(bits / 2 - 2) === 3n && x % E !== 1n
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

const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b))

/** base64url of a positive integer, big-endian without leading zero bytes (RFC 7518 6.3). */
function b64u(x: bigint): string {
  const hex = x.toString(16)
  return Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex').toString('base64url')
}

/**
 * The PKCS#1 PEM of the `bits`-bit key made of primes a and b, or null when
 * the pair fails a check above (the caller draws again).
 */
export function rsaKeyFromPrimes(a: bigint, b: bigint, bits: number): string | null {
  const [p, q] = a > b ? [a, b] : [b, a]
  if (!goodHalf(p, bits) || !goodHalf(q, bits)) return null
  if (p - q <= 1n << BigInt(bits / 2 - 100)) return null
  const lcm = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n)
  const d = modInverse(E, lcm)
  if (d <= 1n << BigInt(bits / 2)) return null
  const jwk = {
    kty: 'RSA',
    n: b64u(p * q),
    e: b64u(E),
    d: b64u(d),
    p: b64u(p),
    q: b64u(q),
    dp: b64u(d % (p - 1n)),
    dq: b64u(d % (q - 1n)),
    qi: b64u(modInverse(q, p)),
  }
  return createPrivateKey({ key: jwk, format: 'jwk' }).export({ type: 'pkcs1', format: 'pem' }) as string
}

// ---- seeded ----------------------------------------------------------------

/** A prime of exactly `bits` bits with the top two bits set, p mod e != 1, drawn from the Rng. */
function seededPrime(rng: Rng, purpose: string, bits: number): bigint {
  const b = rng.bytes(purpose, bits / 8)
  b[0]! |= 0xc0
  b[b.length - 1]! |= 1
  let x = BigInt('0x' + b.toString('hex'))
  // checks: 0 lets OpenSSL pick the number of Miller-Rabin rounds for the size
  while (x % E === 1n || !checkPrimeSync(x, { checks: 0 })) x += 2n
  return x
}

const seededKeys = new Map<string, string>()

function seededRsaKeyPem(rng: Rng, purpose: string, bits: number): string {
  // Same Rng output -> same key: cache on the first bytes of the stream (tests build many plans).
  const cacheKey = `${bits}:${rng.bytes(`${purpose}/p`, 32).toString('hex')}`
  const hit = seededKeys.get(cacheKey)
  if (hit) return hit
  const pem = rsaKeyFromPrimes(seededPrime(rng, `${purpose}/p`, bits / 2), seededPrime(rng, `${purpose}/q`, bits / 2), bits)
  // Drawing primes this close from a seed takes a broken Rng (chance about 2^-99): say so rather than loop.
  if (!pem) throw new Error(`seeded key generation (${purpose}): the seed's primes fail the FIPS 186-5 checks`)
  seededKeys.set(cacheKey, pem)
  return pem
}

// ---- OpenSSL's keys, now or ahead ------------------------------------------

/** Keys made ahead, by size, each handed out once. */
const ahead = new Map<number, string[]>()

const rsaOptions = (bits: number): RSAKeyPairOptions<'pem', 'pem'> => ({
  modulusLength: bits,
  publicExponent: Number(E),
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
})

function opensslKeyPem(bits: number): Promise<string> {
  return new Promise((resolve, reject) => generateKeyPair('rsa', rsaOptions(bits), (err, _pub, key) => (err ? reject(err) : resolve(key))))
}

/**
 * Start one key of each size in `bits` on OpenSSL's threads. Resolves when
 * all are made; never rejects: a key that failed here is made, or fails with
 * OpenSSL's error, when it is taken.
 */
export async function prefetchRsaKeys(bits: readonly number[]): Promise<void> {
  for (const b of bits) {
    try {
      const pem = await opensslKeyPem(b)
      ahead.set(b, [...(ahead.get(b) ?? []), pem])
    } catch {
      // made on the spot when taken
    }
  }
}

/** How many keys of `bits` bits are made ahead and not taken yet. */
export function rsaKeysAhead(bits: number): number {
  return ahead.get(bits)?.length ?? 0
}

/**
 * The keys a build into an output must make: the CA's unless secrets/ keeps
 * one, the server's unless secrets/ keeps a server certificate (a kept one
 * that no longer fits is reissued with a key made on the spot).
 */
export function rsaKeysNeeded(stored: { caKeyPem?: string; serverKeyPem?: string } | undefined): number[] {
  return [...(stored?.caKeyPem ? [] : [CA_KEY_BITS]), ...(stored?.serverKeyPem ? [] : [SERVER_KEY_BITS])]
}

/** A new RSA key of `bits` bits as PKCS#1 PEM: from the Rng when seeded, else OpenSSL's own. */
export function rsaKeyPem(rng: Rng, purpose: string, bits: number): string {
  if (rng !== systemRng) return seededRsaKeyPem(rng, purpose, bits)
  return ahead.get(bits)?.shift() ?? generateKeyPairSync('rsa', rsaOptions(bits)).privateKey
}

// RSA keys (builder/plan/keygen.ts), judged by openssl: keys from OpenSSL's
// primes and from a seed are valid (`openssl rsa -check`) and of the size
// asked; the FIPS 186-5 A.1.3 checks refuse primes that are too close, too
// short or without their top bits; keys started ahead are the ones handed
// out, each once; a render starts only the keys its output lacks.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { checkPrimeSync, createPrivateKey, generatePrimeSync, randomBytes } from 'node:crypto'
import {
  CA_KEY_BITS,
  SERVER_KEY_BITS,
  prefetchRsaKeys,
  rsaKeyFromPrimes,
  rsaKeyPem,
  rsaKeysAhead,
  rsaKeysNeeded,
} from '../builder/plan/keygen.js'
import { seededRng, systemRng } from '../builder/plan/random.js'

const opensslCheck = (pem: string) => execFileSync('openssl', ['rsa', '-check', '-noout', '-text'], { input: pem, encoding: 'utf8' })
const bitsOf = (pem: string) => createPrivateKey(pem).asymmetricKeyDetails?.modulusLength

/** A prime of `bits` bits whose top two bits are set, from OpenSSL (its generatePrime sets them). */
const prime = (bits: number) => generatePrimeSync(bits, { bigint: true })
/** The first prime from x on (x odd) that may be half of an RSA key with e = 65537. */
const nextPrime = (x: bigint) => {
  while (x % 65537n === 1n || !checkPrimeSync(x)) x += 2n
  return x
}

t.test('keys from OpenSSL primes and from a seed pass openssl rsa -check, at the size asked', async (t) => {
  for (const [name, pem, bits] of [
    ['native 2048', rsaKeyPem(systemRng, 'k', 2048), 2048],
    ['seeded 2048', rsaKeyPem(seededRng('keygen-test'), 'k', 2048), 2048],
  ] as const) {
    const text = opensslCheck(pem)
    t.match(text, /RSA key ok/, `${name}: RSA key ok`)
    t.match(text, new RegExp(`Private-Key: \\(${bits} bit, 2 primes\\)`), `${name}: ${bits} bits`)
    t.match(text, /publicExponent: 65537/, `${name}: e = 65537`)
    t.match(pem, /^-----BEGIN RSA PRIVATE KEY-----\n/, `${name}: PKCS#1 PEM`)
  }
  t.equal(
    rsaKeyPem(seededRng('keygen-test'), 'k', 2048),
    rsaKeyPem(seededRng('keygen-test'), 'k', 2048),
    'the same seed gives the same key',
  )
  t.not(rsaKeyPem(seededRng('keygen-test'), 'other', 2048), rsaKeyPem(seededRng('keygen-test'), 'k', 2048), 'another purpose, another key')
  t.not(rsaKeyPem(systemRng, 'k', 2048), rsaKeyPem(systemRng, 'k', 2048), 'without a seed, a new key each time')
})

t.test('FIPS 186-5 A.1.3 checks on the primes', async (t) => {
  const p = prime(512)
  const q = prime(512)
  const ok = rsaKeyFromPrimes(p, q, 1024)
  t.ok(ok, 'two good 512-bit primes make a 1024-bit key')
  t.match(opensslCheck(ok!), /RSA key ok/)
  t.equal(rsaKeyFromPrimes(q, p, 1024), ok, 'the order of the primes does not matter')
  // the next prime after p: |p - q| far below 2^(nlen/2 - 100)
  t.equal(rsaKeyFromPrimes(p, nextPrime(p + 2n), 1024), null, 'primes too close together are refused')
  t.equal(rsaKeyFromPrimes(p, prime(510), 1024), null, 'a prime of the wrong size is refused')
  // 512 bits starting 0b10: p*q may have 1023 bits
  const top10 = (BigInt('0x' + randomBytes(64).toString('hex')) & ((1n << 510n) - 1n)) | (1n << 511n) | 1n
  const low = nextPrime(top10)
  t.equal(low >> 510n, 2n, 'a 512-bit prime starting 0b10')
  t.equal(rsaKeyFromPrimes(p, low, 1024), null, 'a prime without its top two bits set is refused (p*q could fall short of nlen bits)')
})

t.test('keys started ahead are handed out, each once; the rest are made on the spot', async (t) => {
  t.equal(rsaKeysAhead(SERVER_KEY_BITS), 0, 'none ahead at first')
  await prefetchRsaKeys([SERVER_KEY_BITS])
  t.equal(rsaKeysAhead(SERVER_KEY_BITS), 1, 'one made ahead')
  t.equal(rsaKeysAhead(CA_KEY_BITS), 0, 'of the size asked only')
  const a = rsaKeyPem(systemRng, 'pki/server-key', SERVER_KEY_BITS)
  t.equal(rsaKeysAhead(SERVER_KEY_BITS), 0, 'taken by the first key of that size')
  const b = rsaKeyPem(systemRng, 'pki/server-key', SERVER_KEY_BITS)
  t.not(a, b, 'the next one is made on the spot')
  for (const k of [a, b]) {
    t.match(opensslCheck(k), /RSA key ok/)
    t.equal(bitsOf(k), SERVER_KEY_BITS)
  }
  await prefetchRsaKeys([SERVER_KEY_BITS])
  const seeded = rsaKeyPem(seededRng('ahead'), 'k', SERVER_KEY_BITS)
  t.equal(rsaKeysAhead(SERVER_KEY_BITS), 1, 'a seeded key never takes one made ahead')
  t.equal(rsaKeyPem(seededRng('ahead'), 'k', SERVER_KEY_BITS), seeded, 'and stays the same')
  rsaKeyPem(systemRng, 'k', SERVER_KEY_BITS)
  t.equal(rsaKeysAhead(SERVER_KEY_BITS), 0)
})

t.test('rsaKeysNeeded: the CA and server keys an output does not keep yet', async (t) => {
  t.same(rsaKeysNeeded(undefined), [CA_KEY_BITS, SERVER_KEY_BITS], 'a new output: both')
  t.same(rsaKeysNeeded({ caKeyPem: 'x' }), [SERVER_KEY_BITS], 'the CA kept')
  t.same(rsaKeysNeeded({ caKeyPem: 'x', serverKeyPem: 'y' }), [], 'both kept')
})

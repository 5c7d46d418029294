// Randomness for generated secrets. Real builds use crypto.randomBytes; a seed
// (tests, reproducible demos) gives a deterministic stream: HMAC-SHA256 in
// counter mode, keyed by the seed and a purpose label, so that adding a new
// secret never changes the existing ones.

import { createHmac, randomBytes } from 'node:crypto'

export interface Rng {
  /** n random bytes for the given purpose */
  bytes(purpose: string, n: number): Buffer
}

export const systemRng: Rng = { bytes: (_purpose, n) => randomBytes(n) }

export function seededRng(seed: string): Rng {
  return {
    bytes(purpose, n) {
      const out: Buffer[] = []
      let len = 0
      for (let counter = 0; len < n; counter++) {
        const block = createHmac('sha256', seed).update(`${purpose}\0${counter}`).digest()
        out.push(block)
        len += block.length
      }
      return Buffer.concat(out).subarray(0, n)
    },
  }
}

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789'

/** A password of `length` characters from an unambiguous alphanumeric alphabet, without modulo bias. */
export function randomPassword(rng: Rng, purpose: string, length = 24): string {
  let out = ''
  let round = 0
  while (out.length < length) {
    for (const b of rng.bytes(`${purpose}#${round++}`, length * 2)) {
      if (b < 256 - (256 % ALPHABET.length)) out += ALPHABET[b % ALPHABET.length]
      if (out.length === length) break
    }
  }
  return out
}

export function randomHex(rng: Rng, purpose: string, bytes = 32): string {
  return rng.bytes(purpose, bytes).toString('hex')
}

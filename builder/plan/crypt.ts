// SHA-512 crypt ($6$), the scheme RHEL 8 uses for /etc/shadow and that
// kickstart's `rootpw --iscrypted` / `user --iscrypted` expect. Written out
// from Ulrich Drepper's specification ("Unix crypt using SHA-256 and
// SHA-512"); checked against its test vectors in test/crypt.test.ts.

import { createHash } from 'node:crypto'
import type { Rng } from './random.js'

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const ROUNDS_DEFAULT = 5000

/**
 * Rounds for passwords a person chose (the config's `plain`): those can be
 * guessed, so each guess should cost 20 times crypt's default. RHEL 8's
 * libxcrypt (and glibc's crypt since 2.7) reads `rounds=N$` in a $6$ hash, so
 * /etc/shadow, kickstart's --iscrypted and cloud-init take it as is. Generated
 * passwords (random, 128 bits and more) keep the default: no guess finds them.
 */
export const PLAIN_PASSWORD_ROUNDS = 100_000

const sha512 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha512')
  for (const p of parts) h.update(p)
  return h.digest()
}

/** `src` repeated (and cut) to exactly `len` bytes. */
function repeatTo(src: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len)
  for (let i = 0; i < len; i += src.length) src.copy(out, i, 0, Math.min(src.length, len - i))
  return out
}

/** Byte triples of the final digest, in the order the $6$ encoding uses. */
const ORDER: [number, number, number][] = []
for (let i = 0; i < 21; i++) {
  const a = (i * 22) % 63
  ORDER.push([a, (a + 21) % 63, (a + 42) % 63])
}

function encode(c: Buffer): string {
  let out = ''
  const b64 = (w: number, n: number) => {
    for (let i = 0; i < n; i++, w >>>= 6) out += ITOA64[w & 0x3f]
  }
  for (const [x, y, z] of ORDER) b64((c[x]! << 16) | (c[y]! << 8) | c[z]!, 4)
  b64(c[63]!, 2)
  return out
}

/**
 * crypt(3) with a $6$ salt. `rounds` undefined means the default 5000 and no
 * rounds= field; otherwise clamped to 1000..999999999 as glibc does.
 */
export function sha512crypt(password: string, salt: string, rounds?: number): string {
  const P = Buffer.from(password, 'utf8')
  const S = Buffer.from(salt.slice(0, 16), 'utf8')
  const r = rounds === undefined ? ROUNDS_DEFAULT : Math.min(999_999_999, Math.max(1000, Math.floor(rounds)))

  const B = sha512(P, S, P)
  const aParts = [P, S, repeatTo(B, P.length)]
  for (let n = P.length; n > 0; n >>>= 1) aParts.push(n & 1 ? B : P)
  const A = sha512(...aParts)

  const DP = sha512(...Array<Buffer>(P.length).fill(P))
  const Pp = repeatTo(DP, P.length)
  const DS = sha512(...Array<Buffer>(16 + A[0]!).fill(S))
  const Sp = repeatTo(DS, S.length)

  let C = A
  for (let i = 0; i < r; i++) {
    const parts: Buffer[] = [i & 1 ? Pp : C]
    if (i % 3) parts.push(Sp)
    if (i % 7) parts.push(Pp)
    parts.push(i & 1 ? C : Pp)
    C = sha512(...parts)
  }
  const roundsField = rounds === undefined ? '' : `rounds=${r}$`
  return `$6$${roundsField}${S.toString('utf8')}$${encode(C)}`
}

/** A fresh $6$ hash with a random 16-character salt. */
export function hashPassword(password: string, rng: Rng, purpose: string): string {
  const salt = [...rng.bytes(`salt:${purpose}`, 16)].map((b) => ITOA64[b & 0x3f]).join('')
  return sha512crypt(password, salt)
}

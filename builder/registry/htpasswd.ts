// htpasswd for the distribution flavor. Debian's registry (distribution 2.8,
// the program in registry:2) accepts bcrypt entries only, and Node has no
// bcrypt: bcryptjs is the small, dependency-free, widely used implementation.
// The salt comes from the caller so that a seeded build is reproducible.

import bcrypt from 'bcryptjs'

/**
 * bcrypt cost for a password a person chose (registry.initUser.password, or
 * mirror-registryctl --initPassword): 4 times the work of cost 10, against
 * guessing. distribution reads the cost from the hash (golang.org/x/crypto
 * bcrypt accepts 4..31), so any cost works there; in bcryptjs a cost-12 hash
 * takes about 0.5 s here.
 */
export const BCRYPT_COST_CHOSEN = 12
/** bcrypt cost for a generated password (random, 24 characters): guessing is hopeless, cost 10 is the usual default. */
export const BCRYPT_COST_GENERATED = 10

/** One htpasswd line `user:$2b$NN$…` with a salt made from 16 given bytes. */
export function htpasswdLine(user: string, password: string, saltBytes: Buffer, cost: number = BCRYPT_COST_CHOSEN): string {
  if (user.includes(':') || /[\n\r]/.test(user)) throw new Error(`htpasswd user name cannot hold ':' or a line break: ${user}`)
  if (saltBytes.length !== 16) throw new Error('bcrypt salt must be 16 bytes')
  if (!Number.isInteger(cost) || cost < 4 || cost > 31) throw new Error(`bcrypt cost must be 4..31, not ${cost}`)
  const salt = `$2b$${String(cost).padStart(2, '0')}$${bcrypt.encodeBase64(saltBytes, 16)}`
  return `${user}:${bcrypt.hashSync(password, salt)}`
}

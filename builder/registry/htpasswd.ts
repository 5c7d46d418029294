// htpasswd for the distribution flavor. Debian's registry (distribution 2.8,
// the program in registry:2) accepts bcrypt entries only, and Node has no
// bcrypt: bcryptjs is the small, dependency-free, widely used implementation.
// The salt comes from the caller so that a seeded build is reproducible.

import bcrypt from 'bcryptjs'

export const BCRYPT_COST = 10

/** One htpasswd line `user:$2b$10$…` with a salt made from 16 given bytes. */
export function htpasswdLine(user: string, password: string, saltBytes: Buffer): string {
  if (user.includes(':') || /[\n\r]/.test(user)) throw new Error(`htpasswd user name cannot hold ':' or a line break: ${user}`)
  if (saltBytes.length !== 16) throw new Error('bcrypt salt must be 16 bytes')
  const salt = `$2b$${String(BCRYPT_COST).padStart(2, '0')}$${bcrypt.encodeBase64(saltBytes, 16)}`
  return `${user}:${bcrypt.hashSync(password, salt)}`
}

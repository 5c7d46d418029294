// What all three host renderers (kickstart %post, Butane, Ignition) lay down:
// the plan's HostSpec plus what follows from the config's users (a sudoers
// drop-in for sudo users who log in by SSH key only and so have no password
// to give sudo). One function, so the three cannot disagree.

import type { HostFile, HostSpec, Plan } from '../plan/types.js'
import { UserError } from '../errors.js'

export interface HostUser {
  name: string
  gecos: string
  groups: string[]
  /** SHA-512 crypt hash, or null when the password is locked */
  passwordHash: string | null
  sshKeys: string[]
  /** Index in config.host.users, for error messages */
  index: number
}

export interface HostModel extends HostSpec {
  users: HostUser[]
  /** SHA-512 crypt hash for root, or null when root is locked */
  rootPasswordHash: string | null
}

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/

export function hostModel(plan: Plan): HostModel {
  const users: HostUser[] = plan.config.host.users.map((u, index) => {
    if (!USER_NAME.test(u.name))
      throw new UserError(`host.users[${index}].name: "${u.name}" is not a valid user name (lower case letters, digits, _ and -, up to 32, not starting with a digit or -)`)
    return {
      name: u.name,
      gecos: u.gecos,
      groups: u.sudo ? ['wheel'] : [],
      passwordHash: plan.secrets.userPasswordHashes[u.name] ?? null,
      sshKeys: u.sshKeys,
      index,
    }
  })
  const sudoers: HostFile[] = users
    .filter((u) => u.groups.includes('wheel') && u.passwordHash === null)
    .map((u) => ({
      path: `/etc/sudoers.d/90-mirror-appliance-${u.name}`,
      contents: `# ${u.name} logs in with an SSH key only and has no password to give sudo\n${u.name} ALL=(ALL) NOPASSWD: ALL\n`,
      mode: 0o440,
      owner: 'root',
      group: 'root',
    }))
  return {
    ...plan.host,
    files: [...plan.host.files, ...sudoers],
    users,
    rootPasswordHash: plan.secrets.rootPasswordHash,
  }
}

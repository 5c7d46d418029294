// What all three host renderers (kickstart %post, Butane, Ignition) lay down:
// the plan's HostSpec plus what follows from the config's users and SSH
// settings (a sudoers drop-in for sudo users who log in by SSH key only and
// so have no password to give sudo; the sshd settings script and its unit).
// One function, so the three cannot disagree. Not the bundle's: an existing
// host's users and SSH server are its administrator's.

import type { Config } from '../config/types.js'
import type { HostFile, HostSpec, Plan } from '../plan/types.js'
import { UserError } from '../errors.js'
import * as L from '../registry/layout.js'
import { renderTemplate } from './templates.js'

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
      throw new UserError(
        `host.users[${index}].name: "${u.name}" is not a valid user name (lower case letters, digits, _ and -, up to 32, not starting with a digit or -)`,
      )
    const reserved = (plan.host.accounts ?? []).find((a) => a.name === u.name)
    if (reserved)
      throw new UserError(
        `host.users[${index}].name: "${u.name}" is the account that reserves uid ${reserved.uid} for the registry's container; choose another name`,
      )
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
  const sshd = sshdSettingsFiles(plan.config)
  return {
    ...plan.host,
    files: [...plan.host.files, ...sudoers, ...sshd],
    enableUnits: [...plan.host.enableUnits, L.SSHD_SETTINGS_UNIT],
    users,
    rootPasswordHash: plan.secrets.rootPasswordHash,
  }
}

/**
 * host.ssh as a script that edits /etc/ssh/sshd_config once, and the unit
 * that runs it before sshd unless the kickstart's %post already has. A file
 * in /etc/ssh/sshd_config.d would be simpler and is what RHEL 9 reads, but
 * RHEL 8's sshd_config includes no such directory (its openssh 8.0p1 reads
 * only sshd_config), so the drop-in would be silently ignored there.
 */
function sshdSettingsFiles(config: Config): HostFile[] {
  const data = {
    permitRootLogin: config.host.ssh.permitRootLogin,
    passwordAuthentication: config.host.ssh.passwordAuthentication ? 'yes' : 'no',
    doneFile: L.SSHD_SETTINGS_DONE,
    unit: L.SSHD_SETTINGS_UNIT,
    script: L.SSHD_SETTINGS_SCRIPT,
    conf: '/etc/ssh/sshd_config',
  }
  const root = { owner: 'root', group: 'root' }
  return [
    { path: L.SSHD_SETTINGS_SCRIPT, contents: renderTemplate('templates/ssh/sshd-settings.sh.hbs', data), mode: 0o755, ...root },
    {
      path: `${L.SYSTEMD_DIR}/${L.SSHD_SETTINGS_UNIT}`,
      contents: renderTemplate('templates/ssh/sshd-settings.service.hbs', data),
      mode: 0o644,
      ...root,
    },
  ]
}

// The host spec as Ignition spec 3.3.0 JSON: what every Ignition from 2.14 on
// accepts (RHCOS 4.12+), and what Debian's ignition-validate checks. The
// object is typed here and serialized with JSON.stringify: a template would
// add nothing to JSON but ways to get the escaping wrong.
//
// Not expressible in Ignition, so absent here and present in the kickstart:
// firewall ports (RHCOS has no firewalld), SELinux types (Ignition relabels
// what it writes by the policy; the registry mounts its data with :Z).

import type { Plan } from '../plan/types.js'
import { hostModel } from './host-model.js'

export const IGNITION_VERSION = '3.3.0'

/**
 * An owner as Ignition's NodeUser/NodeGroup: {id} or {name}, never both.
 * Ignition resolves a name in the target's /etc/passwd or /etc/group and
 * fails the whole files stage on a miss ("unknown user"), so a numeric owner
 * (Quay's uid 1001: a container's uid, not an account the host is sure to
 * have) must travel as an id. Checked by applying appliance.ign with the real
 * Ignition (test/ignition-apply.test.ts).
 */
export type IgnitionOwner = { id: number } | { name: string }

interface Node {
  path: string
  mode: number
  user: IgnitionOwner
  group: IgnitionOwner
  overwrite?: boolean
}

export interface IgnitionConfig {
  ignition: { version: string }
  passwd: {
    users: {
      name: string
      uid?: number
      gecos?: string
      homeDir?: string
      shell?: string
      primaryGroup?: string
      noUserGroup?: boolean
      groups?: string[]
      passwordHash?: string
      sshAuthorizedKeys?: string[]
    }[]
    groups?: { name: string; gid: number }[]
  }
  storage: {
    directories: Node[]
    files: (Node & { contents: { source: string } })[]
  }
  systemd: { units: { name: string; enabled: boolean }[] }
}

/** A file's contents as the data URL Ignition reads (RFC 2397, base64). */
export function dataUrl(contents: string | Buffer): string {
  return 'data:;base64,' + (typeof contents === 'string' ? Buffer.from(contents, 'utf8') : contents).toString('base64')
}

/**
 * The host spec writes an owner as a string, a name ('root') or a number
 * ('1001'), as chown takes it. Numbers become ids; names stay names, and the
 * host spec only uses names every RHEL host has (root) or that this config
 * creates (Ignition makes passwd.users before it writes files).
 */
export function ignitionOwner(owner: string): IgnitionOwner {
  return /^\d+$/.test(owner) ? { id: Number(owner) } : { name: owner }
}

export function ignitionConfig(plan: Plan): IgnitionConfig {
  const m = hostModel(plan)
  const users: IgnitionConfig['passwd']['users'] = []
  if (m.rootPasswordHash !== null) users.push({ name: 'root', passwordHash: m.rootPasswordHash })
  // Accounts that reserve a container's uid come before the users: Ignition
  // creates passwd.users in order (groups first), with useradd, which would
  // give a person the next free uid. No passwordHash: Ignition then sets "*",
  // a locked password. The group is named so that its gid is the uid.
  const accounts = m.accounts ?? []
  for (const a of accounts)
    users.push({ name: a.name, uid: a.uid, gecos: a.gecos, homeDir: a.home, shell: a.shell, primaryGroup: a.name, noUserGroup: true })
  for (const u of m.users)
    users.push({
      name: u.name,
      ...(u.gecos ? { gecos: u.gecos } : {}),
      ...(u.groups.length ? { groups: u.groups } : {}),
      ...(u.passwordHash !== null ? { passwordHash: u.passwordHash } : {}),
      ...(u.sshKeys.length ? { sshAuthorizedKeys: u.sshKeys.map((k) => k.trim()) } : {}),
    })
  return {
    ignition: { version: IGNITION_VERSION },
    passwd: { users, ...(accounts.length ? { groups: accounts.map((a) => ({ name: a.name, gid: a.uid })) } : {}) },
    storage: {
      directories: m.dirs.map((d) => ({ path: d.path, mode: d.mode, user: ignitionOwner(d.owner), group: ignitionOwner(d.group) })),
      files: m.files.map((f) => ({
        path: f.path,
        mode: f.mode,
        user: ignitionOwner(f.owner),
        group: ignitionOwner(f.group),
        overwrite: true,
        contents: { source: dataUrl(f.contents) },
      })),
    },
    systemd: {
      units: [...m.enableUnits.map((name) => ({ name, enabled: true })), ...m.disableUnits.map((name) => ({ name, enabled: false }))],
    },
  }
}

export function renderIgnition(plan: Plan): string {
  return JSON.stringify(ignitionConfig(plan), null, 2) + '\n'
}

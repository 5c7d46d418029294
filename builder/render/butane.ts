// The host spec as a Butane config (variant fcos 1.4.0, i.e. Ignition 3.3.0),
// from templates/butane/appliance.bu.hbs. Built from the same object as the
// Ignition JSON, so the two cannot disagree; text files are inline (readable),
// anything that is not valid UTF-8 goes as a base64 data URL.

import type { Plan } from '../plan/types.js'
import { ignitionConfig, type IgnitionOwner } from './ignition.js'
import { renderTemplate } from './templates.js'
import { hostModel } from './host-model.js'

/** The contents as text if they are valid UTF-8, else null. */
function asText(contents: string | Buffer): string | null {
  if (typeof contents === 'string') return contents
  const text = contents.toString('utf8')
  return Buffer.from(text, 'utf8').equals(contents) ? text : null
}

/** An owner as the template writes it: `user: { id: 1001 }` or `user: { name: "root" }` (Butane's NodeUser/NodeGroup, base v0_4). */
const ownerKey = (o: IgnitionOwner) => ('id' in o ? { key: 'id', value: o.id } : { key: 'name', value: o.name })

export function renderButane(plan: Plan): string {
  const ign = ignitionConfig(plan)
  const model = hostModel(plan)
  return renderTemplate('templates/butane/appliance.bu.hbs', {
    configDigest: plan.configDigest,
    // strict templates: every field present, empty when unset
    users: ign.passwd.users.map((u) => ({
      name: u.name,
      uid: u.uid ?? null,
      homeDir: u.homeDir ?? '',
      shell: u.shell ?? '',
      primaryGroup: u.primaryGroup ?? '',
      noUserGroup: u.noUserGroup ?? false,
      gecos: u.gecos ?? '',
      groups: u.groups ?? [],
      passwordHash: u.passwordHash ?? null,
      sshAuthorizedKeys: u.sshAuthorizedKeys ?? [],
    })),
    groups: ign.passwd.groups ?? [],
    directories: ign.storage.directories.map((d) => ({ ...d, user: ownerKey(d.user), group: ownerKey(d.group) })),
    files: ign.storage.files.map((f, i) => {
      const text = asText(model.files[i]!.contents)
      return {
        ...f,
        user: ownerKey(f.user),
        group: ownerKey(f.group),
        inline: text === null || text === '' ? null : text,
        source: f.contents.source,
      }
    }),
    units: ign.systemd.units,
  })
}

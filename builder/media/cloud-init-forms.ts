// Which cloud-init each RHEL 8 minor ships, and which form of a key that
// version reads without a deprecation warning. One table, like the podman key
// table (builder/registry/quadlet-keys.ts): the NoCloud seed asks it before it
// writes a key whose form changed.
//
// cloud-init per minor (the AppStream package of the release), as far as
// public package lists show it:
//   8.4  20.3    Rocky Linux 8.4 change log: cloud-init-20.3-10.el8_4.x
//   8.5  21.1    Rocky Linux 8.5 change log: cloud-init-21.1-7.el8_5.x
//   8.6  21.1    Rocky-8.6-x86_64-dvd1.iso: cloud-init-21.1-15.el8
//   8.7  22.1    not confirmed: cloud-init-22.1-N.el8 builds follow 8.6's 21.1
//   8.8  22.1    cloud-init-22.1-5.el8 in an EL8 update of the 8.8 era (kernel
//                4.18.0-483, selinux-policy 3.14.3-117); not confirmed per minor
//   8.9  23.1.1  cloud-init-23.1.1-N.el8 builds, between 8.8 and 8.10; not confirmed
//   8.10 23.4    cloud-init-23.4-7.el8_10 (the el8_10 tag)
// Only the side of a boundary matters (22.3 for chpasswd below): 8.4-8.8 are
// before it whatever the exact 8.7 and 8.8 versions, 8.10 after it; 8.9 is
// taken as 23.1.1. Correct a row when a minor's package list says otherwise.

import type { RhelMinor } from '../rhel.js'

export const RHEL_CLOUD_INIT: Record<RhelMinor, string> = {
  '8.4': '20.3',
  '8.5': '21.1',
  '8.6': '21.1',
  '8.7': '22.1',
  '8.8': '22.1',
  '8.9': '23.1.1',
  '8.10': '23.4',
}

/**
 * How to set root's password hash. `users` (a list of {name, password, type})
 * is read by cc_set_passwords from cloud-init 22.3 on (canonical/cloud-init tag
 * 22.3, da4d72d7; absent at 22.2); from then on `list` is deprecated (the schema
 * says "deprecated_version: 22.2, Use users instead", and cloud-init 22.4+
 * prints it on every boot). Before 22.3 only `list` exists; its YAML-list form
 * is read since at least 20.3 (cc_set_passwords at tag 20.3, 948bd9c1) and
 * avoids the multi-line string form, deprecated on its own.
 */
export type ChpasswdForm = 'users' | 'list'
export const CHPASSWD_USERS_SINCE = '22.3'

function atLeast(have: string, want: string): boolean {
  const a = have.split('.').map(Number)
  const b = want.split('.').map(Number)
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0)
  return true
}

export function chpasswdForm(rhel: RhelMinor): ChpasswdForm {
  return atLeast(RHEL_CLOUD_INIT[rhel], CHPASSWD_USERS_SINCE) ? 'users' : 'list'
}

// What a PXE base URL may hold, and its normal form. It lives with the
// config because both the config key (outputs.pxe.baseUrl, whose schema
// pattern is PXE_URL_PATTERN) and its flag (--pxe-url, checked by the build
// settings table in flags.ts) are checked here, before any work; the PXE
// tree writer (media/pxe.ts) reads the normalized value.

import { UserError } from '../errors.js'

/**
 * What a PXE base URL may hold. It goes unquoted into the GRUB, iPXE and
 * pxelinux entries and the installer's kernel command line, where ';', '$',
 * '&', quotes, '#', '%' and spaces mean something (iPXE expands ${...}, GRUB
 * ends a command at ';'): only http(s), a host name or IP address, a port and
 * a path of RFC 3986 unreserved characters and '/' get through. The config
 * schema (outputs.pxe.baseUrl) has the same pattern; a test keeps them equal.
 */
export const PXE_URL_PATTERN =
  '^https?://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$'
const PXE_URL = new RegExp(PXE_URL_PATTERN)

/** Normalize and check the base URL: http(s), URL characters only, no query, no trailing slash. */
export function normalizeBaseUrl(baseUrl: string): string {
  let u: URL
  try {
    u = new URL(baseUrl)
  } catch {
    throw new UserError(`base URL '${baseUrl}' is not a URL`, 'example: http://192.168.122.1:8080')
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UserError(`base URL '${baseUrl}' must be http:// or https://`)
  if (u.search || u.hash) throw new UserError(`base URL '${baseUrl}' must not have a query or fragment`)
  if (/\s/.test(baseUrl)) throw new UserError(`base URL '${baseUrl}' must not contain spaces`)
  if (u.username || u.password)
    throw new UserError(`base URL '${baseUrl}' must not carry a user name or password: it is shown on every console that boots it`)
  if (!PXE_URL.test(baseUrl)) {
    const bad = [...new Set(baseUrl.replace(/^https?:\/\//, '').replace(/[A-Za-z0-9._~/:[\]-]/g, ''))].join(' ')
    throw new UserError(
      `base URL '${baseUrl}' may hold only letters, digits and . _ ~ - / after http(s)://HOST[:PORT]${bad ? `, not ${bad}` : ''}: it goes unquoted into GRUB, iPXE and kernel command lines`,
      'example: http://192.168.122.1:8080/pxe',
    )
  }
  return u.toString().replace(/\/+$/, '')
}

// pxe/: everything a network install needs, served over HTTP by `serve`:
// the installer kernel and initrd from the base ISO's images/pxeboot, the
// ISO's contents as the install repository (repo/), the kickstart, the
// payload, and ready-made boot loader entries for GRUB2, iPXE and pxelinux.
// For a fleet (buildFleetPxeTree) the tree is the same once, with a kickstart
// per host under hosts/<name>/ks.cfg and boot entries per MAC address; the
// default entries boot the local disk, so an unknown machine never installs.

import { chmod, cp, mkdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { UserError } from '../errors.js'
import { renderTemplate } from '../render/templates.js'
import { xorrisoExtract, xorrisoInspect } from '../tools/xorriso.js'
import { checkFreeSpace, checkPayloadDir, throwIfAborted, treeSize } from './common.js'
import { looksLikeIso } from './iso.js'

export const PXE_KERNEL = 'images/pxeboot/vmlinuz'
export const PXE_INITRD = 'images/pxeboot/initrd.img'

export interface PxeOptions extends TreeOptions {
  ksText: string
}

interface TreeOptions {
  baseIso: string
  /** Directory to create (must not exist) */
  outDir: string
  payloadDir?: string
  /** URL this directory will be served at, e.g. http://10.0.0.5:8080 */
  baseUrl: string
  /** Extract the whole ISO under repo/ as the install source (default true) */
  repo?: boolean
  /** Name shown in the menus */
  title?: string
  /** Timestamp for the files we write */
  epoch?: number
  signal?: AbortSignal
}

export interface PxeSnippets {
  grub: string
  ipxe: string
  pxelinux: string
}

export interface PxeResult {
  outDir: string
  kernelUrl: string
  initrdUrl: string
  ksUrl: string
  /** inst.repo= value (the extracted ISO), or null when repo is false */
  repoUrl: string | null
  /** Kernel arguments every snippet uses */
  cmdline: string
  snippets: PxeSnippets
  /** Snippet files, relative to outDir */
  files: { grub: string; ipxe: string; pxelinux: string }
}

/**
 * What a PXE base URL may hold. It goes unquoted into the GRUB, iPXE and
 * pxelinux entries and the installer's kernel command line, where ';', '$',
 * '&', quotes, '#', '%' and spaces mean something (iPXE expands ${...}, GRUB
 * ends a command at ';'): only http(s), a host name or IP address, a port and
 * a path of RFC 3986 unreserved characters and '/' get through. The config
 * schema (outputs.pxe.baseUrl) has the same pattern; a test keeps them equal.
 */
export const PXE_URL_PATTERN = '^https?://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$'
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
  if (u.username || u.password) throw new UserError(`base URL '${baseUrl}' must not carry a user name or password: it is shown on every console that boots it`)
  if (!PXE_URL.test(baseUrl)) {
    const bad = [...new Set(baseUrl.replace(/^https?:\/\//, '').replace(/[A-Za-z0-9._~/:[\]-]/g, ''))].join(' ')
    throw new UserError(
      `base URL '${baseUrl}' may hold only letters, digits and . _ ~ - / after http(s)://HOST[:PORT]${bad ? `, not ${bad}` : ''}: it goes unquoted into GRUB, iPXE and kernel command lines`,
      'example: http://192.168.122.1:8080/pxe',
    )
  }
  return u.toString().replace(/\/+$/, '')
}

/** The kernel arguments and the three snippets. Pure. */
export function pxeSnippets(o: { baseUrl: string; repo: boolean; title: string }): { cmdline: string; snippets: PxeSnippets; urls: Pick<PxeResult, 'kernelUrl' | 'initrdUrl' | 'ksUrl' | 'repoUrl'> } {
  const baseUrl = normalizeBaseUrl(o.baseUrl)
  const urls = {
    kernelUrl: `${baseUrl}/${PXE_KERNEL}`,
    initrdUrl: `${baseUrl}/${PXE_INITRD}`,
    ksUrl: `${baseUrl}/ks.cfg`,
    repoUrl: o.repo ? `${baseUrl}/repo` : null,
  }
  const cmdline = ['ip=dhcp', ...(urls.repoUrl ? [`inst.repo=${urls.repoUrl}`] : []), `inst.ks=${urls.ksUrl}`].join(' ')
  const data = { title: o.title, baseUrl, kernel: PXE_KERNEL, initrd: PXE_INITRD, cmdline, scriptUrl: `${baseUrl}/pxe/boot.ipxe` }
  return {
    cmdline,
    urls,
    snippets: {
      grub: renderTemplate('templates/pxe/grub.cfg.hbs', data),
      ipxe: renderTemplate('templates/pxe/boot.ipxe.hbs', data),
      pxelinux: renderTemplate('templates/pxe/pxelinux.cfg.hbs', data),
    },
  }
}

/** Write the PXE tree. Built beside outDir and renamed into place; nothing is left on failure. */
export async function buildPxeTree(o: PxeOptions): Promise<PxeResult> {
  const repo = o.repo ?? true
  const { cmdline, snippets, urls } = pxeSnippets({ baseUrl: o.baseUrl, repo, title: o.title ?? 'Red Hat Enterprise Linux 8' })
  if (!o.ksText.trim()) throw new UserError('the kickstart text is empty')
  const files = { grub: 'pxe/grub.cfg', ipxe: 'pxe/boot.ipxe', pxelinux: 'pxe/pxelinux.cfg/default' }
  await writePxeTree(o, repo, [
    // the kickstart carries the server key, the registry passwords and the
    // hashes: readable by the serving user only, like a fleet's
    { path: 'ks.cfg', text: o.ksText, mode: 0o600 },
    { path: files.grub, text: snippets.grub },
    { path: files.ipxe, text: snippets.ipxe },
    { path: files.pxelinux, text: snippets.pxelinux },
  ])
  return { outDir: o.outDir, ...urls, cmdline, snippets, files }
}

// ---- fleets: one tree, one entry per MAC ----

export interface PxeHost {
  hostname: string
  /** aa:bb:cc:dd:ee:ff */
  mac: string
  ksText: string
}

export interface FleetPxeOptions extends TreeOptions {
  hosts: PxeHost[]
}

export interface FleetPxeEntry {
  hostname: string
  mac: string
  ksUrl: string
  cmdline: string
  /** This host's boot entries, relative to the tree */
  files: { grub: string; ipxe: string; pxelinux: string; ks: string }
}

export interface FleetPxeResult {
  outDir: string
  repoUrl: string | null
  hosts: FleetPxeEntry[]
  /** The default (local boot) entries, relative to the tree */
  files: { grub: string; ipxe: string; pxelinux: string }
}

/** The name pxelinux and GRUB2 look a MAC up by: ARP type 01, lower-case hex joined by dashes. */
export function macFileId(mac: string): string {
  if (!/^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(mac)) throw new UserError(`'${mac}' is not a MAC address (aa:bb:cc:dd:ee:ff)`)
  return '01-' + mac.toLowerCase().replaceAll(':', '-')
}

/**
 * Every boot loader file of a fleet tree, relative path -> text. Pure. The
 * defaults (pxe/grub.cfg, pxe/pxelinux.cfg/default, pxe/boot.ipxe) only boot
 * the local disk: a machine whose MAC is not in the fleet never installs.
 */
export function fleetPxeFiles(o: { baseUrl: string; repo: boolean; title: string; hosts: { hostname: string; mac: string }[] }): { files: Record<string, string>; hosts: FleetPxeEntry[] } {
  const baseUrl = normalizeBaseUrl(o.baseUrl)
  const files: Record<string, string> = {}
  const hosts: FleetPxeEntry[] = []
  const seen = new Map<string, string>()
  for (const h of o.hosts) {
    const id = macFileId(h.mac)
    const other = seen.get(id)
    if (other) throw new UserError(`${h.hostname} and ${other} have the same MAC ${h.mac}: one PXE entry per MAC`)
    seen.set(id, h.hostname)
    const ksUrl = `${baseUrl}/hosts/${h.hostname}/ks.cfg`
    const cmdline = ['ip=dhcp', ...(o.repo ? [`inst.repo=${baseUrl}/repo`] : []), `inst.ks=${ksUrl}`].join(' ')
    const entry: FleetPxeEntry = {
      hostname: h.hostname,
      mac: h.mac.toLowerCase(),
      ksUrl,
      cmdline,
      files: { grub: `pxe/grub.cfg-${id}`, pxelinux: `pxe/pxelinux.cfg/${id}`, ipxe: `pxe/ipxe/${id}.ipxe`, ks: `hosts/${h.hostname}/ks.cfg` },
    }
    const data = { title: `${o.title} as ${h.hostname}`, baseUrl, kernel: PXE_KERNEL, initrd: PXE_INITRD, cmdline, scriptUrl: `${baseUrl}/${entry.files.ipxe}`, perMac: `${entry.mac} (${h.hostname})` }
    files[entry.files.grub] = renderTemplate('templates/pxe/grub.cfg.hbs', data)
    files[entry.files.pxelinux] = renderTemplate('templates/pxe/pxelinux.cfg.hbs', data)
    files[entry.files.ipxe] = renderTemplate('templates/pxe/boot.ipxe.hbs', data)
    hosts.push(entry)
  }
  const data = { baseUrl, hosts }
  files['pxe/grub.cfg'] = renderTemplate('templates/pxe/grub-local.cfg.hbs', data)
  files['pxe/pxelinux.cfg/default'] = renderTemplate('templates/pxe/pxelinux-local.cfg.hbs', data)
  files['pxe/boot.ipxe'] = renderTemplate('templates/pxe/boot-fleet.ipxe.hbs', data)
  return { files, hosts }
}

/** The fleet's tree: repo/, images/pxeboot/ and appliance/ once, hosts/<name>/ks.cfg (0600) and the per-MAC entries. */
export async function buildFleetPxeTree(o: FleetPxeOptions): Promise<FleetPxeResult> {
  const repo = o.repo ?? true
  if (!o.hosts.length) throw new UserError('a fleet PXE tree needs at least one host')
  for (const h of o.hosts) if (!h.ksText.trim()) throw new UserError(`the kickstart for ${h.hostname} is empty`)
  const { files, hosts } = fleetPxeFiles({ baseUrl: o.baseUrl, repo, title: o.title ?? 'Red Hat Enterprise Linux 8', hosts: o.hosts })
  await writePxeTree(o, repo, [
    // each kickstart carries that host's secrets: readable by the serving user only
    ...o.hosts.map((h) => ({ path: `hosts/${h.hostname}/ks.cfg`, text: h.ksText, mode: 0o600 })),
    ...Object.entries(files).map(([path, text]) => ({ path, text })),
  ])
  return {
    outDir: o.outDir,
    repoUrl: repo ? `${normalizeBaseUrl(o.baseUrl)}/repo` : null,
    hosts,
    files: { grub: 'pxe/grub.cfg', ipxe: 'pxe/boot.ipxe', pxelinux: 'pxe/pxelinux.cfg/default' },
  }
}

async function writePxeTree(o: TreeOptions, repo: boolean, texts: { path: string; text: string; mode?: number }[]): Promise<void> {
  const b = await stat(o.baseIso).catch(() => null)
  if (!b?.isFile()) throw new UserError(`base ISO ${o.baseIso} does not exist or is not a file`)
  if (!(await looksLikeIso(o.baseIso))) throw new UserError(`${o.baseIso} is not an ISO 9660 image`)
  if (await stat(o.outDir).catch(() => null)) throw new UserError(`${o.outDir} already exists`)
  const parent = await stat(dirname(o.outDir)).catch(() => null)
  if (!parent?.isDirectory()) throw new UserError(`output directory ${dirname(o.outDir)} does not exist`)
  await checkPayloadDir(o.payloadDir)

  const info = await xorrisoInspect(o.baseIso, o.signal)
  const have = new Set(info.files.map((f) => f.path))
  const missing = [PXE_KERNEL, PXE_INITRD].filter((p) => !have.has('/' + p))
  if (missing.length) throw new UserError(`${o.baseIso} has no ${missing.join(' or ')}: not a RHEL installer ISO`)
  const isoBytes = info.files.reduce((n, f) => n + f.size, 0)
  const payloadBytes = o.payloadDir ? await treeSize(o.payloadDir) : 0
  await checkFreeSpace(dirname(o.outDir), (repo ? isoBytes : 0) + payloadBytes + 64 * 1024 * 1024, o.outDir)
  throwIfAborted(o.signal)

  const tmp = join(dirname(o.outDir), `.${basename(o.outDir)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`)
  try {
    await mkdir(join(tmp, 'images', 'pxeboot'), { recursive: true })
    const pairs: Array<[string, string]> = [
      ['/' + PXE_KERNEL, join(tmp, PXE_KERNEL)],
      ['/' + PXE_INITRD, join(tmp, PXE_INITRD)],
    ]
    if (repo) pairs.push(['/', join(tmp, 'repo')])
    await xorrisoExtract(o.baseIso, pairs, o.signal)
    for (const f of texts) {
      await mkdir(dirname(join(tmp, f.path)), { recursive: true })
      await writeFile(join(tmp, f.path), f.text, { mode: f.mode ?? 0o644 })
      await chmod(join(tmp, f.path), f.mode ?? 0o644)
    }
    if (o.payloadDir) await cp(o.payloadDir, join(tmp, 'appliance'), { recursive: true, preserveTimestamps: true })
    if (o.epoch !== undefined) {
      for (const f of texts) await utimes(join(tmp, f.path), o.epoch, o.epoch)
    }
    throwIfAborted(o.signal)
    await rename(tmp, o.outDir)
  } catch (e) {
    await rm(tmp, { recursive: true, force: true })
    throw e
  }
}

// pxe/: everything a network install needs, served over HTTP by `serve`:
// the installer kernel and initrd from the base ISO's images/pxeboot, the
// ISO's contents as the install repository (repo/), the payload once, a
// kickstart per host and ready-made boot loader entries for GRUB2, iPXE and
// pxelinux. One writer for every site: a site of one has its kickstart at
// ks.cfg and the default entries install it; a fleet's hosts are booted by
// their MAC addresses (hosts/<name>/ks.cfg, grub.cfg-01-<mac>, ...) and the
// default entries boot the local disk, so an unknown machine never installs.

import { chmod, cp, mkdir, stat, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { normalizeBaseUrl } from '../config/pxe-url.js'
import { withTemp } from '../atomic.js'
import { UserError } from '../errors.js'
import { renderTemplate } from '../render/templates.js'
import { needTool, type ToolNeed } from '../tool-needs.js'
import { xorrisoExtract, xorrisoInspect } from '../tools/xorriso.js'
import { checkFreeSpace, checkPayloadDir, throwIfAborted, treeSize } from './common.js'
import { looksLikeIso } from './iso.js'

export const PXE_KERNEL = 'images/pxeboot/vmlinuz'
export const PXE_INITRD = 'images/pxeboot/initrd.img'

/** The programs this writer runs: the build checks them before any work, `doctor` lists them (tool-needs.ts). */
export const PXE_TOOLS: readonly ToolNeed[] = [needTool('xorriso', 'to take the installer out of the RHEL ISO for the PXE tree')]

/** One host the tree installs. */
export interface PxeHost {
  hostname: string
  /**
   * aa:bb:cc:dd:ee:ff: the host gets entries of its own, found by this MAC.
   * Absent (only for the one host of a site of one): the tree's default
   * entries install it.
   */
  mac?: string
  ksText: string
}

export interface PxeOptions {
  baseIso: string
  /** Directory to create (must not exist) */
  outDir: string
  payloadDir?: string
  /** URL this directory will be served at, e.g. http://10.0.0.5:8080 */
  baseUrl: string
  hosts: PxeHost[]
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

/** The boot entries of one host, relative to the tree. */
export interface PxeEntry {
  hostname: string
  /** Lower case; absent when the default entries install this host */
  mac?: string
  ksUrl: string
  /** Kernel arguments of its entries */
  cmdline: string
  files: { grub: string; pxelinux: string; ipxe: string; ks: string }
}

export interface PxeResult {
  outDir: string
  kernelUrl: string
  initrdUrl: string
  /** inst.repo= value (the extracted ISO), or null when repo is false */
  repoUrl: string | null
  hosts: PxeEntry[]
  /** The default entries (what a machine without an entry of its own boots), relative to outDir */
  files: { grub: string; ipxe: string; pxelinux: string }
  /** Their texts: a site of one's install entries, a fleet's local-boot entries */
  snippets: PxeSnippets
}

/** The default entries: the boot loaders read these when no per-MAC entry exists. */
const DEFAULT_FILES = { grub: 'pxe/grub.cfg', ipxe: 'pxe/boot.ipxe', pxelinux: 'pxe/pxelinux.cfg/default' } as const

/** The name pxelinux and GRUB2 look a MAC up by: ARP type 01, lower-case hex joined by dashes. */
export function macFileId(mac: string): string {
  if (!/^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(mac)) throw new UserError(`'${mac}' is not a MAC address (aa:bb:cc:dd:ee:ff)`)
  return '01-' + mac.toLowerCase().replaceAll(':', '-')
}

/** One host's entry and the texts of its three boot loader files. Pure; baseUrl normalized. */
function pxeEntry(
  h: { hostname: string; mac?: string },
  o: { baseUrl: string; repo: boolean; title: string },
): { entry: PxeEntry; texts: PxeSnippets } {
  const id = h.mac !== undefined ? macFileId(h.mac) : undefined
  const ks = id ? `hosts/${h.hostname}/ks.cfg` : 'ks.cfg'
  const files = id
    ? { grub: `pxe/grub.cfg-${id}`, pxelinux: `pxe/pxelinux.cfg/${id}`, ipxe: `pxe/ipxe/${id}.ipxe`, ks }
    : { ...DEFAULT_FILES, ks }
  const ksUrl = `${o.baseUrl}/${ks}`
  const cmdline = ['ip=dhcp', ...(o.repo ? [`inst.repo=${o.baseUrl}/repo`] : []), `inst.ks=${ksUrl}`].join(' ')
  const entry: PxeEntry = { hostname: h.hostname, ...(h.mac !== undefined ? { mac: h.mac.toLowerCase() } : {}), ksUrl, cmdline, files }
  const data = {
    title: id ? `${o.title} as ${h.hostname}` : o.title,
    baseUrl: o.baseUrl,
    kernel: PXE_KERNEL,
    initrd: PXE_INITRD,
    cmdline,
    scriptUrl: `${o.baseUrl}/${files.ipxe}`,
    ...(id ? { perMac: `${entry.mac} (${h.hostname})` } : {}),
  }
  return {
    entry,
    texts: {
      grub: renderTemplate('templates/pxe/grub.cfg.hbs', data),
      ipxe: renderTemplate('templates/pxe/boot.ipxe.hbs', data),
      pxelinux: renderTemplate('templates/pxe/pxelinux.cfg.hbs', data),
    },
  }
}

/** The kernel arguments and the three install entries of a site of one's tree. Pure. */
export function pxeSnippets(o: { baseUrl: string; repo: boolean; title: string }): {
  cmdline: string
  snippets: PxeSnippets
  urls: { kernelUrl: string; initrdUrl: string; ksUrl: string; repoUrl: string | null }
} {
  const baseUrl = normalizeBaseUrl(o.baseUrl)
  const { entry, texts } = pxeEntry({ hostname: '' }, { ...o, baseUrl })
  return { cmdline: entry.cmdline, snippets: texts, urls: { ...installerUrls(baseUrl, o.repo), ksUrl: entry.ksUrl } }
}

function installerUrls(baseUrl: string, repo: boolean): Pick<PxeResult, 'kernelUrl' | 'initrdUrl' | 'repoUrl'> {
  return { kernelUrl: `${baseUrl}/${PXE_KERNEL}`, initrdUrl: `${baseUrl}/${PXE_INITRD}`, repoUrl: repo ? `${baseUrl}/repo` : null }
}

/**
 * Every boot loader file of a tree, relative path -> text, and each host's
 * entry. Pure. With MACs, the defaults (pxe/grub.cfg, pxe/pxelinux.cfg/default,
 * pxe/boot.ipxe) only boot the local disk: a machine whose MAC is not listed
 * never installs. Without (one host), the defaults install that host.
 */
export function pxeTreeFiles(o: { baseUrl: string; repo: boolean; title: string; hosts: { hostname: string; mac?: string }[] }): {
  files: Record<string, string>
  hosts: PxeEntry[]
} {
  const baseUrl = normalizeBaseUrl(o.baseUrl)
  if (!o.hosts.length) throw new UserError('a PXE tree needs at least one host')
  const withoutMac = o.hosts.find((h) => h.mac === undefined)
  if (withoutMac && o.hosts.length > 1)
    throw new UserError(`${withoutMac.hostname} has no MAC address: a tree for several hosts boots each by its MAC`)
  const files: Record<string, string> = {}
  const hosts: PxeEntry[] = []
  const seen = new Map<string, string>()
  for (const h of o.hosts) {
    if (h.mac !== undefined) {
      const id = macFileId(h.mac)
      const other = seen.get(id)
      if (other) throw new UserError(`${h.hostname} and ${other} have the same MAC ${h.mac}: one PXE entry per MAC`)
      seen.set(id, h.hostname)
    }
    const { entry, texts } = pxeEntry(h, { baseUrl, repo: o.repo, title: o.title })
    files[entry.files.grub] = texts.grub
    files[entry.files.pxelinux] = texts.pxelinux
    files[entry.files.ipxe] = texts.ipxe
    hosts.push(entry)
  }
  if (!withoutMac) {
    const data = { baseUrl, hosts }
    files[DEFAULT_FILES.grub] = renderTemplate('templates/pxe/grub-local.cfg.hbs', data)
    files[DEFAULT_FILES.pxelinux] = renderTemplate('templates/pxe/pxelinux-local.cfg.hbs', data)
    files[DEFAULT_FILES.ipxe] = renderTemplate('templates/pxe/boot-fleet.ipxe.hbs', data)
  }
  return { files, hosts }
}

/** Write the tree: repo/, images/pxeboot/ and appliance/ once, each host's kickstart (0600) and the entries. Nothing is left on failure. */
export async function buildPxeTree(o: PxeOptions): Promise<PxeResult> {
  const repo = o.repo ?? true
  for (const h of o.hosts) if (!h.ksText.trim()) throw new UserError(`the kickstart for ${h.hostname} is empty`)
  const { files, hosts } = pxeTreeFiles({ baseUrl: o.baseUrl, repo, title: o.title ?? 'Red Hat Enterprise Linux 8', hosts: o.hosts })
  await writePxeTree(o, repo, [
    // each kickstart carries its host's server key, registry passwords and
    // hashes: readable by the serving user only
    ...o.hosts.map((h, i) => ({ path: hosts[i]!.files.ks, text: h.ksText, mode: 0o600 })),
    ...Object.entries(files).map(([path, text]) => ({ path, text })),
  ])
  return {
    outDir: o.outDir,
    ...installerUrls(normalizeBaseUrl(o.baseUrl), repo),
    hosts,
    files: { ...DEFAULT_FILES },
    snippets: { grub: files[DEFAULT_FILES.grub]!, ipxe: files[DEFAULT_FILES.ipxe]!, pxelinux: files[DEFAULT_FILES.pxelinux]! },
  }
}

async function writePxeTree(o: PxeOptions, repo: boolean, texts: { path: string; text: string; mode?: number }[]): Promise<void> {
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

  await withTemp(o.outDir, async (tmp) => {
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
  })
}

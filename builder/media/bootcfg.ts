// Edits of the RHEL installer's boot menus for the unattended ISO. Pure text
// in, text out, so every rule is tested against golden files.
//
// What changes, in isolinux.cfg (BIOS) and every grub.cfg (UEFI):
// - every install entry (an entry that boots the installer: inst.stage2=…,
//   except rescue mode) gets inst.ks=hd:LABEL=<udev-escaped volid>:/ks.cfg,
//   replacing an inst.ks= already there;
// - the first plain install entry becomes the default (not media check, whose
//   entry stays in the menu) and the timeout drops to 5 seconds;
// - every hd:LABEL= and `search -l` names the ISO's volume id, so the labels
//   the installer looks for always match the medium.

/** Characters udev keeps as they are in /dev/disk/by-label names (libudev whitelist). */
const UDEV_SAFE = /[A-Za-z0-9#+.:=@_-]/

/** Escape a volume label the way udev does, as Anaconda expects in hd:LABEL=: space → \x20. */
export function udevEscape(label: string): string {
  let out = ''
  for (const ch of label) {
    const code = ch.codePointAt(0)!
    if (UDEV_SAFE.test(ch) || code > 0x7f) out += ch
    else out += '\\x' + code.toString(16).padStart(2, '0')
  }
  return out
}

export interface BootCfgEdit {
  /** The ISO's volume id (not escaped) */
  volumeId: string
  /** Path of the kickstart on the ISO, e.g. /ks.cfg */
  ksPath: string
  /** Menu timeout in seconds */
  timeoutSec?: number
  /** More installer arguments for the entries that get inst.ks, e.g. fips=1 for a FIPS install */
  extraArgs?: string[]
}

export function ksArg(e: BootCfgEdit): string {
  return `inst.ks=hd:LABEL=${udevEscape(e.volumeId)}:${e.ksPath}`
}

const DEFAULT_TIMEOUT = 5

/** Rewrite one kernel command line (the words after `append` or the kernel path). */
function patchCmdline(words: string, e: BootCfgEdit): string {
  const label = udevEscape(e.volumeId)
  let w = words.replace(/(\binst\.stage2=hd:LABEL=)[^\s:]+/g, `$1${label}`)
  if (!/\binst\.stage2=/.test(w) || /\binst\.rescue\b/.test(w)) return w
  // Drop what we add (an earlier inst.ks, our extra arguments) and add it again at the end: idempotent.
  const ours = new Set(e.extraArgs ?? [])
  w = w
    .replace(/\s+inst\.ks=\S+/g, '')
    .split(/(\s+)/)
    .filter((word, i, all) => !ours.has(word) && !(/^\s+$/.test(word) && ours.has(all[i + 1] ?? '')))
    .join('')
  return [w.replace(/\s+$/, ''), ksArg(e), ...(e.extraArgs ?? [])].join(' ')
}

function isPlainInstall(cmdline: string, e: BootCfgEdit): boolean {
  // Arguments we add ourselves (fips=1 for a FIPS install) do not make an entry special.
  const words = cmdline
    .split(/\s+/)
    .filter((w) => !(e.extraArgs ?? []).includes(w))
    .join(' ')
  return /\binst\.stage2=/.test(words) && !/\b(rd\.live\.check|inst\.rescue|nomodeset|fips=1)\b/.test(words)
}

export interface PatchResult {
  text: string
  /** Entries that got inst.ks */
  patchedEntries: number
  /** Label (isolinux) or index (grub) of the new default entry */
  defaultEntry: string | null
}

/** Patch isolinux/isolinux.cfg. */
export function patchIsolinuxCfg(text: string, e: BootCfgEdit): PatchResult {
  const lines = text.split('\n')
  const out: string[] = []
  let patched = 0
  // Find the label block of the first plain install entry.
  let current: string | null = null
  let defaultLabel: string | null = null
  for (const line of lines) {
    const l = /^\s*label\s+(\S+)/i.exec(line)
    if (l) current = l[1]!
    const a = /^\s*append\s+(.*)$/i.exec(line)
    if (a && current && !defaultLabel && isPlainInstall(a[1]!, e)) defaultLabel = current
  }
  current = null
  for (const line of lines) {
    if (/^\s*menu\s+default\s*$/i.test(line)) continue
    if (/^\s*timeout\s+\d+\s*$/i.test(line)) {
      out.push(line.replace(/\d+/, String((e.timeoutSec ?? DEFAULT_TIMEOUT) * 10)))
      continue
    }
    const l = /^(\s*)label\s+(\S+)/i.exec(line)
    if (l) {
      current = l[2]!
      out.push(line)
      if (current === defaultLabel) out.push(`${l[1]}  menu default`)
      continue
    }
    const a = /^(\s*append\s+)(.*)$/i.exec(line)
    if (a) {
      const next = patchCmdline(a[2]!, e)
      if (next.includes(ksArg(e))) patched++
      out.push(a[1] + next)
      continue
    }
    out.push(line)
  }
  return { text: out.join('\n'), patchedEntries: patched, defaultEntry: defaultLabel }
}

/** Quote a string for grub.cfg in single quotes. */
function grubQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** Patch EFI/BOOT/grub.cfg (and the copy inside efiboot.img). */
export function patchGrubCfg(text: string, e: BootCfgEdit): PatchResult {
  const lines = text.split('\n')
  // Index of the first top-level entry whose kernel line is a plain install.
  let depth = 0
  let index = -1
  let entryIndex = -1
  let defaultIndex: number | null = null
  for (const line of lines) {
    const t = line.trim()
    if (depth === 0 && /^(menuentry|submenu)\b/.test(t)) {
      index++
      entryIndex = index
    }
    if (depth === 1 && defaultIndex === null && /^linux(efi|16)?\s/.test(t) && isPlainInstall(t, e)) defaultIndex = entryIndex
    depth += (t.match(/\{/g) ?? []).length - (t.match(/\}/g) ?? []).length
  }
  const out: string[] = []
  let patched = 0
  for (const line of lines) {
    const t = line.trim()
    if (/^set\s+default=/.test(t) && defaultIndex !== null) {
      out.push(line.replace(/set\s+default=\S*/, `set default="${defaultIndex}"`))
      continue
    }
    if (/^set\s+timeout=/.test(t)) {
      out.push(line.replace(/set\s+timeout=\S*/, `set timeout=${e.timeoutSec ?? DEFAULT_TIMEOUT}`))
      continue
    }
    const s = /^(\s*search\b.*\s-l\s+)('[^']*'|"[^"]*"|\S+)(.*)$/.exec(line)
    if (s) {
      out.push(s[1] + grubQuote(e.volumeId) + s[3])
      continue
    }
    const k = /^(\s*linux(?:efi|16)?\s+\S+)(.*)$/.exec(line)
    if (k) {
      const next = patchCmdline(k[2]!, e)
      if (next.includes(ksArg(e))) patched++
      out.push(k[1] + next)
      continue
    }
    out.push(line)
  }
  return { text: out.join('\n'), patchedEntries: patched, defaultEntry: defaultIndex === null ? null : String(defaultIndex) }
}

/** Major release from a RHEL-family volume id: RHEL-8-10-0-BaseOS-x86_64 → 8, RHEL-8.6 Server.x86_64 → 8. */
export function majorFromVolumeId(volumeId: string): number | null {
  const m = /^(?:RHEL|Rocky|AlmaLinux|CentOS(?:-Stream)?|OL|EL)[-_ ]?(\d+)(?:[-._ ]|$)/i.exec(volumeId)
  return m ? Number(m[1]) : null
}

// xorriso: writes every ISO we produce (OEMDRV, remastered RHEL ISO) and reads
// base ISOs without mounting them. Argument building is pure and table-tested;
// the runners below only call run().
//
// Reproducibility: the same inputs and epoch must give the same bytes. xorriso
// stamps the current time into the volume descriptors, every file's
// mtime/atime/ctime, the El Torito catalog and the GPT/MBR ids, so all of
// those are pinned to the epoch: -volume_date uuid (creation/modification
// dates, catalog, isohybrid MBR id), all_file_dates, -iso_nowtime (nodes
// without a disk file) and gpt_disk_guid=volume_date_uuid. Owners are set to
// root because the builder's uid is not part of the inputs.

import { run } from '../exec.js'
import { ToolError } from '../errors.js'
import { hashWhileWritten, type WhileWritten } from '../hash.js'

export interface XorrisoMap {
  /** File or directory on disk */
  from: string
  /** Absolute path inside the ISO */
  to: string
}

export interface XorrisoWriteOptions {
  /** Base ISO to copy from (remaster). Omit for a new ISO. */
  indev?: string
  /** Output image; must not exist yet. */
  outFile: string
  /** Volume id. Required for a new ISO; for a remaster the base's id is kept when omitted. */
  volumeId?: string
  /** Seconds since 1970 for every timestamp in the image */
  epoch: number
  /** Files or trees to add (or replace, when the path exists in the base) */
  maps?: XorrisoMap[]
  /** Re-create the base ISO's El Torito boot images, MBR and GPT (remaster) */
  bootReplay?: boolean
  /** ISO 9660 level: 3 allows files of 4 GiB and more (split into extents). Default 3. */
  isoLevel?: 1 | 2 | 3
  /** Emit machine-readable packet output (I:/R: prefixes) for progress parsing. Default true. */
  pktOutput?: boolean
  /**
   * Seconds between xorriso's progress checks (`-pacifier interval=`). Its
   * write loop looks for the end of the write only at these checks, by
   * default once a second on the clock's second boundary, so every write
   * took up to a second longer than the work (0.4 s on average on a 1 GiB
   * ISO here). Only for an xorriso that takes it: see xorrisoPacifierInterval().
   */
  pacifierInterval?: number
}

/** The 16-digit GMT timestring -volume_date uuid wants: YYYYMMDDhhmmsscc. */
export function xorrisoTimestring(epoch: number): string {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > 32503680000) throw new RangeError(`bad epoch ${epoch}`)
  return new Date(epoch * 1000).toISOString().replace(/\D/g, '').slice(0, 14) + '00'
}

/** argv for writing an ISO (new or remastered). */
export function xorrisoWriteArgs(o: XorrisoWriteOptions): string[] {
  if (!o.indev && !o.volumeId) throw new Error('xorrisoWriteArgs: a new ISO needs a volumeId')
  const a: string[] = []
  if (o.pktOutput !== false) a.push('-pkt_output', 'on')
  if (o.pacifierInterval !== undefined) a.push('-pacifier', `interval=${o.pacifierInterval}`)
  // Stop at the first real error instead of writing a damaged image.
  a.push('-abort_on', 'FAILURE', '-return_with', 'SORRY', '32')
  if (o.indev) a.push('-indev', o.indev)
  a.push('-outdev', o.outFile)
  if (o.bootReplay) a.push('-boot_image', 'any', 'replay')
  if (o.volumeId) a.push('-volid', o.volumeId)
  a.push('-joliet', 'on', '-rockridge', 'on')
  a.push('-compliance', `iso_9660_level=${o.isoLevel ?? 3}`)
  for (const m of o.maps ?? []) a.push('-map', m.from, m.to)
  a.push('-chown_r', '0', '/', '--', '-chgrp_r', '0', '/', '--')
  const ts = xorrisoTimestring(o.epoch)
  a.push(
    '-volume_date',
    'uuid',
    ts,
    '-volume_date',
    'all_file_dates',
    `=${o.epoch}`,
    '-iso_nowtime',
    `=${o.epoch}`,
    '-boot_image',
    'any',
    'gpt_disk_guid=volume_date_uuid',
  )
  a.push('-commit')
  return a
}

/** Environment for every xorriso call that writes: SOURCE_DATE_EPOCH pins what the options above may miss. */
export function xorrisoEnv(epoch: number): Record<string, string> {
  return { SOURCE_DATE_EPOCH: String(epoch) }
}

export interface XorrisoProgress {
  /** 2048-byte sectors written so far */
  sectors: number
  /** Percent of the image written, 0..100 */
  percent: number
}

/**
 * One progress line of xorriso's writer, e.g.
 * `I:1: xorriso : UPDATE : Writing:     109936s   71.5%   fifo  99%  buf  50%  224.9xD`.
 */
export function parseXorrisoProgress(line: string): XorrisoProgress | null {
  const m = /UPDATE\s*:\s*Writing:\s+(\d+)s\s+([\d.]+)%/.exec(line)
  if (!m) return null
  return { sectors: Number(m[1]), percent: Number(m[2]) }
}

/** The final size line: `ISO image produced: 153630 sectors`. */
export function parseImageSectors(text: string): number | null {
  const m = /ISO image produced:\s+(\d+) sectors/.exec(text)
  return m ? Number(m[1]) : null
}

/** Meaning of xorriso's exit codes, for error messages. */
export function xorrisoExitMeaning(code: number): string | undefined {
  if (code === 32) return 'xorriso reported an error (SORRY or worse); nothing usable was written'
  if (code === 5) return 'xorriso aborted on a FAILURE event'
  return undefined
}

export interface XorrisoRunOptions {
  signal?: AbortSignal
  /**
   * Hash the image as it is written, starting from this guess of its first
   * ISO_HEAD_BYTES (the head the previous write of the same image got): see
   * hash.ts hashWhileWritten. Without it the image is not hashed here.
   */
  headGuess?: Buffer
  onProgress?: (p: XorrisoProgress) => void
  /** Whole output of the run, line by line (for logs) */
  onLine?: (line: string) => void
}

/** How often the writer checks its progress, when this xorriso lets us choose. */
export const PACIFIER_INTERVAL = 0.1
let pacifierProbe: Promise<number | undefined> | undefined

/**
 * PACIFIER_INTERVAL if this xorriso takes `-pacifier interval=` (1.5.4 does;
 * older ones answer SORRY to an unknown pacifier code), else undefined.
 * Asked once per process.
 */
export function xorrisoPacifierInterval(): Promise<number | undefined> {
  pacifierProbe ??= run(
    'xorriso',
    ['-abort_on', 'FAILURE', '-return_with', 'SORRY', '32', '-pacifier', `interval=${PACIFIER_INTERVAL}`, '-version'],
    {
      nothrow: true,
      why: 'to write ISO images',
    },
  ).then(
    (r) => (r.code === 0 ? PACIFIER_INTERVAL : undefined),
    () => undefined,
  )
  return pacifierProbe
}

/** xorriso (libisoburn) writes the first 64 KiB of an image file last: Libisoburn_target_head_sizE. */
export const ISO_HEAD_BYTES = 64 * 1024

/**
 * Write an ISO. Throws ToolError with the pasteable command on failure.
 * With ro.headGuess the image is also hashed as xorriso writes it (on the
 * other core): `whileWritten` says whether that worked, and hashPinned()
 * then knows the hash, so no one reads the image back for it.
 */
export async function xorrisoWrite(
  o: XorrisoWriteOptions,
  ro: XorrisoRunOptions = {},
): Promise<{ sectors: number | null; output: string; whileWritten?: WhileWritten }> {
  let buf = ''
  let all = ''
  const onText = (chunk: string): void => {
    all += chunk
    buf += chunk
    let i: number
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      ro.onLine?.(line)
      const p = parseXorrisoProgress(line)
      if (p) ro.onProgress?.(p)
    }
  }
  const pacifierInterval = o.pacifierInterval ?? (await xorrisoPacifierInterval())
  const writing = run('xorriso', xorrisoWriteArgs({ ...o, ...(pacifierInterval !== undefined ? { pacifierInterval } : {}) }), {
    env: xorrisoEnv(o.epoch),
    signal: ro.signal,
    onStdout: onText,
    onStderr: onText,
    exitMeaning: xorrisoExitMeaning,
    why: 'to write ISO images',
  })
  const hashing = ro.headGuess ? hashWhileWritten(o.outFile, writing, ro.headGuess, ro.signal) : undefined
  hashing?.catch(() => {}) // the writer's error is the one to report
  const r = await writing
  const whileWritten = await hashing
  return { sectors: parseImageSectors(r.stdout + r.stderr), output: all, ...(whileWritten ? { whileWritten } : {}) }
}

// ---- reading a base ISO ----------------------------------------------------

/** argv that prints the PVD, the boot setup as commands, and every file with its size. */
export function xorrisoInspectArgs(iso: string): string[] {
  return ['-abort_on', 'FAILURE', '-indev', iso, '-pvd_info', '-report_el_torito', 'cmd', '-find', '/', '-type', 'f', '-exec', 'lsdl', '--']
}

export interface IsoFile {
  path: string
  size: number
}

export interface IsoInfo {
  volumeId: string
  /** `-boot_image …` commands xorriso would replay */
  bootCommands: string[]
  files: IsoFile[]
}

/** Unquote one xorriso-quoted word: 'a'"'"'b' → a'b. */
function unquoteXorriso(s: string): string {
  let out = ''
  const re = /'([^']*)'|"([^"]*)"|([^'"]+)/g
  let m: RegExpExecArray | null
  while ((m = re.exec(s))) out += m[1] ?? m[2] ?? m[3]
  return out
}

/** Parse the output of xorrisoInspectArgs (stdout and stderr together). */
export function parseIsoInfo(text: string): IsoInfo {
  let volumeId = ''
  const bootCommands: string[] = []
  const files: IsoFile[] = []
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '')
    const v = /^Volume Id\s*:\s?(.*)$/.exec(line)
    if (v) volumeId = v[1]!.trimEnd()
    if (line.startsWith('-boot_image ')) bootCommands.push(line)
    // -rw-r--r--    1 0        0          1419 May 22  2024 '/EFI/BOOT/grub.cfg'
    const f = /^-\S{9}\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\d+\s+\S+\s+('.*')$/.exec(line)
    if (f) files.push({ path: unquoteXorriso(f[2]!), size: Number(f[1]) })
  }
  return { volumeId, bootCommands, files }
}

/** Read volume id, boot setup and file list of an ISO without mounting it. */
export async function xorrisoInspect(iso: string, signal?: AbortSignal): Promise<IsoInfo> {
  const r = await run('xorriso', xorrisoInspectArgs(iso), { signal, exitMeaning: xorrisoExitMeaning, why: 'to read the base ISO' })
  return parseIsoInfo(r.stdout + '\n' + r.stderr)
}

/** argv to copy files out of an ISO: pairs of [path in ISO, path on disk]. */
export function xorrisoExtractArgs(iso: string, pairs: ReadonlyArray<readonly [string, string]>): string[] {
  const a = ['-abort_on', 'FAILURE', '-osirrox', 'on', '-indev', iso]
  for (const [from, to] of pairs) a.push('-extract', from, to)
  return a
}

export async function xorrisoExtract(iso: string, pairs: ReadonlyArray<readonly [string, string]>, signal?: AbortSignal): Promise<void> {
  await run('xorriso', xorrisoExtractArgs(iso, pairs), { signal, exitMeaning: xorrisoExitMeaning, why: 'to read files from the base ISO' })
}

export { ToolError }

// Remaster the user's RHEL 8 DVD or boot ISO into one that installs
// unattended: ks.cfg at the root, the payload under /appliance/, inst.ks= in
// every boot menu (isolinux, EFI/BOOT/grub.cfg and the grub.cfg inside
// images/efiboot.img), the unattended entry as default with a short timeout.
//
// Rootless and without loop mounts: xorriso reads the base ISO, mtools edits
// the FAT image, and `-boot_image any replay` re-creates the base's El Torito
// entries, isohybrid MBR and GPT so the output boots from CD and USB stick in
// BIOS and UEFI mode like the original.

import { createHash } from 'node:crypto'
import { chmod, open, readFile, stat, utimes, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { withTemp, writeFileAtomic } from '../atomic.js'
import { UserError } from '../errors.js'
import { fileIdentity, sha256File, sha256FileCached } from '../hash.js'
import { needTool, type ToolNeed } from '../tool-needs.js'
import { mcopy, mlist, mtype } from '../tools/mtools.js'
import { ISO_HEAD_BYTES, xorrisoExtract, xorrisoInspect, xorrisoWrite, type IsoInfo, type XorrisoMap } from '../tools/xorriso.js'
import { majorFromVolumeId, patchGrubCfg, patchIsolinuxCfg, type BootCfgEdit } from './bootcfg.js'
import {
  checkFreeSpace,
  checkOutFile,
  checkPayloadDir,
  progressMeter,
  throwIfAborted,
  treeSize,
  withScratchDir,
  writeKickstart,
  type OnProgress,
} from './common.js'
import { PAYLOAD_ISO_DIR } from './oemdrv.js'

export const KS_ISO_PATH = '/ks.cfg'
export const SUPPORTED_MAJOR = 8

/** The programs this writer runs: the build checks them before any work, `doctor` lists them (tool-needs.ts). */
export const ISO_TOOLS: readonly ToolNeed[] = [
  needTool('xorriso', 'to read and remaster the RHEL ISO'),
  needTool('mdir', "to patch the ISO's EFI boot image"),
  needTool('mtype', "to patch the ISO's EFI boot image"),
  needTool('mcopy', "to patch the ISO's EFI boot image"),
]

/** The files a RHEL 8 x86_64 installer ISO boots from. */
export const RHEL_BOOT_FILES = {
  isolinux: '/isolinux/isolinux.cfg',
  grub: '/EFI/BOOT/grub.cfg',
  efiboot: '/images/efiboot.img',
} as const
const EFIBOOT_GRUB = '/EFI/BOOT/grub.cfg'

export interface RemasterOptions {
  baseIso: string
  outFile: string
  ksText: string
  /** Directory whose contents go under /appliance/ */
  payloadDir?: string
  /** SOURCE_DATE_EPOCH: every timestamp in the image */
  epoch: number
  /** Accept a base whose volume id does not say RHEL 8, and replace an existing outFile */
  force?: boolean
  /** Installer arguments added with inst.ks, e.g. fips=1 (RHEL 8 needs it on the installer's own kernel line for FIPS) */
  kernelArgs?: string[]
  /**
   * Put the output's sha256 in the result (default true), reading it back if
   * it could not be hashed while written; false: only if it could (the build
   * hashes it for the manifest either way, hashPinned taking the hash made
   * while writing).
   */
  hashOutput?: boolean
  /**
   * The image cache: the base ISO's sha256 is remembered here, so a rebuild
   * from the same file does not read it again, and so is the output's head,
   * so that a rebuild hashes the output while xorriso writes it.
   */
  hashCacheDir?: string
  signal?: AbortSignal
  onProgress?: OnProgress
}

export interface RemasterResult {
  /** Volume id of the output (the base's, kept) */
  volumeId: string
  baseSha256: string
  /** The base's sha256 came from the cache (this version of the file was hashed before) */
  baseSha256Cached: boolean
  /** sha256 of the output, unless hashOutput was false */
  outSha256?: string
  /** Things the user should know, e.g. a menu without a plain install entry */
  warnings: string[]
}

/** True if the file has an ISO 9660 primary volume descriptor ("CD001" at sector 16). */
export async function looksLikeIso(path: string): Promise<boolean> {
  const fh = await open(path, 'r')
  try {
    const b = Buffer.alloc(6)
    const { bytesRead } = await fh.read(b, 0, 6, 16 * 2048)
    return bytesRead === 6 && b[0] === 1 && b.toString('latin1', 1, 6) === 'CD001'
  } finally {
    await fh.close()
  }
}

export interface BaseIsoCheck {
  info: IsoInfo
  major: number | null
  problems: string[]
}

/** Every reason this base ISO cannot be remastered (empty if it can). Pure. */
export function checkBaseIso(info: IsoInfo, force: boolean): BaseIsoCheck {
  const problems: string[] = []
  const have = new Set(info.files.map((f) => f.path))
  const missing = Object.values(RHEL_BOOT_FILES).filter((p) => !have.has(p))
  if (missing.length) problems.push(`it does not have the RHEL installer layout: missing ${missing.join(', ')}`)
  if (!info.volumeId) problems.push('it has no volume id')
  const major = majorFromVolumeId(info.volumeId)
  if (!force) {
    if (major === null) problems.push(`cannot tell the RHEL release from its volume id '${info.volumeId}' (use force to try anyway)`)
    else if (major !== SUPPORTED_MAJOR)
      problems.push(
        `its volume id '${info.volumeId}' says RHEL ${major}; only RHEL ${SUPPORTED_MAJOR} is supported (use force to try anyway)`,
      )
  }
  return { info, major, problems }
}

/** Remaster baseIso into outFile. Same inputs and epoch give the same bytes. */
export async function remasterIso(o: RemasterOptions): Promise<RemasterResult> {
  if (!Number.isInteger(o.epoch) || o.epoch < 0) throw new UserError(`epoch must be a non-negative integer, got ${o.epoch}`)
  const base = await stat(o.baseIso).catch(() => null)
  if (!base) throw new UserError(`base ISO ${o.baseIso} does not exist`)
  if (!base.isFile()) throw new UserError(`base ISO ${o.baseIso} is not a file`)
  if (!(await looksLikeIso(o.baseIso))) throw new UserError(`${o.baseIso} is not an ISO 9660 image (no CD001 volume descriptor)`)
  await checkOutFile(o.outFile, o.force)
  await checkPayloadDir(o.payloadDir)
  throwIfAborted(o.signal)

  const info = await xorrisoInspect(o.baseIso, o.signal)
  const check = checkBaseIso(info, o.force ?? false)
  if (check.problems.length) {
    throw new UserError(`cannot remaster ${o.baseIso}:\n  - ${check.problems.join('\n  - ')}`)
  }
  const payloadBytes = o.payloadDir ? await treeSize(o.payloadDir) : 0
  await checkFreeSpace(dirname(o.outFile), base.size + payloadBytes + o.ksText.length, o.outFile)

  const edit: BootCfgEdit = { volumeId: info.volumeId, ksPath: KS_ISO_PATH, extraArgs: o.kernelArgs ?? [] }
  const warnings: string[] = []
  // The base's checksum is read while xorriso writes (the file is in the page cache either way), once per version of the file.
  const baseHash = sha256FileCached(o.baseIso, o.hashCacheDir, o.signal)
  baseHash.catch(() => {}) // awaited below; avoid an unhandled rejection if we fail first

  const outSha256 = await withScratchDir(async (scratch) => {
    await xorrisoExtract(
      o.baseIso,
      [
        [RHEL_BOOT_FILES.isolinux, join(scratch, 'isolinux.cfg')],
        [RHEL_BOOT_FILES.grub, join(scratch, 'grub.cfg')],
        [RHEL_BOOT_FILES.efiboot, join(scratch, 'efiboot.img')],
      ],
      o.signal,
    )
    // Extracted files keep the ISO's read-only modes.
    for (const f of ['isolinux.cfg', 'grub.cfg', 'efiboot.img']) await chmod(join(scratch, f), 0o644)

    const iso = patchIsolinuxCfg(await readFile(join(scratch, 'isolinux.cfg'), 'utf8'), edit)
    if (!iso.defaultEntry) warnings.push(`${RHEL_BOOT_FILES.isolinux}: no plain install entry found; the default entry was left as it was`)
    if (!iso.patchedEntries)
      throw new UserError(`${o.baseIso}: ${RHEL_BOOT_FILES.isolinux} has no installer entry (inst.stage2=) to add the kickstart to`)
    await stamp(join(scratch, 'isolinux.cfg'), iso.text, o.epoch)

    const grub = patchGrubCfg(await readFile(join(scratch, 'grub.cfg'), 'utf8'), edit)
    if (!grub.patchedEntries)
      throw new UserError(`${o.baseIso}: ${RHEL_BOOT_FILES.grub} has no installer entry (inst.stage2=) to add the kickstart to`)
    await stamp(join(scratch, 'grub.cfg'), grub.text, o.epoch)

    // The ESP copy: what UEFI firmware reads when it boots the ESP partition (USB) instead of the ISO 9660 tree.
    const img = join(scratch, 'efiboot.img')
    const espFiles = await mlist(img, o.signal)
    if (espFiles === null) throw new UserError(`${o.baseIso}: ${RHEL_BOOT_FILES.efiboot} is not a FAT image`)
    if (espFiles.some((f) => f.toLowerCase() === EFIBOOT_GRUB.toLowerCase())) {
      const espGrub = patchGrubCfg(await mtype(img, EFIBOOT_GRUB, o.signal), edit)
      await stamp(join(scratch, 'efiboot-grub.cfg'), espGrub.text, o.epoch)
      await mcopy(
        { image: img, from: join(scratch, 'efiboot-grub.cfg'), to: `::${EFIBOOT_GRUB}`, overwrite: true, preserveTime: true },
        o.signal,
      )
    } else {
      warnings.push(`${RHEL_BOOT_FILES.efiboot} has no ${EFIBOOT_GRUB}; only the ISO 9660 copy was patched`)
    }
    await utimes(img, o.epoch, o.epoch)

    const ks = await writeKickstart(scratch, o.ksText, o.epoch)
    const maps: XorrisoMap[] = [
      { from: join(scratch, 'isolinux.cfg'), to: RHEL_BOOT_FILES.isolinux },
      { from: join(scratch, 'grub.cfg'), to: RHEL_BOOT_FILES.grub },
      { from: img, to: RHEL_BOOT_FILES.efiboot },
      { from: ks, to: KS_ISO_PATH },
    ]
    if (o.payloadDir) maps.push({ from: o.payloadDir, to: PAYLOAD_ISO_DIR })

    const meter = progressMeter(o.onProgress)
    const headFile = await headGuessFile(o.hashCacheDir, o.baseIso, o.outFile)
    const headGuess = headFile ? await readHeadGuess(headFile) : undefined
    return withTemp(o.outFile, async (tmp) => {
      const r = await xorrisoWrite(
        { indev: o.baseIso, outFile: tmp, epoch: o.epoch, maps, bootReplay: true, isoLevel: 3 },
        { signal: o.signal, onProgress: meter, ...(headGuess ? { headGuess } : {}) },
      )
      const size = (await stat(tmp)).size
      meter({ sectors: r.sectors ?? size / 2048, percent: 100 })
      if (headFile) await rememberHead(headFile, r.whileWritten?.head ?? (await readHead(tmp)), headGuess)
      return r.whileWritten?.hash?.sha256 ?? (o.hashOutput === false ? undefined : sha256File(tmp, o.signal))
    })
  })
  const { sha256: baseSha256, cached: baseSha256Cached } = await baseHash
  return { volumeId: info.volumeId, baseSha256, baseSha256Cached, ...(outSha256 ? { outSha256 } : {}), warnings }
}

// ---- the output's head, remembered for the next build ------------------------
//
// xorriso writes an image's first ISO_HEAD_BYTES last, and its sha256 cannot
// be computed while it is written without them (hash.ts hashWhileWritten).
// A rebuild from the same base with the same config gets the same head, so
// the head of the last output from this version of the base is kept in the
// image cache and guessed. A wrong guess (another config, another xorriso)
// only means the output is read back, as before; it is never trusted.

/** Where the head of the last output made from this base version (and output name) is kept; undefined without a cache. */
async function headGuessFile(cacheDir: string | undefined, baseIso: string, outFile: string): Promise<string | undefined> {
  const id = cacheDir ? await fileIdentity(baseIso) : null
  return id
    ? join(
        cacheDir!,
        'iso-heads',
        createHash('sha256')
          .update(`v1\0${id}\0${basename(outFile)}`)
          .digest('hex'),
      )
    : undefined
}

async function readHeadGuess(file: string): Promise<Buffer | undefined> {
  const b = await readFile(file).catch(() => undefined)
  return b?.length === ISO_HEAD_BYTES ? b : undefined
}

async function readHead(iso: string): Promise<Buffer> {
  const fh = await open(iso, 'r')
  try {
    const b = Buffer.alloc(ISO_HEAD_BYTES)
    const { bytesRead } = await fh.read(b, 0, b.length, 0)
    return b.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/** Keep the head for the next build (a cache that cannot be written only costs that build time). */
async function rememberHead(file: string, head: Buffer, guessed: Buffer | undefined): Promise<void> {
  if (head.length !== ISO_HEAD_BYTES || (guessed && head.equals(guessed))) return
  await writeFileAtomic(file, head, { mkdir: true }).catch(() => {})
}

async function stamp(path: string, text: string, epoch: number): Promise<void> {
  await writeFile(path, text, { mode: 0o644 })
  await utimes(path, epoch, epoch)
}

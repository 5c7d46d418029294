// qemu-system-x86_64 for boot checks: software emulation (-accel tcg, KVM is
// not available everywhere we run), no display, no network, the first serial
// port into a file. BIOS is SeaBIOS; UEFI is OVMF with a writable copy of
// its variable store, as pflash.

import { copyFile } from 'node:fs/promises'
import { run, type RunResult } from '../exec.js'

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd'
export const OVMF_VARS_TEMPLATE = '/usr/share/OVMF/OVMF_VARS_4M.fd'

export type Firmware = 'bios' | 'uefi'

export interface QemuDrive {
  file: string
  /** cdrom: IDE CD-ROM; usb: USB stick on an xHCI controller; disk: virtio disk */
  kind: 'cdrom' | 'usb' | 'disk'
  readonly?: boolean
  format?: 'raw' | 'qcow2'
}

export interface QemuOptions {
  firmware: Firmware
  /** Writable copy of the OVMF variable store (uefi only); see prepareOvmfVars */
  ovmfVars?: string
  ovmfCode?: string
  /** In boot order: the first drive is the boot device */
  drives: QemuDrive[]
  /** File that receives the first serial port */
  serialLog: string
  memoryMb?: number
  cpus?: number
}

/** QEMU's -drive option values separate with commas; a comma inside a value is doubled. */
export function qemuEscape(value: string): string {
  return value.replace(/,/g, ',,')
}

export function qemuArgs(o: QemuOptions): string[] {
  const a = ['-accel', 'tcg', '-m', String(o.memoryMb ?? 512), '-smp', String(o.cpus ?? 1)]
  a.push('-nographic', '-monitor', 'none', '-serial', `file:${o.serialLog}`, '-nic', 'none', '-no-reboot')
  if (o.firmware === 'uefi') {
    if (!o.ovmfVars) throw new Error('qemuArgs: uefi needs ovmfVars (a writable copy of OVMF_VARS)')
    a.push(
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${qemuEscape(o.ovmfCode ?? OVMF_CODE)}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${qemuEscape(o.ovmfVars)}`,
    )
  }
  let ide = 0
  let usb = 0
  let disk = 0
  o.drives.forEach((d, i) => {
    const ro = d.readonly ? ',readonly=on' : ''
    const fmt = `format=${d.format ?? 'raw'}`
    const file = `file=${qemuEscape(d.file)}`
    const boot = `bootindex=${i}`
    if (d.kind === 'cdrom') {
      const id = `cd${ide}`
      a.push(
        '-drive',
        `if=none,id=${id},media=cdrom,${fmt},${file}${ro}`,
        '-device',
        `ide-cd,drive=${id},bus=ide.${Math.floor(ide / 2)},unit=${ide % 2},${boot}`,
      )
      ide++
    } else if (d.kind === 'usb') {
      if (usb === 0) a.push('-device', 'qemu-xhci,id=xhci')
      const id = `usb${usb++}`
      a.push('-drive', `if=none,id=${id},${fmt},${file}${ro}`, '-device', `usb-storage,bus=xhci.0,drive=${id},${boot}`)
    } else {
      const id = `disk${disk++}`
      a.push('-drive', `if=none,id=${id},${fmt},${file}${ro}`, '-device', `virtio-blk-pci,drive=${id},${boot}`)
    }
  })
  return a
}

/** Copy OVMF's variable store template to dest (each VM needs its own writable copy). */
export async function prepareOvmfVars(dest: string): Promise<void> {
  await copyFile(OVMF_VARS_TEMPLATE, dest)
}

/** Run QEMU until the guest powers off or timeoutMs passes. Never throws for a non-zero exit. */
export async function runQemu(o: QemuOptions, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<RunResult> {
  return run('qemu-system-x86_64', qemuArgs(o), {
    timeoutMs: opts.timeoutMs,
    signal: opts.signal,
    nothrow: true,
    why: 'to boot-test media',
  })
}

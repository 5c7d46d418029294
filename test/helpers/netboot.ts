// Network boots of the trees `build --pxe` writes, under QEMU: build a tree
// through the CLI and serve it the way the build's summary says, then boot a
// machine whose first boot device is a virtio NIC (iPXE, QEMU's default option
// ROM) on slirp networking, whose DHCP names the boot file (an URL for iPXE,
// or a file under slirp's own TFTP root), and read what the fixture initrd
// reports on the serial port.
import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../../builder/exec.js'
import { prepareOvmfVars, qemuArgs, qemuEscape, type Firmware } from '../../builder/tools/qemu.js'
import { CLI, runCli } from './cli.js'

/**
 * QEMU's iPXE for virtio-net (ipxe-qemu): legacy BIOS and EFI images in one
 * ROM. QEMU loads it by default; naming it with romfile= would not do: QEMU
 * patches the PCI ids of its default ROM only, and SeaBIOS skips a ROM whose
 * device id (0x1041, modern virtio) is not the NIC's (0x1000, transitional).
 */
export const IPXE_ROM = '/usr/lib/ipxe/qemu/efi-virtio.rom'
export const BOOT_TIMEOUT_MS = 240_000

export interface Boot {
  log: string
  ms: number
  code: number | null
}

export interface NetBoot {
  name: string
  firmware: Firmware
  /** What DHCP hands to iPXE: an URL, or a file under tftp */
  bootfile: string
  mac: string
  /** Root of slirp's TFTP server */
  tftp?: string
  /** Raw disk after the NIC in the boot order */
  disk?: string
  /** Guest memory (default 256 MiB) */
  memoryMb?: number
}

/** QEMU with one virtio NIC first in the boot order (iPXE, QEMU's default ROM) on slirp, whose DHCP names bootfile. Files go to dir. */
export async function netboot(b: NetBoot, o: { dir: string; signal: AbortSignal }): Promise<Boot> {
  const serialLog = join(o.dir, `${b.name}.serial.log`)
  const ovmfVars = join(o.dir, `${b.name}.vars.fd`)
  if (b.firmware === 'uefi') await prepareOvmfVars(ovmfVars)
  const a = qemuArgs({ firmware: b.firmware, ovmfVars, drives: [], serialLog, memoryMb: b.memoryMb ?? 256 })
  const nic = a.indexOf('-nic')
  if (nic < 0 || a[nic + 1] !== 'none') throw new Error(`qemuArgs changed: no '-nic none' in ${a.join(' ')}`)
  const tftp = b.tftp ? `,tftp=${qemuEscape(b.tftp)}` : ''
  a.splice(
    nic,
    2,
    '-netdev',
    `user,id=n0${tftp},bootfile=${qemuEscape(b.bootfile)}`,
    '-device',
    `virtio-net-pci,netdev=n0,mac=${b.mac},bootindex=0`,
    '-device',
    'isa-debug-exit,iobase=0xf4,iosize=0x04',
  )
  if (b.disk)
    a.push('-drive', `if=none,id=disk0,format=raw,file=${qemuEscape(b.disk)}`, '-device', 'virtio-blk-pci,drive=disk0,bootindex=1')
  const start = Date.now()
  const r = await run('qemu-system-x86_64', a, {
    timeoutMs: BOOT_TIMEOUT_MS,
    signal: o.signal,
    nothrow: true,
    why: 'to network-boot the PXE tree',
  })
  const log = (await readFile(serialLog, 'latin1').catch(() => '')).replace(/\x1b\[[0-9;?=]*[A-Za-z]|\x1bc/g, '')
  return { log, ms: Date.now() - start, code: r.code }
}

/** The report line that carries tag; firmware output may precede it on the same line. */
export function line(log: string, tag: string): string | undefined {
  const l = log.split(/\r?\n/).find((x) => x.includes(tag))
  return l?.slice(l.indexOf(tag)).trimEnd()
}

/** Build through the CLI, then run the `serve` command its summary prints (on 127.0.0.1) until the test ends. */
export async function buildAndServe(t: Test, args: string[], env: Record<string, string>): Promise<{ tree: string; url: string }> {
  const r = await runCli(args, { env })
  if (r.code !== 0) throw new Error(`build failed (${r.code}): ${r.stderr}`)
  // e.g. "serve the tree with: mirror-appliance serve DIR --bind 10.0.2.2 --port 8080": the guest reaches
  // the host's 127.0.0.1 as 10.0.2.2 through QEMU's user network, so the test serves on 127.0.0.1.
  const hint = /serve (?:the tree|it) with: mirror-appliance serve (\S+)(?: --bind (\S+))? --port (\d+)/.exec(r.stdout + r.stderr)
  if (!hint) throw new Error(`the build did not say how to serve the tree:\n${r.stdout}${r.stderr}`)
  const [, tree, , port] = hint
  const child = spawn(process.execPath, [CLI, 'serve', tree!, '--port', port!, '--bind', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  for (let i = 0; i < 200 && !out.includes('serving') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50))
  if (!out.includes('serving')) throw new Error(`serve did not start: ${out}`)
  return { tree: tree!, url: `http://10.0.2.2:${port}` }
}

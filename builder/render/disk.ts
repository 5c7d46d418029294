// The disk layout the kickstart asks Anaconda for, in MiB, and the check that
// it fits the smallest disk the user says the appliance will get. The
// overheads are what Anaconda and LVM take besides our volumes, rounded up so
// that a layout we accept never fails to install on a disk of minSizeGiB.

import type { Config, Disk } from '../config/types.js'

/** GPT headers at both ends plus 1 MiB alignment before the first partition. */
export const PARTITION_TABLE_MIB = 2
/** /boot (xfs) */
export const BOOT_MIB = 1024
/** EFI system partition; reqpart on UEFI makes one of up to 600 MiB on RHEL 8 */
export const EFI_MIB = 600
/** BIOS boot partition for GRUB on a GPT disk */
export const BIOSBOOT_MIB = 1
/** LVM physical volume metadata area */
export const PV_METADATA_MIB = 4
/** LVM extent size: every logical volume is rounded up to it */
export const EXTENT_MIB = 4
/** Least room left for the registry data volume when it takes "the rest" */
export const MIN_REST_MIB = 1024

export const VOLUME_GROUP = 'vg_appliance'

export interface LogicalVolume {
  /** Mount point, or "swap" */
  mount: string
  /** LV name inside the volume group */
  name: string
  fstype: 'xfs' | 'swap'
  /** Size in MiB; with grow, the least size */
  sizeMiB: number
  grow: boolean
}

export interface DiskLayout {
  device: string
  firmware: Disk['firmware']
  /** Partitions before the LVM physical volume (what reqpart or part lines make) */
  bootPartitions: { mount: string; fstype: string; sizeMiB: number }[]
  volumeGroup: string
  volumes: LogicalVolume[]
  /** Everything the layout needs at least, overheads included */
  requiredMiB: number
  /** The disk size the user stated, in MiB */
  diskMiB: number
}

const roundUp = (mib: number, to: number) => Math.ceil(mib / to) * to

/** The layout for this config. Pure; checkDiskLayout says whether it fits. */
export function computeDiskLayout(config: Config): DiskLayout {
  const { disk } = config.host
  const { rootGiB, swapGiB, varGiB, registryDataGiB } = disk.layout
  const bootPartitions: DiskLayout['bootPartitions'] = []
  // auto: reqpart makes whichever the booted firmware needs; budget the larger.
  if (disk.firmware === 'bios') bootPartitions.push({ mount: 'biosboot', fstype: 'biosboot', sizeMiB: BIOSBOOT_MIB })
  else bootPartitions.push({ mount: '/boot/efi', fstype: 'efi', sizeMiB: EFI_MIB })
  bootPartitions.push({ mount: '/boot', fstype: 'xfs', sizeMiB: BOOT_MIB })

  const volumes: LogicalVolume[] = [{ mount: '/', name: 'root', fstype: 'xfs', sizeMiB: gib(rootGiB), grow: false }]
  if (swapGiB > 0) volumes.push({ mount: 'swap', name: 'swap', fstype: 'swap', sizeMiB: gib(swapGiB), grow: false })
  if (varGiB > 0) volumes.push({ mount: '/var', name: 'var', fstype: 'xfs', sizeMiB: gib(varGiB), grow: false })
  const rest = registryDataGiB === 'rest'
  volumes.push({
    mount: config.registry.dataDir,
    name: 'registry',
    fstype: 'xfs',
    sizeMiB: rest ? MIN_REST_MIB : gib(registryDataGiB),
    grow: rest,
  })

  const requiredMiB =
    PARTITION_TABLE_MIB +
    bootPartitions.reduce((s, p) => s + p.sizeMiB, 0) +
    PV_METADATA_MIB +
    volumes.reduce((s, v) => s + roundUp(v.sizeMiB, EXTENT_MIB), 0)
  return {
    device: disk.device,
    firmware: disk.firmware,
    bootPartitions,
    volumeGroup: VOLUME_GROUP,
    volumes,
    requiredMiB,
    diskMiB: gib(disk.minSizeGiB),
  }
}

const gib = (n: number) => Math.round(n * 1024)

/** Mount points the data volume may not take: they are ours already or the system's. */
const RESERVED_MOUNTS = ['/', '/boot', '/boot/efi', '/var', '/usr', '/etc', '/tmp', '/home', '/root', '/proc', '/sys', '/dev', '/run']

/**
 * Problems with the disk part of a config, each with the path of the field to
 * blame (for line:col errors): volumes that do not fit minSizeGiB, a data
 * directory that cannot be a mount point, a device name kickstart cannot take.
 */
export function checkDiskLayout(config: Config): { path: (string | number)[]; message: string }[] {
  const errors: { path: (string | number)[]; message: string }[] = []
  const { disk } = config.host
  const dataDir = config.registry.dataDir

  if (!/^(\/dev\/disk\/by-[a-z-]+\/)?[A-Za-z0-9_.:@+-]+$/.test(disk.device) || disk.device.startsWith('-'))
    errors.push({
      path: ['host', 'disk', 'device'],
      message: `"${disk.device}" is not a disk name kickstart can take: use a kernel name like vda or sda, or /dev/disk/by-id/…, /dev/disk/by-path/…`,
    })

  const normalized = dataDir.replace(/\/+$/, '') || '/'
  if (!dataDir.startsWith('/') || /\/\.\.?(\/|$)|\/\//.test(dataDir) || !/^[A-Za-z0-9_./@+-]+$/.test(dataDir))
    errors.push({
      path: ['registry', 'dataDir'],
      message: `"${dataDir}" must be an absolute, normalized path of letters, digits and . _ - + @ (it becomes a mount point)`,
    })
  else if (RESERVED_MOUNTS.includes(normalized) || normalized.startsWith('/boot/'))
    errors.push({
      path: ['registry', 'dataDir'],
      message: `"${dataDir}" cannot hold the registry data volume: it is a system directory; use e.g. /var/lib/mirror-registry`,
    })

  for (const [key, v] of Object.entries(disk.layout))
    if (v !== 'rest' && !(typeof v === 'number' && Number.isFinite(v) && v >= 0))
      errors.push({ path: ['host', 'disk', 'layout', key], message: `must be a size in GiB or "rest", not ${String(v)}` })
  if (disk.layout.rootGiB < 4)
    errors.push({
      path: ['host', 'disk', 'layout', 'rootGiB'],
      message: `the root volume needs at least 4 GiB for RHEL 8 with podman, not ${disk.layout.rootGiB}`,
    })
  if (disk.layout.registryDataGiB !== 'rest' && disk.layout.registryDataGiB < 1)
    errors.push({ path: ['host', 'disk', 'layout', 'registryDataGiB'], message: 'the registry data volume needs at least 1 GiB' })
  if (errors.length) return errors

  const layout = computeDiskLayout(config)
  if (layout.requiredMiB > layout.diskMiB) {
    const parts = layout.volumes.map((v) => `${v.mount} ${v.grow ? `≥${v.sizeMiB}` : v.sizeMiB} MiB`).join(', ')
    const over = layout.requiredMiB - layout.diskMiB
    errors.push({
      path: ['host', 'disk', 'layout', disk.layout.registryDataGiB === 'rest' ? 'rootGiB' : 'registryDataGiB'],
      message:
        `the volumes need ${layout.requiredMiB} MiB (${parts}, plus ${layout.requiredMiB - layout.volumes.reduce((s, v) => s + v.sizeMiB, 0)} MiB ` +
        `for partition table, boot partitions and LVM) but host.disk.minSizeGiB is ${disk.minSizeGiB} GiB (${layout.diskMiB} MiB): ` +
        `${over} MiB too many; shrink the volumes or raise minSizeGiB`,
    })
  }
  return errors
}

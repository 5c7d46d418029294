// The build's data-volume check: once the payload is assembled, say how much
// the registry data volume (registry.dataDir) needs for it in this host's
// flavor (payload/data-volume.ts), and refuse a disk layout whose data volume,
// on the smallest disk the config allows (host.disk.minSizeGiB), cannot hold
// it: the kickstart's payload copy, or first boot's push, would fail on the
// host instead.

import type { Config } from '../config/types.js'
import { UserError } from '../errors.js'
import { formatBytes } from '../log.js'
import { dataVolumeNeeds, type DataVolumeNeeds, type VolumeFigures } from '../payload/data-volume.js'
import { computeDiskLayout } from '../render/disk.js'

const MIB = 1024 * 1024

/** What the figures of a payload need on this config's data volume, and what the volume has at least. */
export interface DataVolumeCheck {
  needs: DataVolumeNeeds
  /** The data volume's size on the smallest disk the config allows (before its filesystem's own overhead) */
  volumeBytes: number
  fits: boolean
  /** One line for the build's log */
  summary: string
}

export function checkDataVolume(config: Config, figures: VolumeFigures): DataVolumeCheck {
  const needs = dataVolumeNeeds({
    flavor: config.registry.flavor,
    ...figures,
    objectStorage: !!config.registry.storage,
    keepPayload: config.content.keepPayload,
  })
  const layout = computeDiskLayout(config)
  const volume = layout.volumes.find((v) => v.mount === config.registry.dataDir)!
  // "rest": what the smallest disk leaves once every other volume and the overheads are taken
  const volumeMiB = volume.grow ? layout.diskMiB - layout.requiredMiB + volume.sizeMiB : volume.sizeMiB
  const volumeBytes = Math.max(0, volumeMiB) * MIB
  const how = needs.how === 'tree' ? 'its storage tree moved into place, no push' : 'content pushed at first boot'
  const summary =
    `data volume ${config.registry.dataDir} (${config.registry.flavor}, ${how}): needs ${formatBytes(needs.peakBytes)} during first boot ` +
    `(${needs.items.map((i) => `${i.what} ${formatBytes(i.bytes)}`).join(' + ')}), ${formatBytes(needs.steadyBytes)} after; ` +
    `the smallest disk (host.disk.minSizeGiB ${config.host.disk.minSizeGiB}) gives it ${formatBytes(volumeBytes)}`
  return { needs, volumeBytes, fits: needs.peakBytes <= volumeBytes, summary }
}

/** The error for hosts whose data volume is too small: each named, with what would make it fit. */
export function dataVolumeError(tooSmall: { hostname: string; config: Config; check: DataVolumeCheck }[]): UserError {
  const lines = tooSmall.map(({ hostname, config, check }) => {
    const short = check.needs.peakBytes - check.volumeBytes
    const layoutHint =
      config.host.disk.layout.registryDataGiB === 'rest'
        ? 'raise host.disk.minSizeGiB (the data volume takes the rest of the disk)'
        : 'raise host.disk.layout.registryDataGiB (and host.disk.minSizeGiB with it)'
    return `${hostname}: ${check.summary}: ${formatBytes(short)} short; ${layoutHint}`
  })
  return new UserError(
    `the registry data volume is too small for the payload:\n  ${lines.join('\n  ')}`,
    'give the data volume more room, or carry less content (content.images, content.ocMirrorArchives); nothing was written',
  )
}

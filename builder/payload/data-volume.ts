// How much the registry data volume (registry.dataDir) must hold for a
// payload, in each flavor. Kickstart copies the payload onto that volume
// (<dataDir>/.payload, render/kickstart.ts payloadStore), so the payload
// always counts; what comes on top depends on how content reaches the
// registry:
//  - distribution on the host's disk: the registry storage tree
//    (registry-tree.ts) is moved into place by a rename and its blobs are the
//    payload's own files (hard links): content bytes once, plus the tree's
//    link files and directories. Removing the payload afterwards frees only
//    what is not content (the stack images, already in containers-storage).
//    This holds only if the payload reaches the volume with its hard links
//    (or the links are made there); a copy that splits them stores content
//    twice, which is what the "push" figures below describe.
//  - Quay (its storage is Quay's own), or any flavor whose image data lives
//    in object storage: first boot pushes the content. On the disk: the
//    payload plus Quay's copy of every content blob while both exist; after
//    a verified push the payload is removed unless the config keeps it. With
//    object storage the registry's copy is in the bucket, not on the volume.
// Pure: the figures come from the payload's registry tree plan
// (planPayloadTree, registry-tree.ts) and its blob bytes; the build's
// disk-size check decides what to do with them. A build plans the tree once:
// assembly (assemble.ts) hands the figures of the plan it made to the check,
// which reads nothing of the payload again. (No build reuses a payload
// assembled in an earlier run: were one to, it would plan the tree there,
// once, with planPayloadTree and treeVolumeFigures.)

import type { Flavor } from '../config/types.js'
import type { PayloadTree } from './registry-tree.js'

/**
 * What one link file or directory of the tree costs, at most: a link holds
 * 71 bytes but takes a filesystem block (4 KiB on RHEL 8's XFS and on ext4);
 * a directory of a few entries fits in its inode on XFS (short form) and
 * takes a block on ext4. 4 KiB each is the upper bound of both.
 */
export const TREE_FILE_BYTES = 4096

export interface DataVolumeInput {
  flavor: Flavor
  /** Bytes of the payload's blobs, each once (payload.json `bytes`): stack and content images */
  payloadBytes: number
  /** Bytes of the distinct blobs of the content images: what a registry stores of them */
  contentBytes: number
  /** Link files plus directories of the registry storage tree (distribution on the host's disk) */
  treeFiles: number
  /** The registry keeps image data in object storage (registry.storage) */
  objectStorage?: boolean
  /** The payload stays after first boot (default: removed once content is served) */
  keepPayload?: boolean
}

export interface DataVolumeNeeds {
  /** How content reaches the registry: the tree moved into place, or a push */
  how: 'tree' | 'push'
  /** The most the volume holds at once (during first boot): what the volume must have free */
  peakBytes: number
  /** What it holds once first boot is done */
  steadyBytes: number
  /** The parts of peakBytes, for the message that says why */
  items: { what: string; bytes: number }[]
}

export function dataVolumeNeeds(o: DataVolumeInput): DataVolumeNeeds {
  for (const k of ['payloadBytes', 'contentBytes', 'treeFiles'] as const)
    if (!(Number.isSafeInteger(o[k]) && o[k] >= 0)) throw new Error(`dataVolumeNeeds: ${k} must be a byte count, got ${o[k]}`)
  if (o.contentBytes > o.payloadBytes)
    throw new Error(`dataVolumeNeeds: content (${o.contentBytes} bytes) cannot exceed the payload holding it (${o.payloadBytes})`)
  const payload = { what: 'payload (<dataDir>/.payload)', bytes: o.payloadBytes }
  if (o.flavor === 'distribution' && !o.objectStorage) {
    const tree = {
      what: `registry storage tree: ${o.treeFiles} link files and directories (its blobs are the payload's)`,
      bytes: o.treeFiles * TREE_FILE_BYTES,
    }
    const peak = payload.bytes + tree.bytes
    return { how: 'tree', peakBytes: peak, steadyBytes: o.keepPayload ? peak : o.contentBytes + tree.bytes, items: [payload, tree] }
  }
  const items = [payload]
  if (!o.objectStorage)
    items.push({
      what: `${o.flavor === 'quay' ? "Quay's" : "the registry's"} copy of the content, pushed at first boot`,
      bytes: o.contentBytes,
    })
  const peak = items.reduce((n, i) => n + i.bytes, 0)
  const registry = o.objectStorage ? 0 : o.contentBytes
  return { how: 'push', peakBytes: peak, steadyBytes: o.keepPayload ? peak : registry, items }
}

/** The figures of a payload that the data-volume check reads. */
export type VolumeFigures = Pick<DataVolumeInput, 'payloadBytes' | 'contentBytes' | 'treeFiles'>

/** The figures of a payload whose blobs take payloadBytes, from the plan of its registry tree. */
export function treeVolumeFigures(payloadBytes: number, tree: Pick<PayloadTree, 'bytes' | 'links' | 'dirs'>): VolumeFigures {
  return { payloadBytes, contentBytes: tree.bytes, treeFiles: tree.links.length + tree.dirs }
}

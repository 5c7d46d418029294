// The image lock: the stack images each registry flavor runs, pinned by
// digest. One JSON file per flavor in images/, refreshed with the procedure in
// images/README.md. A config may name its own image for a role
// (registry.images.<role>: {ref, digest}); resolveStack() merges the two, and
// everything that names a stack image (quadlets, first boot, payload
// assembly, images fetch, mirror-registryctl) reads that one list.

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Config, Flavor, StackRole } from '../config/types.js'

/** The roles of each flavor's stack, in start order (the lock files list exactly these). */
export const STACK_ROLES: Record<Flavor, readonly StackRole[]> = {
  quay: ['quay', 'redis'],
  distribution: ['registry'],
}

export interface StackImage {
  /** Role in the stack: quay, redis, registry */
  name: string
  /** Repository and tag the image is known by, e.g. quay.io/projectquay/quay:v3.12.1 */
  ref: string
  /** Manifest (list) digest the lock pins, sha256:… */
  digest: string
  /** org.opencontainers.image.ref.name in the payload's OCI layout, e.g. stack/quay */
  ociName: string
  /** false when the digest could not be tied to the tag (fetch then checks the tag first) */
  verified?: boolean
  /** Where the digest came from, for the next person who refreshes the lock */
  source?: string
  /** Set when the config's registry.images.<name> replaced the lock's entry */
  override?: boolean
}

export interface StackLock {
  flavor: Flavor
  /** Release name of this set of images */
  release: string
  images: StackImage[]
}

export const IMAGES_DIR = fileURLToPath(new URL('../../images/', import.meta.url))

export function loadStackLock(flavor: Flavor): StackLock {
  const file = `${IMAGES_DIR}${flavor}.lock.json`
  const lock = JSON.parse(readFileSync(file, 'utf8')) as StackLock
  if (lock.flavor !== flavor) throw new Error(`${file}: flavor is ${lock.flavor}, expected ${flavor}`)
  for (const img of lock.images) {
    if (!/^sha256:[a-f0-9]{64}$/.test(img.digest)) throw new Error(`${file}: ${img.name}: bad digest ${img.digest}`)
  }
  const names = lock.images.map((i) => i.name).join(',')
  if (names !== STACK_ROLES[flavor].join(',')) throw new Error(`${file}: images are ${names}, expected ${STACK_ROLES[flavor].join(',')}`)
  return lock
}

/**
 * The stack this config runs: the lock's images for its flavor, each role the
 * config names under registry.images replaced by that {ref, digest} (same
 * role name and ociName, stack/<role>). The one source of stack images for
 * the host spec, the payload, images fetch and mirror-registryctl.
 */
export function resolveStack(config: Pick<Config, 'registry'>): StackImage[] {
  const { flavor, images } = config.registry
  return loadStackLock(flavor).images.map((img) => {
    const o = images?.[img.name as StackRole]
    if (!o) return img
    return {
      name: img.name,
      ref: o.ref,
      digest: o.digest,
      ociName: img.ociName,
      verified: true,
      source: `config: registry.images.${img.name}`,
      override: true,
    }
  })
}

/** The `repo@digest` form used wherever an image is referenced on the host. */
export function pinnedRef(img: StackImage): string {
  return `${img.ref.replace(/:[^/:]+$/, '')}@${img.digest}`
}

// The image lock: the stack images each registry flavor runs, pinned by
// digest. One JSON file per flavor in images/, refreshed with the procedure in
// images/README.md. Everything that names a stack image (quadlets, first boot,
// payload assembly) reads it from here.

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Flavor } from '../config/types.js'

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
  return lock
}

/** The `repo@digest` form used wherever an image is referenced on the host. */
export function pinnedRef(img: StackImage): string {
  return `${img.ref.replace(/:[^/:]+$/, '')}@${img.digest}`
}

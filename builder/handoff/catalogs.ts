// A CatalogSource per operator catalog on the appliance, named and filled as
// oc-mirror v2 does (internal/pkg/clusterresources/clusterresources.go
// generateCatalogSource, openshift/oc-mirror 855b64a3): cs-<last path
// component>-<tag's first 12 characters, RFC 1035-mapped | digest's first 12
// hex>, dots turned into dashes, in openshift-marketplace, sourceType grpc,
// image = where the catalog is on the mirror.

import { UserError } from '../errors.js'
import type { HandoffImage } from './content.js'

const HASH_TRUNC_LEN = 12

export interface CatalogSourceData {
  name: string
  /** The catalog on the appliance: HOST:PORT/target:tag, or @digest when it has no tag */
  image: string
}

/** oc-mirror toRFC1035: lower case; anything but a-z, 0-9 and '-' becomes '-'. */
function toRfc1035(s: string): string {
  return [...s.toLowerCase()].map((c) => (/[a-z0-9-]/.test(c) ? c : '-')).join('')
}

const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/
const RFC1123 = /^[a-zA-Z0-9][-a-zA-Z0-9]*[a-zA-Z0-9]$/

/** The CatalogSource name oc-mirror gives a catalog at `image`'s repository and tag or digest. */
export function catalogSourceName(target: string, tag: string | undefined, digestHex: string | undefined): string {
  const suffix = tag ? toRfc1035(tag.slice(0, HASH_TRUNC_LEN)) : (digestHex ?? '').slice(0, HASH_TRUNC_LEN)
  const last = target.split('/').pop()!
  const name = `cs-${last}-${suffix || '0'}`.replace(/\./g, '-')
  const ok = (DNS1035_LABEL.test(name) && name.length <= 63) || (RFC1123.test(name) && name.length <= 63)
  if (!ok)
    throw new UserError(
      `cannot name a CatalogSource for the catalog ${target}: ${name} is not a valid name (DNS-1035 label, at most 63 characters)`,
      'give the catalog a shorter target repository or tag',
    )
  return name
}

/** The CatalogSources of the operator catalogs among `images`; two catalogs that would get the same name are refused. */
export function catalogSources(images: HandoffImage[], registry: string): CatalogSourceData[] {
  const out: CatalogSourceData[] = []
  const seen = new Map<string, string>()
  for (const img of images.filter((i) => i.kind === 'operator-catalog')) {
    // First boot pushes a catalog without a tag as sha256-<hex>: the CatalogSource names it by digest, as oc-mirror does.
    const hex = img.digest.replace(/^sha256:/, '')
    const byDigestOnly = !!img.digest && (!img.tag || img.tag === `sha256-${hex}`)
    const tag = byDigestOnly ? undefined : img.tag
    const name = catalogSourceName(img.target, tag, byDigestOnly ? hex : undefined)
    const image = byDigestOnly ? `${registry}/${img.target}@${img.digest}` : `${registry}/${img.target}:${tag ?? 'latest'}`
    const other = seen.get(name)
    if (other && other !== image)
      throw new UserError(
        `the catalogs ${other} and ${image} would both get the CatalogSource ${name}`,
        'give one of them another target repository or tag',
      )
    if (!other) out.push({ name, image })
    seen.set(name, image)
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1))
}

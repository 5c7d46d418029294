// The names images carry in the cache layout and in the payload, in one place
// so fetch, import, assemble and the CLI agree.

import { parseRef } from './ref.js'

export interface ContentImageRef {
  ref: string
  digest?: string
  /** Repository path in the mirror registry */
  target: string
}

/** content/<target>:<tag>, or content/<target>@<digest> when the ref has no tag. */
export function contentOciName(img: ContentImageRef): string {
  const p = parseRef(img.ref)
  const target = img.target.replace(/^\/+|\/+$/g, '')
  if (p.tag) return `content/${target}:${p.tag}`
  const d = img.digest ?? p.digest
  return d ? `content/${target}@${d}` : `content/${target}:latest`
}

/** A field for images.tsv: no tabs, no newlines, '-' when empty. */
export function tsvField(s: string | undefined): string {
  if (!s) return '-'
  if (/[\t\n\r]/.test(s)) throw new Error(`image name field contains a tab or newline: ${JSON.stringify(s)}`)
  return s
}

/**
 * What a content image is to a cluster, as oc-mirror v2 sorts them
 * (internal/pkg/api/v2alpha1 ImageType): it decides which ImageDigestMirrorSet
 * it lands in, or a CatalogSource instead. Importers that know it (oc-mirror
 * archives) set PayloadImage.kind; otherwise builder/handoff/content.ts
 * classifies by the image's label and repository.
 */
export type ContentKind = 'release' | 'release-component' | 'operator-catalog' | 'operator' | 'generic'

/**
 * Where the payload keeps OpenShift release signatures, under oc-mirror's
 * file names (<tag>-sha256-<hex>, release/signature.go): the OpenShift
 * hand-off turns whatever is there into the signature ConfigMap
 * (builder/handoff/signatures.ts). Whoever puts release signatures into the
 * payload (the oc-mirror import) writes them here and lists them in
 * SHA256SUMS.
 */
export const RELEASE_SIGNATURES_DIR = 'release-signatures'

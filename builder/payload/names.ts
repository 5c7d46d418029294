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

// Image references: registry/repo[:tag][@sha256:…], split without guessing
// (a port in the registry host is not a tag).

import { isDigest } from './digest.js'

export interface ParsedRef {
  /** registry/path without tag or digest, e.g. quay.io/projectquay/quay */
  repo: string
  tag?: string
  digest?: string
}

export function parseRef(ref: string): ParsedRef {
  let rest = ref.trim()
  let digest: string | undefined
  const at = rest.lastIndexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!isDigest(digest)) throw new Error(`${ref}: bad digest ${digest}`)
  }
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
  }
  if (!rest || /\s/.test(rest)) throw new Error(`bad image reference: ${JSON.stringify(ref)}`)
  return { repo: rest, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) }
}

/** Where to pull from: by digest when we have one, else by tag. */
export function sourceRef(ref: string, digest?: string): string {
  const p = parseRef(ref)
  const d = digest ?? p.digest
  return d ? `${p.repo}@${d}` : `${p.repo}:${p.tag ?? 'latest'}`
}

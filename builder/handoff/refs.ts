// Image references as the tools on the cluster side read them.
//
// Normalization follows containers/image docker/reference
// (normalize.go SplitDockerDomain, ParseNormalizedNamed): a first path
// component without '.' or ':' (and not "localhost") is not a registry, so
// `nginx` and `library/nginx` are on docker.io; index.docker.io is docker.io;
// a docker.io repository of one component is docker.io/library/<it>. CRI-O,
// the MCO and the installer all parse with that package, so an
// ImageDigestMirrorSet source must be written in that canonical form: the
// installer rejects `docker.io/nginx` (pkg/types/validation/installconfig.go
// validateNamedRepository: ParseNamed fails with ErrNameNotCanonical and
// `docker.io/nginx` is no host name either).
//
// The split into domain and path follows oc-mirror v2's image.ParseRef
// (internal/pkg/image/image.go, openshift/oc-mirror 855b64a3): the domain is
// the first component, the path (PathComponent) the rest.

import { parseRef } from '../payload/ref.js'

const DEFAULT_DOMAIN = 'docker.io'
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io'

/** containers/image SplitDockerDomain: [domain, path], docker.io defaults applied. */
export function splitDockerDomain(name: string): [string, string] {
  const i = name.indexOf('/')
  let domain: string
  let rest: string
  if (i === -1 || (!/[.:]/.test(name.slice(0, i)) && name.slice(0, i) !== 'localhost')) {
    domain = DEFAULT_DOMAIN
    rest = name
  } else {
    domain = name.slice(0, i)
    rest = name.slice(i + 1)
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN
  if (domain === DEFAULT_DOMAIN && !rest.includes('/')) rest = `library/${rest}`
  return [domain, rest]
}

/** A repository (no tag, no digest) in the canonical form the cluster's tools use. */
export function canonicalRepo(repo: string): string {
  const [domain, path] = splitDockerDomain(repo)
  return `${domain}/${path}`
}

export interface ParsedImage {
  /** Canonical repository, e.g. docker.io/library/nginx */
  repo: string
  domain: string
  /** Everything after the domain, e.g. library/nginx */
  path: string
  tag?: string
  digest?: string
}

/** Parse and normalize registry/repo[:tag][@digest]. */
export function parseImage(ref: string): ParsedImage {
  const p = parseRef(ref)
  const [domain, path] = splitDockerDomain(p.repo)
  return { repo: `${domain}/${path}`, domain, path, ...(p.tag ? { tag: p.tag } : {}), ...(p.digest ? { digest: p.digest } : {}) }
}

/** repo[:tag][@digest] */
export function formatImage(i: { repo: string; tag?: string; digest?: string }): string {
  return `${i.repo}${i.tag ? `:${i.tag}` : ''}${i.digest ? `@${i.digest}` : ''}`
}

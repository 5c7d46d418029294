// What OpenShift itself would say about our hand-off files, as test checks:
//  - crdValidator(): a vendored CustomResourceDefinition's openAPIV3Schema
//    (test/fixtures/openshift-api/, see its README) compiled with ajv, with
//    the structural-schema keyword the CRDs use (x-kubernetes-list-type: set
//    means unique items), plus what the API server checks of every custom
//    resource's metadata.name (a DNS-1123 subdomain);
//  - installerErrors(): the rules openshift/installer applies to an
//    install-config's imageDigestSources and trust bundle,
//    pkg/types/validation/installconfig.go (ValidateInstallConfig:
//    validateImageDigestSources, validateNamedRepository,
//    validateAdditionalCABundlePolicy) with pkg/validate/validate.go (Host,
//    CABundle), reading names as containers/image docker/reference does
//    (normalize.go ParseNormalizedNamed/SplitDockerDomain, reference.go
//    ParseNamed/Parse, regexp.go at e2cf031b). Read from the code index
//    (2026); those functions have not changed since imageDigestSources came
//    in (OpenShift 4.13).

import { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import { readFileSync } from 'node:fs'
import { Ajv } from 'ajv'
import { parse } from 'yaml'

// ---- CRD schemas ------------------------------------------------------------

export type Validate = (doc: unknown) => string[]

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** The openAPIV3Schema of a CRD file's served version, as a validator returning error strings. */
export function crdValidator(file: string): Validate {
  const crd = parse(readFileSync(file, 'utf8')) as {
    spec: { names: { kind: string }; group: string; versions: { name: string; served: boolean; schema: { openAPIV3Schema: object } }[] }
  }
  const version = crd.spec.versions.find((v) => v.served)!
  const ajv = new Ajv({ allErrors: true, strict: true })
  ajv.addKeyword({
    keyword: 'x-kubernetes-list-type',
    type: 'array',
    schemaType: 'string',
    // set: the API server refuses duplicates; atomic and map do not restrict items here
    validate: (kind: string, data: unknown[]) => kind !== 'set' || new Set(data.map((d) => JSON.stringify(d))).size === data.length,
    errors: false,
  })
  const check = ajv.compile(version.schema.openAPIV3Schema)
  const apiVersion = `${crd.spec.group}/${version.name}`
  return (doc) => {
    const errors = check(doc)
      ? []
      : (check.errors ?? []).map(
          (e) =>
            `${e.instancePath || '/'} ${e.message}${e.params && 'pattern' in e.params ? ` (${String(e.params.pattern).slice(0, 40)}…)` : ''}`,
        )
    const d = doc as { apiVersion?: string; kind?: string; metadata?: { name?: unknown } }
    if (d.apiVersion !== apiVersion) errors.push(`apiVersion is ${d.apiVersion}, not ${apiVersion}`)
    if (d.kind !== crd.spec.names.kind) errors.push(`kind is ${d.kind}, not ${crd.spec.names.kind}`)
    const name = d.metadata?.name
    if (typeof name !== 'string' || name.length > 253 || !DNS1123_SUBDOMAIN.test(name))
      errors.push(`metadata.name ${JSON.stringify(name)} is not a DNS-1123 subdomain`)
    return errors
  }
}

// ---- containers/image docker/reference ---------------------------------------

const optional = (...p: string[]) => `(?:${p.join('')})?`
const repeated = (...p: string[]) => `(?:${p.join('')})+`
const alphaNumeric = '[a-z0-9]+'
const separator = '(?:[._]|__|[-]*)'
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const tagPat = '[\\w][\\w.-]{0,127}'
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}'
const nameComponent = alphaNumeric + optional(repeated(separator, alphaNumeric))
const domain = domainComponent + optional(repeated('\\.', domainComponent)) + optional(':', '[0-9]+')
const namePat = optional(domain, '/') + nameComponent + optional(repeated('/', nameComponent))
const referenceRegexp = new RegExp(`^(${namePat})${optional(':', `(${tagPat})`)}${optional('@', `(${digestPat})`)}$`)
const anchoredNameRegexp = new RegExp(`^${optional(`(${domain})`, '/')}(${nameComponent}${optional(repeated('/', nameComponent))})$`)
const anchoredIdentifier = /^[a-f0-9]{64}$/
const NAME_TOTAL_LENGTH_MAX = 255

interface Named {
  name: string
  tag?: string
  digest?: string
}

class RefError extends Error {}
const ErrNameNotCanonical = new RefError('repository name must be canonical')

/** reference.go Parse */
function refParse(s: string): Named {
  const m = referenceRegexp.exec(s)
  if (!m) {
    if (s === '') throw new RefError('repository name must have at least one component')
    if (referenceRegexp.exec(s.toLowerCase())) throw new RefError('repository name must be lowercase')
    throw new RefError('invalid reference format')
  }
  if (m[1]!.length > NAME_TOTAL_LENGTH_MAX) throw new RefError(`repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`)
  const n = anchoredNameRegexp.exec(m[1]!)
  const name = n ? (n[1] ? `${n[1]}/${n[2]}` : n[2]!) : m[1]!
  return { name, ...(m[2] ? { tag: m[2] } : {}), ...(m[3] ? { digest: m[3] } : {}) }
}

/** normalize.go SplitDockerDomain */
function splitDockerDomain(name: string): [string, string] {
  const i = name.indexOf('/')
  let d: string
  let rest: string
  if (i === -1 || (!/[.:]/.test(name.slice(0, i)) && name.slice(0, i) !== 'localhost')) [d, rest] = ['docker.io', name]
  else [d, rest] = [name.slice(0, i), name.slice(i + 1)]
  if (d === 'index.docker.io') d = 'docker.io'
  if (d === 'docker.io' && !rest.includes('/')) rest = `library/${rest}`
  return [d, rest]
}

/** normalize.go ParseNormalizedNamed */
function parseNormalizedNamed(s: string): Named {
  if (anchoredIdentifier.test(s)) throw new RefError(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`)
  const [d, remainder] = splitDockerDomain(s)
  const tagSep = remainder.indexOf(':')
  const remoteName = tagSep > -1 ? remainder.slice(0, tagSep) : remainder
  if (remoteName.toLowerCase() !== remoteName) throw new RefError('invalid reference format: repository name must be lowercase')
  return refParse(`${d}/${remainder}`)
}

const refString = (n: Named) => `${n.name}${n.tag ? `:${n.tag}` : ''}${n.digest ? `@${n.digest}` : ''}`

/** reference.go ParseNamed: the name must already be in its canonical form */
function parseNamed(s: string): Named {
  const named = parseNormalizedNamed(s)
  if (refString(named) !== s) throw ErrNameNotCanonical
  return named
}

/** Go net.SplitHostPort, the parts validateNamedRepository uses */
function splitHostPort(hostport: string): string {
  const i = hostport.lastIndexOf(':')
  if (i < 0) throw new Error('missing port in address')
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']')
    if (end < 0) throw new Error('missing ]')
    if (end + 1 !== i) throw new Error('missing port in address')
    return hostport.slice(1, end)
  }
  const host = hostport.slice(0, i)
  if (host.includes(':')) throw new Error('too many colons in address')
  return host
}

/** pkg/validate Host: an IP address, or a DNS-1123 subdomain */
function validHost(v: string): boolean {
  return isIP(v) !== 0 || (v.length <= 253 && DNS1123_SUBDOMAIN.test(v))
}

/** installconfig.go validateNamedRepository; null when the installer accepts r. */
export function namedRepositoryError(r: string): string | null {
  let ref: Named
  try {
    ref = parseNamed(r)
  } catch (e) {
    if (e === ErrNameNotCanonical) {
      let host: string
      try {
        host = splitHostPort(r)
      } catch {
        host = r
      }
      return validHost(host) ? null : 'the repository provided is invalid: invalid host'
    }
    return `failed to parse: ${(e as Error).message}`
  }
  if (ref.tag || ref.digest) return 'must be repository--not reference'
  return null
}

/** pkg/validate CABundle: every PEM block a certificate, nothing after the last one. */
function caBundleError(v: string): string | null {
  let rest = v
  for (;;) {
    const m = /^[\s\S]*?-----BEGIN ([^-\r\n]+)-----\r?\n([\s\S]*?)-----END \1-----[ \t]*(?:\r?\n|$)/.exec(rest)
    if (!m) return 'invalid block'
    try {
      new X509Certificate(`-----BEGIN ${m[1]}-----\n${m[2]!.replace(/\r/g, '')}-----END ${m[1]}-----\n`)
    } catch (e) {
      return (e as Error).message
    }
    rest = rest.slice(m[0].length)
    if (rest.length === 0) return null
  }
}

export interface InstallConfigPart {
  additionalTrustBundle?: string
  additionalTrustBundlePolicy?: string
  imageDigestSources?: { source: string; mirrors?: string[] }[]
}

/** The installer's errors for the parts of install-config.yaml our snippet sets (field path: message). */
export function installerErrors(c: InstallConfigPart): string[] {
  const errors: string[] = []
  if (c.additionalTrustBundle !== undefined && c.additionalTrustBundle !== '') {
    const e = caBundleError(c.additionalTrustBundle)
    if (e) errors.push(`additionalTrustBundle: ${e}`)
  }
  if (
    c.additionalTrustBundlePolicy !== undefined &&
    c.additionalTrustBundlePolicy !== '' &&
    !['Proxyonly', 'Always'].includes(c.additionalTrustBundlePolicy)
  )
    errors.push(`additionalTrustBundlePolicy: supported values "Proxyonly", "Always"`)
  for (const [g, group] of (c.imageDigestSources ?? []).entries()) {
    const e = namedRepositoryError(group.source)
    if (e) errors.push(`imageDigestSources[${g}].source: ${JSON.stringify(group.source)}: ${e}`)
    for (const [m, mirror] of (group.mirrors ?? []).entries()) {
      const me = namedRepositoryError(mirror)
      if (me) errors.push(`imageDigestSources[${g}].mirrors[${m}]: ${JSON.stringify(mirror)}: ${me}`)
    }
  }
  return errors
}

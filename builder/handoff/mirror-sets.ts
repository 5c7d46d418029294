// ImageDigestMirrorSet and ImageTagMirrorSet entries for the appliance's
// content, as oc-mirror v2 computes them for what it mirrored
// (internal/pkg/clusterresources/clusterresources.go, openshift/oc-mirror
// 855b64a3: IDMS_ITMSGenerator, generateImageMirrors, attemptNamespaceScope):
//  - one mirror set per category: release (releases and their components),
//    operator, generic; operator catalogs get a CatalogSource instead;
//  - IDMS: images pinned by digest (alone or with a tag), and release images
//    even by tag (CLID-205: the installer needs them); ITMS: images with a tag
//    (alone or with a digest);
//  - scope: when the target path ends with the source path, the NAMESPACES
//    are mapped (quay.io/org -> HOST:PORT/org), else the repositories;
//  - every mirror of a source is listed, in the order first seen.
// Where we differ, on purpose:
//  - the suffix test is by path component (oc-mirror's strings.HasSuffix makes
//    target `fooapp` a namespace match of source `app`, mapping quay.io to the
//    registry root where `app` is not);
//  - a source repository pushed to several targets is mapped by repository,
//    so that the most specific source (the one the cluster uses) lists them all;
//  - a namespace scope the installer would refuse (docker.io/<one component>
//    is not canonical: pkg/types/validation/installconfig.go
//    validateNamedRepository) falls back to the repository;
//  - entries and categories are sorted (oc-mirror iterates Go maps): the same
//    content gives the same bytes.

import type { HandoffImage } from './content.js'
import { canonicalRepo, type ParsedImage } from './refs.js'

export type MirrorCategory = 'release' | 'operator' | 'generic'
export const CATEGORIES: readonly MirrorCategory[] = ['release', 'operator', 'generic']

export interface MirrorEntry {
  source: string
  mirrors: string[]
}

export interface MirrorSet {
  category: MirrorCategory
  entries: MirrorEntry[]
}

/** oc-mirror imageTypeToCategory; null: no mirror set (catalogs get a CatalogSource). */
export function categoryOf(kind: HandoffImage['kind']): MirrorCategory | null {
  switch (kind) {
    case 'release':
    case 'release-component':
      return 'release'
    case 'operator':
      return 'operator'
    case 'operator-catalog':
      return null
    default:
      return 'generic'
  }
}

/** Whether an image belongs in the digest (IDMS) or the tag (ITMS) mirror sets. */
export function wanted(img: HandoffImage, mode: 'digest' | 'tag'): img is HandoffImage & { origin: ParsedImage } {
  if (!img.origin) return false
  if (mode === 'tag') return !!img.origin.tag
  return !!img.origin.digest || img.kind === 'release'
}

const parent = (path: string) => path.split('/').slice(0, -1).join('/')
const join = (domain: string, path: string) => (path ? `${domain}/${path}` : domain)

/** A namespace scope the installer accepts: a bare host, or a canonical repository name. */
function installerCanonical(scope: string): boolean {
  return !scope.includes('/') || canonicalRepo(scope) === scope
}

/** [source, mirror] for one image: its namespaces when the target ends with the source path, else its repositories. */
export function scopeOf(img: HandoffImage & { origin: ParsedImage }, registry: string, forceRepository: boolean): [string, string] {
  const src = img.origin
  const repoScope: [string, string] = [src.repo, `${registry}/${img.target}`]
  if (forceRepository) return repoScope
  const endsWith = img.target === src.path || img.target.endsWith(`/${src.path}`)
  if (!endsWith) return repoScope
  const source = join(src.domain, parent(src.path))
  if (!installerCanonical(source)) return repoScope
  return [source, join(registry, parent(img.target))]
}

/** The mirror sets of one mode, by category (empty categories left out). */
export function mirrorSets(images: HandoffImage[], registry: string, mode: 'digest' | 'tag'): MirrorSet[] {
  const targetsOf = new Map<string, Set<string>>()
  for (const i of images) if (i.origin) targetsOf.set(i.origin.repo, (targetsOf.get(i.origin.repo) ?? new Set()).add(i.target))
  const byCategory = new Map<MirrorCategory, Map<string, string[]>>()
  for (const img of images) {
    const category = categoryOf(img.kind)
    if (!category || !wanted(img, mode)) continue
    const [source, mirror] = scopeOf(img, registry, (targetsOf.get(img.origin.repo)?.size ?? 0) > 1)
    const entries = byCategory.get(category) ?? new Map<string, string[]>()
    byCategory.set(category, entries)
    const mirrors = entries.get(source) ?? []
    if (!mirrors.includes(mirror)) mirrors.push(mirror)
    entries.set(source, mirrors)
  }
  return CATEGORIES.filter((c) => byCategory.has(c)).map((category) => ({
    category,
    entries: [...byCategory.get(category)!.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([source, mirrors]) => ({ source, mirrors })),
  }))
}

/** All digest entries as one list, merged by source: the install-config's imageDigestSources. */
export function imageDigestSources(sets: MirrorSet[]): MirrorEntry[] {
  const merged = new Map<string, string[]>()
  for (const s of sets)
    for (const e of s.entries) {
      const mirrors = merged.get(e.source) ?? []
      for (const m of e.mirrors) if (!mirrors.includes(m)) mirrors.push(m)
      merged.set(e.source, mirrors)
    }
  return [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([source, mirrors]) => ({ source, mirrors }))
}

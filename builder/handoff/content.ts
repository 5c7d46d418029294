// What the appliance holds, as the OpenShift hand-off needs to know it: for
// each content image the reference clusters pull it by (its origin), where it
// is on the appliance, and what it is to a cluster (a release, a release
// component, an operator catalog, …); and the release signatures.
//
// Read from the assembled payload when there is one (a build), else from the
// config (the content it asks for). Classification, where no importer said:
//  - an operator catalog carries the label
//    operators.operatorframework.io.index.configs.v1 (oc-mirror
//    internal/pkg/operator/common.go operatorsConfigsV1Label);
//  - a release / its components: the OpenShift release repositories, or the
//    repositories oc-mirror v2 pushes them to (release/const.go
//    releaseImagePathComponents openshift/release-images,
//    releaseComponentPathComponents openshift/release), openshift/oc-mirror
//    855b64a3.

import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Config } from '../config/types.js'
import type { PayloadImage } from '../payload/assemble.js'
import { contentOciName, RELEASE_SIGNATURES_DIR, type ContentKind } from '../payload/names.js'
import { isIndexType, OciLayout, REF_NAME, type Descriptor, type ImageIndex } from '../payload/oci.js'
import { parseRef } from '../payload/ref.js'
import { formatImage, parseImage, type ParsedImage } from './refs.js'

export interface HandoffImage {
  /**
   * The reference clusters pull it by, canonical; digest only when pinned.
   * Absent when no importer said (then only a catalog's CatalogSource can name it).
   */
  origin?: ParsedImage
  /** Repository path on the appliance */
  target: string
  /** The tag first boot pushes it with: the source tag, else sha256-<hex> */
  tag?: string
  /** The digest the appliance holds ('' for a dry run's missing image) */
  digest: string
  kind: ContentKind
}

/** A release signature, named as oc-mirror names it: <tag>-sha256-<hex>. */
export interface ReleaseSignatureFile {
  file: string
  /** hex of the release image digest it signs */
  hex: string
  data: Buffer
}

export interface HandoffContent {
  images: HandoffImage[]
  signatures: ReleaseSignatureFile[]
  /** Things the user should know about the hand-off (said by the build) */
  warnings: string[]
}

/** The label every file-based operator catalog image carries. */
export const CATALOG_LABEL = 'operators.operatorframework.io.index.configs.v1'

/** Where OpenShift releases come from, and where their component images are. */
const OCP_RELEASE_REPO = 'quay.io/openshift-release-dev/ocp-release'
const OCP_COMPONENT_REPO = 'quay.io/openshift-release-dev/ocp-v4.0-art-dev'
/** Where oc-mirror v2 puts them on a mirror. */
const OCM_RELEASE_TARGET = 'openshift/release-images'
const OCM_COMPONENT_TARGET = 'openshift/release'
/** Red Hat's operator catalogs (without a payload to read labels from). */
const KNOWN_CATALOG =
  /^registry\.redhat\.io\/redhat\/(redhat|certified|community)-operator-index$|^registry\.redhat\.io\/redhat\/redhat-marketplace-index$/

/** What an image is, from its repositories (origin and target). */
export function kindByRepository(origin: string, target: string): ContentKind {
  if (origin === OCP_RELEASE_REPO || target === OCM_RELEASE_TARGET) return 'release'
  if (origin === OCP_COMPONENT_REPO || target === OCM_COMPONENT_TARGET) return 'release-component'
  if (KNOWN_CATALOG.test(origin)) return 'operator-catalog'
  return 'generic'
}

/** The tag first boot pushes an image with (templates/host/firstboot: the source tag, else sha256-<hex>). */
function pushTag(tag: string | undefined, digest: string): string | undefined {
  return tag ?? (digest ? `sha256-${digest.replace(/^sha256:/, '')}` : undefined)
}

function fromConfigImage(i: Config['content']['images'][number], digest = i.digest ?? ''): HandoffImage {
  const p = parseImage(i.ref)
  const origin: ParsedImage = { ...p, ...(i.digest ? { digest: i.digest } : {}) }
  const tag = pushTag(parseRef(i.ref).tag, digest)
  return { origin, target: i.target, ...(tag ? { tag } : {}), digest, kind: kindByRepository(origin.repo, i.target) }
}

/** The content the config asks for (no payload yet: `render`, tests). */
export function handoffContentFromConfig(config: Config): HandoffContent {
  return withReleaseWarnings({ images: config.content.images.map((i) => fromConfigImage(i)), signatures: [], warnings: [] })
}

/**
 * The content an assembled payload holds. Config images are joined by their
 * payload name (their pin decides digest or tag mirrors, as the user wrote
 * it); other content images (oc-mirror archives) need an origin from their
 * importer, or one of oc-mirror's release repositories as target.
 */
export async function handoffContentFromPayload(config: Config, images: PayloadImage[], payloadDir: string): Promise<HandoffContent> {
  const byName = new Map(config.content.images.map((i) => [contentOciName(i), i]))
  const layout = await OciLayout.open(join(payloadDir, 'oci'), { create: false }).catch(() => undefined)
  const entries = layout ? await layout.entries() : []
  const warnings: string[] = []
  const out: HandoffImage[] = []
  for (const img of images.filter((x) => x.role === 'content')) {
    const entry = entries.find((e) => e.annotations?.[REF_NAME] === img.ociName)
    const labelled = layout && entry && (await hasCatalogLabel(layout, entry)) ? 'operator-catalog' : undefined
    const fromConfig = byName.get(img.ociName)
    if (fromConfig) {
      const h = fromConfigImage(fromConfig, img.digest)
      out.push({ ...h, kind: img.kind ?? labelled ?? h.kind })
      continue
    }
    const origin = img.origin ? parseImage(img.origin) : defaultOrigin(img)
    const kind = img.kind ?? labelled ?? (origin ? kindByRepository(origin.repo, img.target) : 'generic')
    if (!origin && kind !== 'operator-catalog')
      warnings.push(
        `${img.ociName}: no origin is known for it (where clusters pull it from), so neither a mirror set nor imageset-config.yaml names it`,
      )
    const tag = pushTag(img.tag, img.digest)
    out.push({ ...(origin ? { origin } : {}), target: img.target, ...(tag ? { tag } : {}), digest: img.digest, kind })
  }
  const signatures = await readReleaseSignatures(payloadDir, warnings)
  return withReleaseWarnings({ images: out, signatures, warnings })
}

/** oc-mirror's release repositories name their origin: OpenShift's release and component repositories. */
function defaultOrigin(img: PayloadImage): ParsedImage | undefined {
  if (img.target === OCM_RELEASE_TARGET && img.tag) return parseImage(`${OCP_RELEASE_REPO}:${img.tag}`)
  if (img.target === OCM_COMPONENT_TARGET && img.digest) return parseImage(`${OCP_COMPONENT_REPO}@${img.digest}`)
  return undefined
}

/** A release without its component images cannot install a cluster: say so. */
function withReleaseWarnings(c: HandoffContent): HandoffContent {
  const releases = c.images.filter((i) => i.kind === 'release')
  if (releases.length && !c.images.some((i) => i.kind === 'release-component')) {
    for (const r of releases)
      c.warnings.push(
        `${r.origin ? formatImage(r.origin) : r.target} is a release image, but none of its component images (${OCP_COMPONENT_REPO}@…) is on the appliance: ` +
          'a cluster cannot install from it; bring the release with an oc-mirror archive (content.ocMirrorArchives)',
      )
  }
  return c
}

/** Whether the image (for an index: its first image present) is a file-based operator catalog. */
async function hasCatalogLabel(layout: OciLayout, entry: Descriptor): Promise<boolean> {
  try {
    let d: Descriptor | undefined = entry
    if (isIndexType(d.mediaType)) {
      const idx = await layout.readJson<ImageIndex>(d)
      d = undefined
      for (const m of idx.manifests)
        if (await layout.hasBlob(m.digest)) {
          d = m
          break
        }
      if (!d) return false
    }
    const manifest = await layout.readJson<{ config?: Descriptor }>(d)
    if (!manifest.config || !(await layout.hasBlob(manifest.config.digest))) return false
    const cfg = await layout.readJson<{ config?: { Labels?: Record<string, string> } }>(manifest.config)
    return typeof cfg.config?.Labels?.[CATALOG_LABEL] === 'string'
  } catch {
    return false
  }
}

/** oc-mirror's release signature file names (release/signature.go): <tag>-sha256-<hex>. */
const SIGNATURE_FILE = /^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})-sha256-([a-f0-9]{64})$/

/**
 * HOOK for release signatures: whatever the payload holds under
 * RELEASE_SIGNATURES_DIR (oc-mirror archives bring them, see
 * builder/payload/names.ts) becomes the signature ConfigMap.
 */
export async function readReleaseSignatures(payloadDir: string, warnings: string[]): Promise<ReleaseSignatureFile[]> {
  const dir = join(payloadDir, RELEASE_SIGNATURES_DIR)
  const names = await readdir(dir).catch(() => [] as string[])
  const out: ReleaseSignatureFile[] = []
  for (const file of names.sort()) {
    const m = SIGNATURE_FILE.exec(file)
    if (!m) {
      warnings.push(
        `${RELEASE_SIGNATURES_DIR}/${file} in the payload is not named <tag>-sha256-<hex> like oc-mirror's release signatures: left out of the signature ConfigMap`,
      )
      continue
    }
    out.push({ file, hex: m[2]!, data: await readFile(join(dir, file)) })
  }
  return out
}

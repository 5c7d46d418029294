// The OpenShift hand-off: what a cluster needs to use the appliance, written
// at build time into openshift/ and, the same bytes, into the payload, from
// where first boot installs it under /root/mirror-appliance/openshift/:
//  - what oc-mirror v2 writes to working-dir/cluster-resources/ for the
//    content it mirrored (openshift/oc-mirror 855b64a3,
//    internal/pkg/clusterresources): ImageDigestMirrorSets and
//    ImageTagMirrorSets (idms.yaml, itms.yaml: builder/handoff/mirror-sets.ts),
//    a CatalogSource per operator catalog (cs-*.yaml), the release signature
//    ConfigMap (signature-configmap.json and .yaml);
//  - the install-config snippet (trust bundle, imageDigestSources), ca.crt,
//    and an oc-mirror v2 ImageSetConfiguration for the same content;
//  - in openshift/ only (secrets, never on media): the registry's pull
//    secret, alone and merged into the user's.

import { createHash } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from './atomic.js'
import { UserError } from './errors.js'
import { catalogSources } from './handoff/catalogs.js'
import { handoffContentFromConfig, handoffContentFromPayload, type HandoffContent, type HandoffImage } from './handoff/content.js'
import { imageDigestSources, mirrorSets, type MirrorCategory, type MirrorSet } from './handoff/mirror-sets.js'
import { formatImage } from './handoff/refs.js'
import {
  SIGNATURE_CONFIGMAP,
  SIGNATURE_LABEL,
  SIGNATURE_NAMESPACE,
  signatureConfigMapJson,
  signatureEntries,
} from './handoff/signatures.js'
import type { PayloadImage } from './payload/assemble.js'
import type { Plan } from './plan/types.js'
import { PAYLOAD_HANDOFF_DIR } from './registry/layout.js'
import { renderTemplate } from './render/templates.js'

export function registryAddress(plan: Plan): string {
  return `${plan.config.host.hostname}:${plan.config.registry.port}`
}

/** One file of the hand-off, by its name in openshift/. */
export interface HandoffFile {
  name: string
  contents: string
  mode: number
}

/**
 * metadata.name of a mirror set: oc-mirror's idms-<category>-0 with this
 * registry's host name instead of 0, so that the sets of the hosts of a fleet
 * (or of an appliance and of oc-mirror itself) do not replace one another
 * when applied to one cluster. A DNS-1123 subdomain, as Kubernetes requires.
 */
export function mirrorSetName(prefix: 'idms' | 'itms', category: MirrorCategory, hostname: string): string {
  const name = `${prefix}-${category}-${hostname.toLowerCase()}`
  if (name.length <= 253) return name
  return `${prefix}-${category}-${createHash('sha256').update(hostname).digest('hex').slice(0, 16)}`
}

/** The PEM's lines without carriage returns: a CRLF file must not put \r into install-config.yaml. */
export function pemLines(pem: string): string[] {
  return pem.replace(/\r\n?/g, '\n').trim().split('\n')
}

/**
 * The ImageSetConfiguration's additionalImages: repo:tag@digest as pinned
 * (tags kept), and targetRepo where oc-mirror would not put the image where
 * the mirror sets say it is: oc-mirror v2 puts an additional image at its
 * source's path (api/v2alpha1 AdditionalImage.TargetRepo replaces
 * image.ParseRef's PathComponent).
 */
export function imageSetImages(images: HandoffImage[]): { name: string; targetRepo?: string }[] {
  return images.flatMap((i) =>
    i.origin ? [{ name: formatImage(i.origin), ...(i.target !== i.origin.path ? { targetRepo: i.target } : {}) }] : [],
  )
}

/**
 * The hand-off files of one host, none of them secret: what goes into
 * openshift/ and, the same bytes, onto the host. `content` defaults to what
 * the config asks for (a build passes what the payload holds).
 */
export function openshiftHandoff(plan: Plan, content: HandoffContent = handoffContentFromConfig(plan.config)): HandoffFile[] {
  const registry = registryAddress(plan)
  const hostname = plan.config.host.hostname
  const meta = { createdBy: 'mirror-appliance', createdAt: new Date(plan.options.epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') }
  // An empty set still makes a valid document that `oc apply` takes.
  const named = (prefix: 'idms' | 'itms', sets: MirrorSet[]) =>
    (sets.length ? sets : [{ category: 'generic' as const, entries: [] }]).map((s) => ({
      ...s,
      name: mirrorSetName(prefix, s.category, hostname),
    }))
  const digestSets = mirrorSets(content.images, registry, 'digest')
  const tagSets = mirrorSets(content.images, registry, 'tag')
  const yaml = (name: string, template: string, data: object): HandoffFile => ({
    name,
    contents: renderTemplate(`templates/openshift/${template}`, data),
    mode: 0o644,
  })
  return [
    yaml('install-config-snippet.yaml', 'install-config-snippet.yaml.hbs', {
      registry,
      caLines: pemLines(plan.pki.caCertPem),
      digestSources: imageDigestSources(digestSets),
    }),
    yaml('idms.yaml', 'idms.yaml.hbs', { registry, ...meta, sets: named('idms', digestSets) }),
    yaml('itms.yaml', 'itms.yaml.hbs', { registry, ...meta, sets: named('itms', tagSets) }),
    ...catalogSources(content.images, registry).map((cs) => yaml(`${cs.name}.yaml`, 'catalogsource.yaml.hbs', { ...cs, ...meta })),
    ...signatureFiles(content, meta),
    yaml('imageset-config.yaml', 'imageset-config.yaml.hbs', { registry, images: imageSetImages(content.images) }),
    { name: 'ca.crt', contents: plan.pki.caCertPem, mode: 0o644 },
  ]
}

/** signature-configmap.json and .yaml, when the content has release signatures. */
function signatureFiles(content: HandoffContent, meta: { createdBy: string; createdAt: string }): HandoffFile[] {
  const entries = signatureEntries(content.signatures)
  if (!entries.length) return []
  return [
    { name: 'signature-configmap.json', contents: signatureConfigMapJson(entries, meta), mode: 0o644 },
    {
      name: 'signature-configmap.yaml',
      contents: renderTemplate('templates/openshift/signature-configmap.yaml.hbs', {
        entries,
        ...meta,
        label: SIGNATURE_LABEL,
        name: SIGNATURE_CONFIGMAP,
        namespace: SIGNATURE_NAMESPACE,
      }),
      mode: 0o644,
    },
  ]
}

/**
 * Put a host's hand-off into an assembled payload, under
 * openshift/<hostname>/, listed in the payload's SHA256SUMS: the install
 * checks the payload against them, and first boot installs the directory as
 * it is.
 */
export async function addHandoffToPayload(payloadDir: string, hostname: string, files: HandoffFile[]): Promise<void> {
  const rel = `${PAYLOAD_HANDOFF_DIR}/${hostname}`
  await mkdir(join(payloadDir, rel), { recursive: true })
  for (const f of files) await writeFileAtomic(join(payloadDir, rel, f.name), f.contents, { mode: f.mode })
  const ours = new Map(files.map((f) => [`${rel}/${f.name}`, createHash('sha256').update(f.contents).digest('hex')]))
  const kept = (await readFile(join(payloadDir, 'SHA256SUMS'), 'utf8')).split('\n').filter((l) => l && !ours.has(l.slice(66)))
  const lines = [...kept, ...[...ours].map(([path, hex]) => `${hex}  ${path}`)]
  await writeFileAtomic(join(payloadDir, 'SHA256SUMS'), lines.join('\n') + '\n')
}

export function pullSecret(plan: Plan): string {
  const { name } = plan.config.registry.initUser
  const auth = Buffer.from(`${name}:${plan.secrets.initPassword}`).toString('base64')
  return JSON.stringify({ auths: { [registryAddress(plan)]: { auth, email: plan.config.registry.initUser.email } } }) + '\n'
}

/**
 * The user's pull secret (e.g. from console.redhat.com) with the registry's
 * auth added: what the cluster's install-config pullSecret must hold. An entry
 * for the same registry address is replaced.
 */
export function mergePullSecret(userText: string, plan: Plan, file = 'the pull secret'): string {
  let parsed: unknown
  try {
    parsed = JSON.parse(userText)
  } catch (e) {
    throw new UserError(`${file}: not JSON (${(e as Error).message})`, 'pass the pull secret file downloaded from console.redhat.com')
  }
  const auths = (parsed as { auths?: unknown })?.auths
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    Array.isArray(parsed) ||
    typeof auths !== 'object' ||
    auths === null ||
    Array.isArray(auths)
  )
    throw new UserError(`${file}: has no "auths" object, so it is not a container pull secret`)
  const ours = JSON.parse(pullSecret(plan)).auths as Record<string, unknown>
  return JSON.stringify({ ...parsed, auths: { ...(auths as Record<string, unknown>), ...ours } }) + '\n'
}

export interface OpenshiftOptions {
  /** A pull secret file to merge the registry's auth into (build --pull-secret FILE) */
  userPullSecret?: string
  /** The hand-off files (openshiftHandoff); default: from the config's content */
  files?: HandoffFile[]
}

/** openshift/: the hand-off files, and the pull secrets (0600). Nothing is written when the user's pull secret is unusable. */
export function writeOpenshift(dir: string, plan: Plan, opts: OpenshiftOptions = {}): void {
  let merged: string | undefined
  if (opts.userPullSecret) {
    let text: string
    try {
      text = readFileSync(opts.userPullSecret, 'utf8')
    } catch (e) {
      throw new UserError(
        `--pull-secret ${opts.userPullSecret}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      )
    }
    merged = mergePullSecret(text, plan, `--pull-secret ${opts.userPullSecret}`)
  }
  const files: HandoffFile[] = [
    ...(opts.files ?? openshiftHandoff(plan)),
    // The pull secret carries the registry password: private like secrets/.
    { name: 'pull-secret.json', contents: pullSecret(plan), mode: 0o600 },
    ...(merged ? [{ name: 'pull-secret-merged.json', contents: merged, mode: 0o600 }] : []),
  ]
  mkdirSync(dir, { recursive: true })
  for (const f of files) {
    writeFileSync(join(dir, f.name), f.contents, { mode: f.mode })
    chmodSync(join(dir, f.name), f.mode)
  }
}

/**
 * A build's hand-off for one host, from what the assembled payload holds:
 * into the payload (openshift/<hostname>/, for first boot) and into outDir
 * (openshift/ of the build), the same bytes. Returns what the user should be
 * told about it.
 */
export async function writeHandoffFromPayload(o: {
  outDir: string
  plan: Plan
  payload: { images: PayloadImage[] }
  payloadDir: string
  userPullSecret?: string
}): Promise<string[]> {
  const content = await handoffContentFromPayload(o.plan.config, o.payload.images, o.payloadDir)
  const files = openshiftHandoff(o.plan, content)
  // The user's pull secret is read (and refused) before anything is written.
  writeOpenshift(o.outDir, o.plan, { files, ...(o.userPullSecret ? { userPullSecret: o.userPullSecret } : {}) })
  await addHandoffToPayload(o.payloadDir, o.plan.config.host.hostname, files)
  return content.warnings
}

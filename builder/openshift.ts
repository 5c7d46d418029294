// The OpenShift hand-off written at build time into openshift/: the
// install-config snippet (trust bundle, imageDigestSources), a pull secret
// entry for the registry (alone, and merged into the user's pull secret when
// one is given), an ImageDigestMirrorSet and an ImageTagMirrorSet for the
// pre-seeded content, and an oc-mirror v2 ImageSetConfiguration example.

import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from './errors.js'
import type { Plan } from './plan/types.js'
import { renderTemplate } from './render/templates.js'

export interface MirrorSource {
  /** Source repository, e.g. quay.io/org/app */
  source: string
  /** Mirror repository, e.g. mirror.example.internal:8443/org/app */
  mirror: string
}

export function registryAddress(plan: Plan): string {
  return `${plan.config.host.hostname}:${plan.config.registry.port}`
}

/** One mirror per distinct source repository of the content images. */
export function mirrorSources(plan: Plan): MirrorSource[] {
  const seen = new Map<string, MirrorSource>()
  for (const img of plan.config.content.images) {
    const source = img.ref.replace(/@.*$/, '').replace(/:[^/:]+$/, '')
    if (!seen.has(source)) seen.set(source, { source, mirror: `${registryAddress(plan)}/${img.target}` })
  }
  return [...seen.values()].sort((a, b) => (a.source < b.source ? -1 : 1))
}

export function pullSecret(plan: Plan): string {
  const { name } = plan.config.registry.initUser
  const auth = Buffer.from(`${name}:${plan.secrets.initPassword}`).toString('base64')
  return JSON.stringify({ auths: { [registryAddress(plan)]: { auth, email: plan.config.registry.initUser.email } } }) + '\n'
}

/** Sources of the content images named by a tag (not only by digest): what an ImageTagMirrorSet must cover. */
export function tagMirrorSources(plan: Plan): MirrorSource[] {
  const tagged = new Set(
    plan.config.content.images.filter((img) => !img.ref.includes('@') && /:[^/:]+$/.test(img.ref)).map((img) => img.ref.replace(/:[^/:]+$/, '')),
  )
  return mirrorSources(plan).filter((m) => tagged.has(m.source))
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
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || typeof auths !== 'object' || auths === null || Array.isArray(auths))
    throw new UserError(`${file}: has no "auths" object, so it is not a container pull secret`)
  const ours = JSON.parse(pullSecret(plan)).auths as Record<string, unknown>
  return JSON.stringify({ ...parsed, auths: { ...(auths as Record<string, unknown>), ...ours } }) + '\n'
}

export interface OpenshiftOptions {
  /** A pull secret file to merge the registry's auth into (build --pull-secret FILE) */
  userPullSecret?: string
}

export function writeOpenshift(dir: string, plan: Plan, opts: OpenshiftOptions = {}): void {
  let merged: string | undefined
  if (opts.userPullSecret) {
    let text: string
    try {
      text = readFileSync(opts.userPullSecret, 'utf8')
    } catch (e) {
      throw new UserError(`--pull-secret ${opts.userPullSecret}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`)
    }
    merged = mergePullSecret(text, plan, `--pull-secret ${opts.userPullSecret}`)
  }
  mkdirSync(dir, { recursive: true })
  const data = {
    registry: registryAddress(plan),
    caLines: plan.pki.caCertPem.trim().split('\n'),
    sources: mirrorSources(plan),
    tagSources: tagMirrorSources(plan),
    images: plan.config.content.images.map((i) => (i.digest && !i.ref.includes('@') ? `${i.ref.replace(/:[^/:]+$/, '')}@${i.digest}` : i.ref)),
  }
  const files: [string, string, number][] = [
    ['install-config-snippet.yaml', renderTemplate('templates/openshift/install-config-snippet.yaml.hbs', data), 0o644],
    ['idms.yaml', renderTemplate('templates/openshift/idms.yaml.hbs', data), 0o644],
    ['itms.yaml', renderTemplate('templates/openshift/itms.yaml.hbs', data), 0o644],
    ['imageset-config.yaml', renderTemplate('templates/openshift/imageset-config.yaml.hbs', data), 0o644],
    ['ca.crt', plan.pki.caCertPem, 0o644],
    // The pull secret carries the registry password: private like secrets/.
    ['pull-secret.json', pullSecret(plan), 0o600],
    ...(merged ? [['pull-secret-merged.json', merged, 0o600] as [string, string, number]] : []),
  ]
  for (const [name, text, mode] of files) {
    writeFileSync(join(dir, name), text, { mode })
    chmodSync(join(dir, name), mode)
  }
}

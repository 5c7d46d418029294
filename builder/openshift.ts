// The OpenShift hand-off written at build time into openshift/: the
// install-config snippet (trust bundle, imageDigestSources), a pull secret
// entry for the registry, and an ImageDigestMirrorSet for pre-seeded content.

import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
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

export function writeOpenshift(dir: string, plan: Plan): void {
  mkdirSync(dir, { recursive: true })
  const data = {
    registry: registryAddress(plan),
    caLines: plan.pki.caCertPem.trim().split('\n'),
    sources: mirrorSources(plan),
  }
  const files: [string, string, number][] = [
    ['install-config-snippet.yaml', renderTemplate('templates/openshift/install-config-snippet.yaml.hbs', data), 0o644],
    ['idms.yaml', renderTemplate('templates/openshift/idms.yaml.hbs', data), 0o644],
    ['ca.crt', plan.pki.caCertPem, 0o644],
    // The pull secret carries the registry password: private like secrets/.
    ['pull-secret.json', pullSecret(plan), 0o600],
  ]
  for (const [name, text, mode] of files) {
    writeFileSync(join(dir, name), text, { mode })
    chmodSync(join(dir, name), mode)
  }
}

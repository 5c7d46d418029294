// secrets/ of an output: what the next build into it reuses, and the
// credentials in a readable summary. Never copied onto media. The layout is
// the plan's (plan/secrets.ts): a site of one flat in secrets/, a fleet's CA
// once at the top and each host's own values under hosts/<hostname>/.

import { join } from 'node:path'
import type { SitePlan } from '../plan/site.js'
import type { Plan } from '../plan/types.js'
import { caSummary, serverCertSummary } from '../plan/pki.js'
import { FLEET_CA_FILE, writeFleetCa, writeStoredSecrets, type StoredSecrets } from '../plan/secrets.js'

/** One host's secrets: secrets.json (generated values, reused by the next build), the CA, and a readable summary. */
export function writeSecrets(dir: string, plan: Plan, stored: StoredSecrets): void {
  const { config, secrets, pki } = plan
  const lines = [
    `# Credentials of ${config.host.hostname}. Keep this directory private; it is never put on media.`,
    `registry: https://${config.host.hostname}:${config.registry.port}`,
    `registry user: ${config.registry.initUser.name}`,
    `registry password: ${config.registry.initUser.password !== undefined ? '(as given in the config)' : secrets.initPassword}`,
    `root password: ${stored.rootPassword ?? (config.host.root.kind === 'locked' ? '(locked)' : '(as given in the config)')}`,
    ...Object.entries(stored.userPasswords).map(([u, p]) => `user ${u} password: ${p}`),
    '',
  ]
  writeStoredSecrets(dir, stored, {
    'credentials.txt': lines.join('\n'),
    'ca.crt': pki.caCertPem,
    ...(pki.caKeyPem ? { 'ca.key': pki.caKeyPem } : {}),
  })
}

/** secrets/ for every host of the site; a shared CA key is written once, at the top, never in a host's directory. */
export function writeSiteSecrets(dir: string, site: SitePlan): void {
  if (site.sharedCa) writeFleetCa(dir, site.sharedCa)
  for (const h of site.hosts) {
    const { caKeyPem: _shared, ...pki } = h.plan.pki
    writeSecrets(join(dir, h.dir), site.sharedCa ? { ...h.plan, pki } : h.plan, h.stored)
  }
}

/** Each host's server certificate (reused, issued, reissued), and the CA when there is something to say of it: said by build and render. */
export function certificateLines(site: SitePlan): string[] {
  const lines = site.hosts.map(
    (h) => `${site.fleet ? `${h.hostname}: ` : ''}${serverCertSummary(h.plan.pki, `secrets/${h.dir ? `${h.dir}/` : ''}`)}`,
  )
  const ca = caSummary(site.hosts[0]!.plan.pki, ...(site.fleet ? [`secrets/${FLEET_CA_FILE}`] : []))
  return ca ? [...lines, ca] : lines
}

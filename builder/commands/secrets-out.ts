import type { Plan } from '../plan/types.js'
import { writeStoredSecrets, type StoredSecrets } from '../plan/secrets.js'

/** secrets/: secrets.json (generated values, reused by the next build), the CA, and a readable summary. */
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

// Plans for the kickstart / Butane / Ignition tests: the config through the
// real loader (or built in code for the fuzz test), secrets hashed with fixed
// salts, and a sample host spec shaped like the registry's (quadlets, a
// secret, a data dir with an SELinux type, a first-boot unit). The renderers
// must render whatever host spec they are given, so this one is ours and does
// not move when the registry's changes.
import { readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { loadConfigText } from '../builder/config/load.js'
import type { Config } from '../builder/config/types.js'
import { sha512crypt } from '../builder/plan/crypt.js'
import type { HostSpec, Plan } from '../builder/plan/types.js'

export function sampleHostSpec(config: Config): HostSpec {
  const port = config.registry.port
  return {
    dirs: [
      { path: '/etc/mirror-appliance', mode: 0o755, owner: 'root', group: 'root' },
      { path: '/etc/mirror-appliance/tls', mode: 0o700, owner: 'root', group: 'root' },
      { path: config.registry.dataDir, mode: 0o750, owner: 'root', group: 'root', selinuxType: 'container_file_t' },
    ],
    files: [
      {
        path: '/etc/containers/systemd/registry.container',
        contents: `[Unit]\nDescription=Mirror registry\n\n[Container]\nImage=localhost/registry:2\nPublishPort=${port}:5000\nVolume=${config.registry.dataDir}:/var/lib/registry:Z\nPodmanArgs=--pull=never\n\n[Service]\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n`,
        mode: 0o644,
        owner: 'root',
        group: 'root',
      },
      {
        path: '/etc/mirror-appliance/tls/server.key',
        contents: '-----BEGIN PRIVATE KEY-----\nnot a real key\n-----END PRIVATE KEY-----\n',
        mode: 0o600,
        owner: 'root',
        group: 'root',
        secret: true,
      },
      {
        path: '/usr/local/libexec/mirror-appliance-firstboot',
        contents: '#!/bin/bash\n# first boot\nset -euo pipefail\necho "%end is not the end here" # $(not run)\n',
        mode: 0o755,
        owner: 'root',
        group: 'root',
      },
      {
        path: '/etc/systemd/system/mirror-appliance-firstboot.service',
        contents: '[Unit]\nDescription=First boot\nAfter=network-online.target\n\n[Service]\nType=oneshot\nExecStart=/usr/local/libexec/mirror-appliance-firstboot\n\n[Install]\nWantedBy=multi-user.target\n',
        mode: 0o644,
        owner: 'root',
        group: 'root',
      },
      { path: '/etc/mirror-appliance/empty', contents: '', mode: 0o644, owner: 'root', group: 'root' },
      { path: '/etc/mirror-appliance/binary.bin', contents: Buffer.from([0, 1, 2, 255, 10, 37, 101, 110, 100]), mode: 0o640, owner: 'root', group: 'root', selinuxType: 'container_file_t' },
    ],
    enableUnits: ['mirror-appliance-firstboot.service'],
    disableUnits: ['kdump.service'],
    firewallPorts: [`${port}/tcp`],
  }
}

/** Fixed-salt hashes so golden files do not change run to run. */
export function planFor(config: Config, digest: string, host: HostSpec = sampleHostSpec(config)): Plan {
  const hash = (p: { kind: string; plain?: string; hash?: string }, salt: string): string | null =>
    p.kind === 'plain' ? sha512crypt(p.plain!, salt) : p.kind === 'hash' ? p.hash! : p.kind === 'generate' ? sha512crypt('generated-' + salt, salt) : null
  const userPasswordHashes: Record<string, string> = {}
  for (const u of config.host.users) {
    const h = hash(u.password, `salt${u.name}`.slice(0, 16))
    if (h) userPasswordHashes[u.name] = h
  }
  return {
    config,
    configPath: '/fixture/appliance.yaml',
    configDigest: digest,
    options: { epoch: 1700000000 },
    secrets: {
      rootPasswordHash: hash(config.host.root, 'rootsalt'),
      userPasswordHashes,
      initPassword: 'init-password',
      redisPassword: 'redis-password',
      quaySecretKey: 'k1',
      quayDatabaseSecretKey: 'k2',
    },
    pki: {
      caCertPem: 'CA',
      serverCertPem: 'CERT',
      serverKeyPem: 'KEY',
      serverChainPem: 'CHAIN',
      dnsNames: [config.host.hostname],
      ipAddresses: [],
      notBefore: new Date(0),
      notAfter: new Date(0),
    },
    host,
  }
}

/** A fixture's appliance.yaml through the real loader. */
export function loadFixture(file: string): { config: Config; plan: Plan } {
  const loaded = loadConfigText(readFileSync(file), file, { baseDir: dirname(file) })
  return { config: loaded.config, plan: planFor(loaded.config, loaded.digest) }
}

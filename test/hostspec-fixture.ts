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
import { resolveStack } from '../builder/payload/lock.js'

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
        contents:
          '[Unit]\nDescription=First boot\nAfter=network-online.target\n\n[Service]\nType=oneshot\nExecStart=/usr/local/libexec/mirror-appliance-firstboot\n\n[Install]\nWantedBy=multi-user.target\n',
        mode: 0o644,
        owner: 'root',
        group: 'root',
      },
      { path: '/etc/mirror-appliance/empty', contents: '', mode: 0o644, owner: 'root', group: 'root' },
      {
        path: '/etc/mirror-appliance/binary.bin',
        contents: Buffer.from([0, 1, 2, 255, 10, 37, 101, 110, 100]),
        mode: 0o640,
        owner: 'root',
        group: 'root',
        selinuxType: 'container_file_t',
      },
    ],
    enableUnits: ['mirror-appliance-firstboot.service'],
    disableUnits: ['kdump.service'],
    firewallPorts: [`${port}/tcp`],
  }
}

/** Fixed-salt hashes so golden files do not change run to run. */
export function planFor(config: Config, digest: string, host: HostSpec = sampleHostSpec(config)): Plan {
  const hash = (p: { kind: string; plain?: string; hash?: string }, salt: string): string | null =>
    p.kind === 'plain'
      ? sha512crypt(p.plain!, salt)
      : p.kind === 'hash'
        ? p.hash!
        : p.kind === 'generate'
          ? sha512crypt('generated-' + salt, salt)
          : null
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
    stack: resolveStack(config),
  }
}

/** A fixture's appliance.yaml through the real loader. */
export function loadFixture(file: string): { config: Config; plan: Plan } {
  const loaded = loadConfigText(readFileSync(file), file, { baseDir: dirname(file) })
  return { config: loaded.config, plan: planFor(loaded.config, loaded.digest) }
}

// ---- reading a kickstart back the way pykickstart does ----------------------

/** Python's str.splitlines() boundaries (what pykickstart splits ks.cfg with). */
export const splitLines = (text: string): string[] => text.split(/\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/)

export interface KsStructure {
  /** Command lines outside sections (comments and blanks dropped) */
  commands: string[]
  sections: { header: string; body: string[] }[]
  /** Problems pykickstart would have (or would silently act on) */
  problems: string[]
}

const KNOWN_SECTIONS = [
  '%pre',
  '%pre-install',
  '%post',
  '%traceback',
  '%onerror',
  '%packages',
  '%addon',
  '%anaconda',
  '%include',
  '%ksappend',
  '%end',
]

/** Sections as pykickstart's _stateMachine/_readSection see them. */
export function ksStructure(text: string): KsStructure {
  const out: KsStructure = { commands: [], sections: [], problems: [] }
  const lines = splitLines(text)
  if (lines.at(-1) === '') lines.pop()
  let current: { header: string; body: string[] } | null = null
  lines.forEach((line, i) => {
    const stripped = line.trimStart()
    if (stripped.startsWith('%ksappend')) out.problems.push(`line ${i + 1}: %ksappend is preprocessed anywhere`)
    if (current) {
      const first = stripped.split(/\s+/)[0] ?? ''
      if (stripped.startsWith('%') && KNOWN_SECTIONS.includes(first)) {
        if (first === '%end') {
          out.sections.push(current)
          current = null
        } else out.problems.push(`line ${i + 1}: ${first} inside ${current.header}`)
        return
      }
      current.body.push(line)
      return
    }
    if (stripped === '' || stripped.startsWith('#')) return
    if (stripped.startsWith('%')) current = { header: stripped, body: [] }
    else out.commands.push(line)
  })
  if (current) out.problems.push(`section ${(current as { header: string }).header} has no %end`)
  return out
}

/** Each command line split as pykickstart does: shlex.split(line, comments=True), by Python itself. */
export async function shlexSplit(lines: string[]): Promise<string[][]> {
  const { run } = await import('../builder/exec.js')
  const py = 'import sys,shlex,json\nprint(json.dumps([shlex.split(l, comments=True) for l in json.load(sys.stdin)]))'
  const r = await run('python3', ['-c', py], { input: JSON.stringify(lines), why: 'to read kickstart lines as pykickstart does' })
  return JSON.parse(r.stdout) as string[][]
}

/** The command line of a %post section header ('%post --nochroot …'). */
export const postSections = (s: KsStructure) => s.sections.filter((x) => x.header.startsWith('%post'))

// ---- what each rendering lays down, in one comparable shape ------------------

export interface Laid {
  dirs: { path: string; mode: number; owner: string }[]
  files: { path: string; mode: number; owner: string; contents: string }[]
  enabled: string[]
  disabled: string[]
}
const byPath = <T extends { path: string }>(a: T[]) => [...a].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0))
const b64 = (c: string | Buffer) => (typeof c === 'string' ? Buffer.from(c, 'utf8') : c).toString('base64')

/** The host model itself (what the renderers were given). */
export function laidFromModel(m: import('../builder/render/host-model.js').HostModel): Laid {
  return {
    dirs: byPath(m.dirs.map((d) => ({ path: d.path, mode: d.mode, owner: `${d.owner}:${d.group}` }))),
    files: byPath(m.files.map((f) => ({ path: f.path, mode: f.mode, owner: `${f.owner}:${f.group}`, contents: b64(f.contents) }))),
    enabled: [...m.enableUnits].sort(),
    disabled: [...m.disableUnits].sort(),
  }
}

/** Ignition JSON or Butane YAML (parsed), read back. */
export function laidFromIgnitionLike(doc: any, butane: boolean): Laid {
  const decode = (c: any): string => {
    if (butane && typeof c.inline === 'string') return b64(c.inline)
    const m = /^data:;base64,(.*)$/.exec(c.source)
    if (!m) throw new Error(`not a base64 data URL: ${c.source}`)
    return m[1]!
  }
  // {id: N} or {name: S} (Ignition's NodeUser/NodeGroup), as chown would take it
  const who = (o: any): string => (o.id !== undefined ? String(o.id) : o.name)
  return {
    dirs: byPath(
      (doc.storage.directories ?? []).map((d: any) => ({ path: d.path, mode: d.mode, owner: `${who(d.user)}:${who(d.group)}` })),
    ),
    files: byPath(
      (doc.storage.files ?? []).map((f: any) => ({
        path: f.path,
        mode: f.mode,
        owner: `${who(f.user)}:${who(f.group)}`,
        contents: decode(f.contents),
      })),
    ),
    enabled: (doc.systemd.units ?? [])
      .filter((u: any) => u.enabled === true)
      .map((u: any) => u.name)
      .sort(),
    disabled: (doc.systemd.units ?? [])
      .filter((u: any) => u.enabled === false)
      .map((u: any) => u.name)
      .sort(),
  }
}

/**
 * Run the host-spec part of the kickstart's %post with bash, its / rebased to
 * a temp dir; chown, semanage, restorecon, systemctl and firewall-offline-cmd
 * are recorded instead of run. Returns what it laid down plus the raw calls.
 */
export async function laidFromKickstart(ks: string, tmp: string): Promise<Laid & { calls: string[][] }> {
  const { readFileSync, readdirSync, lstatSync, mkdirSync, writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { run } = await import('../builder/exec.js')
  const { HOSTSPEC_BEGIN, HOSTSPEC_END } = await import('../builder/render/kickstart.js')
  const start = ks.indexOf(HOSTSPEC_BEGIN + '\n')
  const end = ks.indexOf(HOSTSPEC_END + '\n')
  if (start < 0 || end < start) throw new Error('host spec markers not found in the kickstart')
  const block = ks.slice(start, end)
  if ((block.match(/^root=$/gm) ?? []).length !== 1) throw new Error('expected exactly one "root=" line in the host spec block')
  const root = join(tmp, 'root')
  const log = join(tmp, 'calls.log')
  mkdirSync(root, { recursive: true })
  writeFileSync(log, '')
  const script =
    'set -euo pipefail\n' +
    `record() { printf '%s\\0' "$#" "$@" >> "$CALL_LOG"; }\n` +
    'chown() { record chown "$@"; }\nsemanage() { record semanage "$@"; }\nrestorecon() { record restorecon "$@"; }\n' +
    'systemctl() { record systemctl "$@"; }\nfirewall-offline-cmd() { record firewall-offline-cmd "$@"; }\n' +
    block.replace(/^root=$/m, 'root=$FAKE_ROOT')
  writeFileSync(join(tmp, 'hostspec.sh'), script)
  await run('bash', [join(tmp, 'hostspec.sh')], { env: { FAKE_ROOT: root, CALL_LOG: log } })

  const fields = readFileSync(log, 'utf8').split('\0')
  const calls: string[][] = []
  for (let i = 0; i < fields.length - 1;) {
    const n = Number(fields[i])
    calls.push(fields.slice(i + 1, i + 1 + n))
    i += n + 1
  }
  const owners = new Map<string, string>()
  for (const c of calls) if (c[0] === 'chown' && c[1] === '--') owners.set(c[3]!.slice(root.length), c[2]!)
  const laid: Laid & { calls: string[][] } = { dirs: [], files: [], enabled: [], disabled: [], calls }
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel))) {
      const p = `${rel}/${name}`
      const st = lstatSync(join(root, p))
      // parents that mkdir -p made on the way have no chown: not part of the spec
      if (st.isDirectory()) {
        if (owners.has(p)) laid.dirs.push({ path: p, mode: st.mode & 0o7777, owner: owners.get(p)! })
        walk(p)
      } else
        laid.files.push({
          path: p,
          mode: st.mode & 0o7777,
          owner: owners.get(p) ?? '?',
          contents: readFileSync(join(root, p)).toString('base64'),
        })
    }
  }
  walk('')
  laid.dirs = byPath(laid.dirs)
  laid.files = byPath(laid.files)
  laid.enabled = calls
    .filter((c) => c[0] === 'systemctl' && c[1] === 'enable')
    .map((c) => c[3]!)
    .sort()
  laid.disabled = calls
    .filter((c) => c[0] === 'systemctl' && c[1] === 'disable')
    .map((c) => c[3]!)
    .sort()
  return laid
}

/** bash -n and shellcheck -s bash on one %post body; returns their complaints ('' when clean). */
export async function lintBash(body: string, tmp: string, name: string): Promise<string> {
  const { writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { run } = await import('../builder/exec.js')
  const file = join(tmp, name)
  writeFileSync(file, body)
  const n = await run('bash', ['-n', file], { nothrow: true })
  const sc = await run('shellcheck', ['-s', 'bash', '-f', 'gcc', file], { nothrow: true, why: 'to lint %post sections' })
  return [n.code ? `bash -n: ${n.stderr}` : '', sc.code ? `shellcheck: ${sc.stdout}${sc.stderr}` : ''].filter(Boolean).join('\n')
}

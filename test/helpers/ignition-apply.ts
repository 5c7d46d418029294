// Apply an Ignition config with the real Ignition binary (Debian's `ignition`
// package, 2.14.0) onto a scratch root, the way the initramfs runs it: the
// `file` platform reads the config named by IGNITION_CONFIG_FILE, stage
// `fetch-offline` fetches and caches it, stage `files` writes users, files,
// directories and unit presets under `-root`. Followed: coreos/ignition
// v2.14.0 (ea104f3639591bfbdc8ec8a2ebb831b524b85aaa): internal/main.go
// (flags), internal/providers/file/file.go (IGNITION_CONFIG_FILE),
// internal/distro/distro.go (IGNITION_SYSTEM_CONFIG_DIR, helper commands
// looked up on PATH), internal/exec/stages/files/ (passwd, then files and
// directories, then /etc/systemd/system-preset/20-ignition.preset, then
// setfiles over every path it wrote), internal/exec/util/selinux.go.
//
// The scratch root holds only STAND-INS for what a RHEL 8 root has before
// Ignition runs, each one because Ignition needs it: /etc/passwd, group,
// shadow, gshadow with root and the `wheel` group (useradd --groups wheel),
// /etc/login.defs with RHEL's account ranges (useradd picks uids and makes a
// group per user from it), /root and /home, and /etc/selinux/config naming the
// `targeted` policy (the files stage asks setfiles to relabel what it wrote).
// `setfiles` itself is a stand-in first on PATH that records what Ignition
// asked to relabel: Debian has no RHEL policy to label with.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { run } from '../../builder/exec.js'

/** Ignition's own path from the package's file list (`dpkg -L ignition`), or null when the package is not installed. */
export async function findIgnition(): Promise<string | null> {
  const r = await run('dpkg', ['-L', 'ignition'], { nothrow: true, why: 'to find the Ignition binary of Debian’s ignition package' })
  if (r.code !== 0) return null
  const path = r.stdout.split('\n').find((l) => l.endsWith('/30ignition/ignition'))
  return path && existsSync(path) ? path : null
}

/** Where the preset Ignition writes for systemd.units[].enabled lives (internal/exec/util/unit.go, PresetPath). */
export const PRESET = '/etc/systemd/system-preset/20-ignition.preset'

/** The stand-in base: what the test puts there before Ignition runs (not Ignition's work). */
export const STAND_IN_FILES = ['/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow', '/etc/login.defs', '/etc/selinux/config']
export const STAND_IN_DIRS = ['/etc', '/etc/selinux', '/root', '/home']

/** Files useradd/usermod and Ignition write for their own bookkeeping. */
export const BOOKKEEPING_FILES = [
  '/etc/passwd-',
  '/etc/group-',
  '/etc/shadow-',
  '/etc/gshadow-',
  '/etc/.pwd.lock',
  '/etc/.ignition-result.json',
  PRESET,
]

/** A scratch root with the stand-ins above. */
export function rhelLikeRoot(root: string): void {
  for (const d of STAND_IN_DIRS) mkdirSync(join(root, d), { recursive: true })
  chmodSync(join(root, 'root'), 0o550)
  const write = (path: string, text: string, mode: number) => {
    writeFileSync(join(root, path), text)
    chmodSync(join(root, path), mode)
  }
  write('/etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n', 0o644)
  write('/etc/group', 'root:x:0:\nwheel:x:10:\n', 0o644)
  // root locked until someone sets a password, as a fresh install leaves it
  write('/etc/shadow', 'root:!!:19000:0:99999:7:::\n', 0o000)
  write('/etc/gshadow', 'root:::\nwheel:::\n', 0o000)
  write(
    '/etc/login.defs',
    'UID_MIN 1000\nUID_MAX 60000\nSYS_UID_MIN 201\nSYS_UID_MAX 999\nGID_MIN 1000\nGID_MAX 60000\nSYS_GID_MIN 201\nSYS_GID_MAX 999\nCREATE_HOME yes\nUSERGROUPS_ENAB yes\nENCRYPT_METHOD SHA512\n',
    0o644,
  )
  write('/etc/selinux/config', 'SELINUX=enforcing\nSELINUXTYPE=targeted\n', 0o644)
}

export interface IgnitionRun {
  /** Both stages passed */
  ok: boolean
  /** Stage logs (Ignition logs to stdout with -log-to-stdout) */
  log: string
  /** The CRITICAL lines, where Ignition says why it stopped */
  critical: string[]
  /** Absolute paths Ignition asked setfiles to relabel */
  relabeled: string[]
}

/** Run stages fetch-offline then files of `ignition` with config file `config` onto `root`, its state under `work`. */
export async function applyIgnition(ignition: string, config: string, root: string, work: string): Promise<IgnitionRun> {
  const bin = join(work, 'bin')
  const empty = join(work, 'system-config')
  for (const d of [bin, empty]) mkdirSync(d, { recursive: true })
  const relabelList = join(work, 'relabel.list')
  writeFileSync(
    join(bin, 'setfiles'),
    // stand-in: Ignition passes -vF0 -r ROOT FILE_CONTEXTS -f - and the paths NUL-separated on stdin
    `#!/bin/sh\ncat >> '${relabelList}'\n`,
  )
  chmodSync(join(bin, 'setfiles'), 0o755)
  writeFileSync(relabelList, '')
  const env = {
    IGNITION_CONFIG_FILE: config,
    // base configs a machine may have in /usr/lib/ignition must not leak in
    IGNITION_SYSTEM_CONFIG_DIR: empty,
    PATH: `${bin}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
  }
  let log = ''
  for (const stage of ['fetch-offline', 'files']) {
    const args = ['-platform', 'file', '-stage', stage, '-root', root, '-log-to-stdout']
    args.push('-config-cache', join(work, 'ignition.json'), '-state-file', join(work, 'state'), '-neednet', join(work, 'neednet'))
    const r = await run(ignition, args, { env, nothrow: true, why: 'to apply appliance.ign as the initramfs does' })
    log += `== ${stage} (exit ${r.code})\n${r.stdout}${r.stderr}`
    if (r.code !== 0) return { ok: false, log, critical: criticalLines(log), relabeled: [] }
  }
  const relabeled = readFileSync(relabelList, 'utf8').split('\0').filter(Boolean)
  return { ok: true, log, critical: criticalLines(log), relabeled }
}

const criticalLines = (log: string) => log.split('\n').filter((l) => l.startsWith('CRITICAL'))

/** name → id from a passwd or group file of the scratch root. */
export function idsOf(file: string): Map<string, number> {
  const ids = new Map<string, number>()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':')
    if (f.length > 2) ids.set(f[0]!, Number(f[2]))
  }
  return ids
}

/** Every path under root, relative with a leading / (a directory before its contents). */
export function walk(root: string, rel = ''): string[] {
  return readdirSync(join(root, rel), { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((e) => {
      const p = `${rel}/${e.name}`
      return e.isDirectory() ? [p, ...walk(root, p)] : [p]
    })
}

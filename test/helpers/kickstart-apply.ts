// Apply a kickstart to a root directory the way Anaconda does once it has
// installed the packages, for the kickstart route's end-to-end test.
// Anaconda itself is not available here (no RHEL installer, no Red Hat
// content), so this is an emulation, and says so:
//
// - The commands that matter for a booted host are done minimally, each in
//   EMULATED (printed by the tests): rootpw, user, sshkey, network
//   --hostname, timezone, lang, services. selinux and firewall are recorded
//   and NOT applied: the Debian stand-in has neither SELinux nor firewalld.
//   Everything else (partitioning, %packages, bootloader, …, see
//   BASE_GUEST_IS) is what the base guest already is.
// - Then every %post section, in file order as Anaconda runs them (our
//   kickstart puts the --nochroot one first), in ONE private mount namespace
//   (`unshare -m`, bind mounts and tmpfs only, no loop mounts) that looks like
//   Anaconda's installer environment: the new root bind-mounted at
//   /mnt/sysimage with /proc, /sys, /dev and /run inside it; a private /tmp,
//   /run and /dev; the install source (optional) at /run/install/repo; and a
//   medium with a volume label (OEMDRV) as /dev/disk/by-label/LABEL. That
//   medium is a directory here (the content of oemdrv.iso, extracted with
//   xorriso): `mount … /dev/disk/by-label/LABEL DIR` becomes a read-only bind
//   mount of it through a `mount` wrapper first on the installer's PATH
//   (INSTALLER_SHIMS); every other mount is the real one.
// - Each script is written to /tmp/ks-script-N (inside the root for a
//   chrooted one), run as `INTERPRETER /tmp/ks-script-N` (`chroot ROOT
//   INTERPRETER …` for a chrooted one; default /bin/sh) with stdout and stderr
//   to --log (inside the root for a chrooted one) or to
//   /tmp/ks-script-N.log, like pyanaconda's AnacondaKSScript.run, which
//   never removes the script (anaconda 33, RHEL 8: mkstemp("", "ks-script-",
//   sysroot + "/tmp")): a chrooted one stays in the new system's /tmp.
// - The kickstart is left in the new system as Anaconda leaves it:
//   /root/original-ks.cfg (the file given) and /root/anaconda-ks.cfg (0600
//   both). Anaconda regenerates the latter with pykickstart, which writes the
//   %post bodies verbatim; emulated as the given text under a first line
//   saying so.
//   A failure of an --erroronfail script stops there (Anaconda halts the
//   install): applyKickstart throws with the script's log. Other failures
//   are reported and the install goes on.
// - Commands from %packages the stand-in lacks (firewall-offline-cmd,
//   semanage, restorecon) are recording shims on the chroot's PATH
//   (CHROOT_SHIMS), only where the root has no such command; their calls are
//   in the report.

import { appendFile, chmod, chown, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { run } from '../../builder/exec.js'
import { guestImageFromRoot } from './guest-image.js'

// ---- parsing ----

export interface KsCommand {
  name: string
  /** Arguments after the command name, split like pykickstart (shlex.split, posix, comments) */
  args: string[]
  /** 1-based line number in the file */
  line: number
}

export interface KsScriptOptions {
  nochroot: boolean
  /** --interpreter (default /bin/sh, as Anaconda) */
  interpreter: string
  erroronfail: boolean
  /** --log / --logfile */
  log?: string
}

export interface KsSection {
  /** pre, post, packages, … (the header without % and options) */
  kind: string
  /** The header line as written */
  header: string
  /** Options of the header, split like the commands */
  args: string[]
  /** For %pre/%post/%pre-install/%onerror/%traceback */
  script?: KsScriptOptions
  /** Lines between the header and %end, each ending in a newline */
  body: string
  /** 1-based line of the header */
  line: number
}

export interface ParsedKickstart {
  commands: KsCommand[]
  sections: KsSection[]
}

const SCRIPT_KINDS = new Set(['pre', 'pre-install', 'post', 'onerror', 'traceback'])

/** One line split the way pykickstart does (shlex.split(line, comments=True)): posix quoting, # starts a comment outside quotes. */
export function splitKsLine(line: string): string[] {
  const out: string[] = []
  let tok = ''
  let inTok = false
  let i = 0
  while (i < line.length) {
    const c = line[i]!
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      if (inTok) out.push(tok)
      tok = ''
      inTok = false
      i++
    } else if (c === '#') {
      break
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1)
      if (end < 0) throw new Error(`no closing quotation: ${line}`)
      tok += line.slice(i + 1, end)
      inTok = true
      i = end + 1
    } else if (c === '"') {
      i++
      inTok = true
      for (;;) {
        if (i >= line.length) throw new Error(`no closing quotation: ${line}`)
        const d = line[i]!
        if (d === '"') break
        if (d === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) {
          tok += line[i + 1]
          i += 2
        } else {
          tok += d
          i++
        }
      }
      i++
    } else if (c === '\\') {
      if (i + 1 < line.length) tok += line[i + 1]
      inTok = true
      i += 2
    } else {
      tok += c
      inTok = true
      i++
    }
  }
  if (inTok) out.push(tok)
  return out
}

/** Options of a command or header: --name=value, --name value (for names in takesValue), --flag; and the positional arguments. */
export function ksOptions(
  args: readonly string[],
  takesValue: readonly string[] = [],
): { opts: Map<string, string | true>; positional: string[] } {
  const opts = new Map<string, string | true>()
  const positional: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const m = /^--([A-Za-z0-9-]+)(?:=(.*))?$/s.exec(a)
    if (!m) positional.push(a)
    else if (m[2] !== undefined) opts.set(m[1]!, m[2])
    else if (takesValue.includes(m[1]!) && i + 1 < args.length) opts.set(m[1]!, args[++i]!)
    else opts.set(m[1]!, true)
  }
  return { opts, positional }
}

function scriptOptions(kind: string, args: string[], line: number): KsScriptOptions {
  const { opts, positional } = ksOptions(args, ['interpreter', 'log', 'logfile'])
  const known = new Set(['nochroot', 'interpreter', 'erroronfail', 'log', 'logfile'])
  const unknown = [...opts.keys()].filter((k) => !known.has(k))
  if (unknown.length || positional.length)
    throw new Error(
      `line ${line}: %${kind}: options this helper does not know: ${[...unknown.map((u) => `--${u}`), ...positional].join(' ')}`,
    )
  const val = (k: string) => {
    const v = opts.get(k)
    if (v === true) throw new Error(`line ${line}: %${kind} --${k} needs a value`)
    return v
  }
  const log = val('log') ?? val('logfile')
  return {
    nochroot: opts.has('nochroot'),
    interpreter: val('interpreter') ?? '/bin/sh',
    erroronfail: opts.has('erroronfail'),
    ...(log ? { log } : {}),
  }
}

/** Commands outside sections, and sections (a %header with options up to %end), like pykickstart. */
export function parseKickstart(text: string): ParsedKickstart {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  const commands: KsCommand[] = []
  const sections: KsSection[] = []
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!
    const trimmed = raw.trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    if (trimmed.startsWith('%')) {
      const [head, ...args] = splitKsLine(trimmed)
      const kind = head!.slice(1)
      if (kind === 'end') throw new Error(`line ${i + 1}: %end outside a section`)
      if (kind === 'include' || kind === 'ksappend') throw new Error(`line ${i + 1}: %${kind} is not supported by this helper`)
      const start = i
      let body = ''
      for (i++; i < lines.length && lines[i]!.trim() !== '%end'; i++) body += lines[i] + '\n'
      if (i >= lines.length) throw new Error(`line ${start + 1}: %${kind} has no %end`)
      sections.push({
        kind,
        header: trimmed,
        args,
        ...(SCRIPT_KINDS.has(kind) ? { script: scriptOptions(kind, args, start + 1) } : {}),
        body,
        line: start + 1,
      })
      continue
    }
    const [name, ...args] = splitKsLine(raw)
    if (name) commands.push({ name, args, line: i + 1 })
  }
  return { commands, sections }
}

// ---- what is emulated ----

/** The Anaconda commands this helper carries out on the root, and how. Printed by the tests. */
export const EMULATED: { command: string; how: string }[] = [
  { command: 'rootpw', how: '--iscrypted HASH: `usermod -p HASH root` in the root; --lock: `passwd -l root`' },
  {
    command: 'user',
    how: "`groupadd` for each of --groups the root lacks (and `groupadd -g GID NAME` for a --gid no group has), then `useradd -g GID|-U -d HOME -m -s SHELL [-u UID] [-c GECOS] -G GROUPS -p HASH NAME` in the root (shell default /bin/bash: RHEL's useradd default); --lock: no password",
  },
  { command: 'sshkey', how: 'appended to ~USER/.ssh/authorized_keys (directory 0700, file 0600, owned by the user)' },
  {
    command: 'network',
    how: "--hostname: /etc/hostname; --bootproto=dhcp: the stand-in's systemd-networkd DHCP fallback on eth0 (Anaconda writes an ifcfg file for NetworkManager); static addresses are refused",
  },
  {
    command: 'timezone',
    how: '/etc/localtime -> /usr/share/zoneinfo/ZONE; --utc: /etc/adjtime says UTC; --ntpservers: not applied (no chrony on the stand-in)',
  },
  { command: 'lang', how: '/etc/locale.conf LANG=… (the locale itself is not generated on the stand-in)' },
  {
    command: 'services',
    how: "`systemctl enable` in the root for each --enabled unit the root has (sshd is Debian's ssh.service); the others (chronyd, firewalld) are named as absent",
  },
  { command: 'selinux', how: 'recorded, NOT applied: the stand-in has no SELinux (RHEL writes SELINUX=… to /etc/selinux/config)' },
  {
    command: 'firewall',
    how: 'recorded, NOT applied: the stand-in has no firewalld (RHEL runs firewall-offline-cmd with these services and ports)',
  },
]

/** Commands whose effect is what the base guest already is (disk, packages, boot loader, installer UI). */
export const BASE_GUEST_IS = [
  'text',
  'graphical',
  'cmdline',
  'eula',
  'firstboot',
  'cdrom',
  'url',
  'harddrive',
  'reboot',
  'poweroff',
  'halt',
  'shutdown',
  'keyboard',
  'ignoredisk',
  'zerombr',
  'clearpart',
  'bootloader',
  'reqpart',
  'part',
  'partition',
  'volgroup',
  'logvol',
  'autopart',
]

/** Wrappers on the installer's PATH for the %post --nochroot scripts. */
export const INSTALLER_SHIMS: { name: string; why: string }[] = [
  {
    name: 'mount',
    why: 'the labelled medium (OEMDRV) is a directory here, not a block device: `mount … /dev/disk/by-label/LABEL DIR` becomes a read-only bind mount of its content; every other call runs the real mount',
  },
]

/** Recording stand-ins, on the chroot's PATH only where the root lacks the command. */
export const CHROOT_SHIMS: { name: string; why: string }[] = [
  { name: 'firewall-offline-cmd', why: 'firewalld (%packages) is not on the Debian stand-in: the call is recorded, no port is opened' },
  { name: 'semanage', why: 'no SELinux on the stand-in (policycoreutils-python-utils in %packages): recorded' },
  { name: 'restorecon', why: 'no SELinux on the stand-in: recorded' },
]

// ---- applying ----

export interface ApplyOptions {
  /** Volume label -> directory with that medium's files (e.g. OEMDRV -> oemdrv.iso extracted) */
  media?: Record<string, string>
  /** The installation source Anaconda mounts at /run/install/repo (the remastered ISO's files for a cdrom kickstart) */
  repo?: string
  log?: (line: string) => void
}

export interface ScriptRun {
  line: number
  header: string
  rc: number
  /** Where its output went (inside the root for a chrooted one), and that output */
  logFile: string
  output: string
}

export interface ApplyReport {
  /** One line per command: what was done, or why not */
  commands: string[]
  scripts: ScriptRun[]
  /** Calls of the chroot shims and of the medium mount, as `name args` */
  shimCalls: string[]
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

const chrootRun = (root: string, args: string[], why: string) => run('chroot', [root, ...args], { why })

async function passwdEntry(root: string, user: string): Promise<{ uid: number; gid: number; home: string } | undefined> {
  for (const l of (await readFile(join(root, 'etc/passwd'), 'utf8')).split('\n')) {
    const f = l.split(':')
    if (f[0] === user) return { uid: Number(f[2]), gid: Number(f[3]), home: f[5]! }
  }
  return undefined
}

async function groupWithGid(root: string, gid: string): Promise<boolean> {
  return (await readFile(join(root, 'etc/group'), 'utf8')).split('\n').some((l) => l.split(':')[2] === gid)
}

async function hasGroup(root: string, group: string): Promise<boolean> {
  return (await readFile(join(root, 'etc/group'), 'utf8')).split('\n').some((l) => l.split(':')[0] === group)
}

/** The unit file's name in root, an alias (a symlink in /etc/systemd/system, like Debian's sshd.service) resolved to its unit; undefined when absent. */
async function unitIn(root: string, unit: string): Promise<string | undefined> {
  const alias = join(root, 'etc/systemd/system', unit)
  if ((await lstat(alias).catch(() => null))?.isSymbolicLink()) return basename(await readlink(alias))
  return ['usr/lib/systemd/system', 'lib/systemd/system', 'etc/systemd/system'].some((d) => existsSync(join(root, d, unit)))
    ? unit
    : undefined
}

/** The commands of EMULATED, on root, in Anaconda's order (after packages and bootloader, before %post). */
async function applyCommands(ks: ParsedKickstart, root: string): Promise<string[]> {
  const done: string[] = []
  const order = ['lang', 'timezone', 'network', 'firewall', 'selinux', 'services', 'rootpw', 'user', 'sshkey']
  const known = new Set([...order, ...BASE_GUEST_IS])
  const unknown = ks.commands.filter((c) => !known.has(c.name))
  if (unknown.length)
    throw new Error(
      `kickstart commands this helper neither emulates nor leaves to the base guest: ${unknown.map((c) => `${c.name} (line ${c.line})`).join(', ')}`,
    )
  const byOrder = [...ks.commands].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name) || a.line - b.line)
  for (const c of byOrder) {
    const { opts, positional } = ksOptions(c.args)
    const say = (s: string) => done.push(`${c.name} (line ${c.line}): ${s}`)
    const str = (k: string) => (typeof opts.get(k) === 'string' ? (opts.get(k) as string) : undefined)
    switch (c.name) {
      case 'lang':
        await writeFile(join(root, 'etc/locale.conf'), `LANG=${positional[0]}\n`)
        say(`/etc/locale.conf LANG=${positional[0]}`)
        break
      case 'timezone': {
        const zone = positional[0] ?? 'America/New_York'
        if (!existsSync(join(root, 'usr/share/zoneinfo', zone)))
          throw new Error(`timezone ${zone}: no /usr/share/zoneinfo/${zone} in the root`)
        await rm(join(root, 'etc/localtime'), { force: true })
        await symlink(`../usr/share/zoneinfo/${zone}`, join(root, 'etc/localtime'))
        if (opts.has('utc') || opts.has('isUtc')) await writeFile(join(root, 'etc/adjtime'), '0.0 0 0.0\n0\nUTC\n')
        say(
          `/etc/localtime -> ${zone}${opts.has('utc') ? ', hardware clock UTC' : ''}${str('ntpservers') ? `; NOT applied: --ntpservers=${str('ntpservers')} (no chrony on the stand-in)` : ''}`,
        )
        break
      }
      case 'network': {
        if (str('bootproto') && str('bootproto') !== 'dhcp')
          throw new Error(`network --bootproto=${str('bootproto')} (line ${c.line}): only DHCP is emulated`)
        const host = str('hostname')
        if (host) {
          await writeFile(join(root, 'etc/hostname'), `${host}\n`)
          say(`/etc/hostname ${host}; DHCP on ${str('device') ?? 'the first NIC'}: the stand-in's systemd-networkd fallback`)
        } else say("DHCP: the stand-in's systemd-networkd fallback")
        break
      }
      case 'firewall':
      case 'selinux':
        say(`NOT applied (no ${c.name === 'firewall' ? 'firewalld' : 'SELinux'} on the Debian stand-in): ${[c.name, ...c.args].join(' ')}`)
        break
      case 'services': {
        const enabled: string[] = []
        const absent: string[] = []
        for (const s of (str('enabled') ?? '').split(',').filter(Boolean)) {
          // Debian's OpenSSH unit is ssh.service, sshd.service only its alias (systemctl enables units, not aliases)
          const unit = await unitIn(root, s.includes('.') ? s : `${s}.service`)
          if (unit) {
            await chrootRun(root, ['systemctl', 'enable', unit], `to enable ${unit} in the root (kickstart services)`)
            enabled.push(unit === `${s}.service` ? unit : `${s} (${unit})`)
          } else absent.push(s)
        }
        if (str('disabled')) throw new Error(`services --disabled (line ${c.line}) is not emulated`)
        say(`enabled ${enabled.join(', ') || 'nothing'}${absent.length ? `; absent on the stand-in: ${absent.join(', ')}` : ''}`)
        break
      }
      case 'rootpw':
        if (opts.has('lock')) {
          await chrootRun(root, ['passwd', '-l', 'root'], 'to lock root (kickstart rootpw --lock)')
          say('root locked')
        } else if (opts.has('iscrypted') && positional[0]) {
          await chrootRun(root, ['usermod', '-p', positional[0], 'root'], "to set root's password hash (kickstart rootpw)")
          say('root password hash set')
        } else throw new Error(`rootpw (line ${c.line}): only --iscrypted and --lock are emulated (our kickstart writes no plain text)`)
        break
      case 'user': {
        const name = str('name')
        if (!name) throw new Error(`user (line ${c.line}) without --name`)
        const groups = (str('groups') ?? '').split(',').filter(Boolean)
        for (const g of groups)
          if (!(await hasGroup(root, g))) await chrootRun(root, ['groupadd', g], `to add group ${g} (kickstart user --groups)`)
        const password = opts.has('lock') ? [] : opts.has('iscrypted') && str('password') ? ['-p', str('password')!] : null
        if (password === null) throw new Error(`user ${name} (line ${c.line}): only --iscrypted --password and --lock are emulated`)
        // --gid as pyanaconda/core/users.py create_user (rhinstaller/anaconda
        // 0342ea9f): a group named after the user with that gid unless one has
        // it, then useradd -g; without --gid, useradd -U. --homedir: -d, and -m
        // only when it does not exist yet (Anaconda re-owns an existing one,
        // which is not emulated: refused). --uid: -u. --shell: -s, else
        // login.defs' default (bash on RHEL).
        const gid = str('gid')
        if (gid && !(await groupWithGid(root, gid)))
          await chrootRun(root, ['groupadd', '-g', gid, name], `to add group ${name} with gid ${gid} (kickstart user --gid)`)
        const home = str('homedir') ?? `/home/${name}`
        if (existsSync(join(root, home)))
          throw new Error(`user ${name} (line ${c.line}): home ${home} exists; Anaconda's re-owning of it is not emulated`)
        await chrootRun(
          root,
          [
            'useradd',
            ...(gid ? ['-g', gid] : ['-U']),
            '-d',
            home,
            '-m',
            '-s',
            str('shell') ?? '/bin/bash',
            ...(str('uid') ? ['-u', str('uid')!] : []),
            ...(str('gecos') ? ['-c', str('gecos')!] : []),
            ...(groups.length ? ['-G', groups.join(',')] : []),
            ...password,
            name,
          ],
          `to add user ${name} (kickstart user)`,
        )
        say(
          `${name}${str('uid') ? ` uid ${str('uid')}` : ''}${groups.length ? ` in ${groups.join(',')}` : ''}, ${password.length ? 'password hash set' : 'locked'}`,
        )
        break
      }
      case 'sshkey': {
        const user = str('username')
        const pw = user && (await passwdEntry(root, user))
        if (!user || !pw || !positional[0]) throw new Error(`sshkey (line ${c.line}): no such user ${user} in the root, or no key`)
        const dir = join(root, pw.home, '.ssh')
        await mkdir(dir, { recursive: true, mode: 0o700 })
        await chmod(dir, 0o700)
        await chown(dir, pw.uid, pw.gid)
        const file = join(dir, 'authorized_keys')
        await appendFile(file, `${positional[0]}\n`)
        await chmod(file, 0o600)
        await chown(file, pw.uid, pw.gid)
        say(`${pw.home}/.ssh/authorized_keys of ${user}`)
        break
      }
      default:
        break
    }
  }
  const base = [...new Set(ks.commands.filter((c) => BASE_GUEST_IS.includes(c.name)).map((c) => c.name))]
  done.push(`left to the base guest (it already is installed, partitioned and bootable): ${base.join(', ')}`)
  const packages = ks.sections.filter((s) => s.kind === 'packages')
  if (packages.length)
    done.push(
      `%packages (line ${packages.map((p) => p.line).join(', ')}): what the base guest has installed (podman, skopeo, curl, openssl; no firewalld, SELinux or chrony)`,
    )
  return done
}

const CHROOT_SHIM_DIR = '/run/kickstart-apply/bin'
const CHROOT_CALLS = '/run/kickstart-apply/calls.log'
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** The namespace script: the installer environment, then every %post in order. Paths under /mnt/.ks are this helper's. */
function driverScript(o: { root: string; out: string; media: Record<string, string>; repo?: string; scripts: KsSection[] }): string {
  const L: string[] = [
    'set -eu',
    // -n: libmount keeps its table in /run/mount/utab, and /run is replaced below
    'mount() { command mount -n "$@"; }',
    'mount --make-rprivate /',
    // /mnt: the new system at /mnt/sysimage, and this helper's own things under /mnt/.ks
    'mount -t tmpfs -o mode=0755 ks-mnt /mnt',
    'mkdir -p /mnt/sysimage /mnt/.ks/out /mnt/.ks/dev /mnt/.ks/run',
    // --rbind: a root with mounts of its own (e.g. a read-only /usr of this machine) keeps them, as Anaconda's /mnt/sysimage has /boot and the rest
    `mount --rbind ${shq(o.root)} /mnt/sysimage`,
    `mount --bind ${shq(o.out)} /mnt/.ks/out`,
  ]
  // the labelled media, read-only
  for (const [label, dir] of Object.entries(o.media)) {
    L.push(
      `mkdir -p /mnt/.ks/media/${label}`,
      `mount --bind ${shq(dir)} /mnt/.ks/media/${label}`,
      `mount -o remount,bind,ro /mnt/.ks/media/${label}`,
    )
  }
  // the installer's /dev: the usual nodes, and the labelled media as udev would name them
  L.push(
    'mount -t tmpfs -o mode=0755 ks-dev /mnt/.ks/dev',
    'for n in null zero full random urandom tty; do if [ -e /dev/$n ]; then : > /mnt/.ks/dev/$n; mount --bind /dev/$n /mnt/.ks/dev/$n; fi; done',
    'ln -s /proc/self/fd /mnt/.ks/dev/fd; ln -s fd/0 /mnt/.ks/dev/stdin; ln -s fd/1 /mnt/.ks/dev/stdout; ln -s fd/2 /mnt/.ks/dev/stderr',
    'mkdir -p /mnt/.ks/dev/disk/by-label /mnt/.ks/dev/pts /mnt/.ks/dev/shm',
  )
  Object.keys(o.media).forEach((label, i) =>
    L.push(`: > /mnt/.ks/dev/sr${i + 1}`, `ln -s ../../sr${i + 1} /mnt/.ks/dev/disk/by-label/${label}`),
  )
  // the installer's /run, with the installation source at /run/install/repo
  L.push('mount -t tmpfs -o mode=0755 ks-run /mnt/.ks/run', 'mkdir -p /mnt/.ks/run/install/repo /mnt/.ks/run/mount')
  if (o.repo) L.push(`mount --bind ${shq(o.repo)} /mnt/.ks/run/install/repo`, 'mount -o remount,bind,ro /mnt/.ks/run/install/repo')
  L.push(
    'mount --move /mnt/.ks/dev /dev',
    'mount --move /mnt/.ks/run /run',
    'mount -t tmpfs -o mode=1777 ks-tmp /tmp',
    // what Anaconda has mounted in the new system when %post runs
    'mount -t proc proc /mnt/sysimage/proc',
    'mount --rbind /sys /mnt/sysimage/sys',
    'mount --rbind /dev /mnt/sysimage/dev',
    'mount -t tmpfs -o mode=0755 ks-sysimage-run /mnt/sysimage/run',
    // recording shims, only for commands the new system lacks
    `mkdir -p /mnt/sysimage${CHROOT_SHIM_DIR}`,
    `for n in ${CHROOT_SHIMS.map((s) => s.name).join(' ')}; do`,
    `  if ! chroot /mnt/sysimage /bin/sh -c "command -v $n" >/dev/null 2>&1; then`,
    `    printf '#!/bin/sh\\n# kickstart-apply: %s is not on the Debian stand-in; recorded only\\necho "$(basename "$0") $*" >> ${CHROOT_CALLS}\\n' "$n" > /mnt/sysimage${CHROOT_SHIM_DIR}/$n`,
    `    chmod 0755 /mnt/sysimage${CHROOT_SHIM_DIR}/$n`,
    '  fi',
    'done',
    `: > /mnt/sysimage${CHROOT_CALLS}`,
    ': > /mnt/.ks/out/results',
    'status=0',
  )
  o.scripts.forEach((s, i) => {
    const sc = s.script!
    const n = i + 1
    const inRoot = sc.nochroot ? '' : '/mnt/sysimage'
    const log = sc.log ? `${inRoot}${sc.log}` : `/tmp/ks-script-${n}.log`
    const path = sc.nochroot ? `/mnt/.ks/out/installer-bin:${BASE_PATH}` : `${CHROOT_SHIM_DIR}:${BASE_PATH}`
    const cmd = sc.nochroot
      ? `env -i PATH=${shq(path)} LANG=C ANA_INSTALL_PATH=/mnt/sysimage ${shq(sc.interpreter)} /tmp/ks-script-${n}`
      : `chroot /mnt/sysimage /usr/bin/env -i PATH=${shq(path)} LANG=C HOME=/root ${shq(sc.interpreter)} /tmp/ks-script-${n}`
    L.push(
      `if [ "$status" = 0 ]; then`,
      `  cp /mnt/.ks/out/script-${n} ${inRoot}/tmp/ks-script-${n} && chmod 0700 ${inRoot}/tmp/ks-script-${n}`,
      `  mkdir -p "$(dirname ${shq(log)})"`,
      `  rc=0; (cd / && ${cmd}) > ${shq(log)} 2>&1 < /dev/null || rc=$?`,
      // Anaconda leaves the script where it wrote it; the installer's /tmp (nochroot) goes with the namespace
      sc.nochroot ? `  rm -f /tmp/ks-script-${n}` : '  :',
      `  cp ${shq(log)} /mnt/.ks/out/log-${n} 2>/dev/null || : > /mnt/.ks/out/log-${n}`,
      `  echo "${n} $rc" >> /mnt/.ks/out/results`,
      sc.erroronfail ? `  if [ "$rc" != 0 ]; then status=1; fi` : '  :',
      'fi',
    )
  })
  L.push(`cp /mnt/sysimage${CHROOT_CALLS} /mnt/.ks/out/chroot-calls`)
  return L.join('\n') + '\n'
}

function mountShim(media: Record<string, string>): string {
  const cases = Object.keys(media)
    .map((label, i) => `    /dev/disk/by-label/${label}|/dev/sr${i + 1}) medium=/mnt/.ks/media/${label} ;;`)
    .join('\n')
  return `#!/bin/sh
# kickstart-apply: the installer's mount, except for a labelled medium, which
# is a directory here (no block device, no loop mounts): a read-only bind mount.
medium=
for a in "$@"; do
  case "$a" in
${cases}
  esac
done
if [ -n "$medium" ]; then
  eval "target=\\\${$#}"
  echo "mount $*" >> /mnt/.ks/out/installer-calls
  exec /bin/mount --bind -o ro "$medium" "$target"
fi
exec /bin/mount "$@"
`
}

/**
 * Apply ksText to root (a directory holding the installed system) as
 * Anaconda would after installing the packages: the commands, then the
 * %post scripts in a private mount namespace. Needs root and `unshare -m`.
 */
export async function applyKickstart(ksText: string, root: string, o: ApplyOptions = {}): Promise<ApplyReport> {
  const ks = parseKickstart(ksText)
  const media = o.media ?? {}
  for (const label of Object.keys(media)) if (!/^[A-Z0-9_]{1,32}$/.test(label)) throw new Error(`volume label ${label}: A-Z, 0-9, _ only`)
  for (const s of ks.sections) {
    if (s.kind === 'pre' || s.kind === 'pre-install')
      throw new Error(`line ${s.line}: %${s.kind} is not emulated (it runs before the disk exists)`)
  }
  if (!(await lstat(join(root, 'etc/passwd')).catch(() => null))) throw new Error(`${root} holds no installed system (no etc/passwd)`)

  const commands = await applyCommands(ks, root)
  for (const c of commands) o.log?.(c)
  await mkdir(join(root, 'root'), { recursive: true, mode: 0o700 })
  await writeFile(join(root, 'root/original-ks.cfg'), ksText, { mode: 0o600 })
  await writeFile(
    join(root, 'root/anaconda-ks.cfg'),
    `# kickstart-apply: emulates the kickstart Anaconda regenerates (%post bodies verbatim)\n${ksText}`,
    { mode: 0o600 },
  )
  o.log?.('kickstart copies: /root/original-ks.cfg, /root/anaconda-ks.cfg (0600)')

  const scripts = ks.sections.filter((s) => s.kind === 'post')
  const out = await mkdtemp(join(tmpdir(), 'ks-apply-'))
  try {
    await mkdir(join(out, 'installer-bin'))
    await writeFile(join(out, 'installer-bin/mount'), mountShim(media), { mode: 0o755 })
    await writeFile(join(out, 'installer-calls'), '')
    for (const [i, s] of scripts.entries()) await writeFile(join(out, `script-${i + 1}`), s.body)
    await writeFile(join(out, 'driver.sh'), driverScript({ root, out, media, ...(o.repo ? { repo: o.repo } : {}), scripts }))
    const d = await run('unshare', ['-m', '--propagation', 'private', 'bash', join(out, 'driver.sh')], {
      nothrow: true,
      why: "to run the %post scripts in a private mount namespace, as in Anaconda's installer",
      timeoutMs: 60 * 60_000,
    })
    if (d.code !== 0) throw new Error(`the installer environment could not be set up (exit ${d.code}): ${d.stderr}`)
    const runs: ScriptRun[] = []
    for (const l of (await readFile(join(out, 'results'), 'utf8')).split('\n').filter(Boolean)) {
      const [n, rc] = l.split(' ').map(Number) as [number, number]
      const s = scripts[n - 1]!
      const logFile = s.script!.log ?? `/tmp/ks-script-${n}.log (installer)`
      const output = await readFile(join(out, `log-${n}`), 'utf8')
      runs.push({ line: s.line, header: s.header, rc, logFile, output })
      o.log?.(`${s.header} (line ${s.line}): exit ${rc}, output in ${logFile}`)
      if (rc !== 0 && s.script!.erroronfail)
        throw new Error(
          `Anaconda would halt the install here: the script at line ${s.line} (${s.header}) exited ${rc}, and it has --erroronfail. Its output:\n${output}`,
        )
    }
    if (runs.length !== scripts.length) throw new Error(`only ${runs.length} of ${scripts.length} %post scripts ran: ${d.stderr}`)
    const shimCalls = [
      ...(await readFile(join(out, 'installer-calls'), 'utf8')).split('\n'),
      ...(await readFile(join(out, 'chroot-calls'), 'utf8').catch(() => '')).split('\n'),
    ].filter(Boolean)
    return { commands, scripts: runs, shimCalls }
  } finally {
    await rm(out, { recursive: true, force: true })
  }
}

// ---- the kickstart route's guest ----

/** What the kickstart route's guest gets besides the kickstart, and why. Printed by the test. */
export const KICKSTART_GUEST_EDITS: { path: string; text: string; why: string }[] = [
  {
    path: '/etc/cloud/cloud-init.disabled',
    text: '',
    why: "the kickstart route has no NoCloud seed and a RHEL host installed by Anaconda runs no cloud-init: the host is what the kickstart made it; the network comes from the guest's DHCP fallback (systemd-networkd)",
  },
  {
    path: '/etc/systemd/system/sshd-keygen.service.d/rhel.conf',
    text: [
      "# kickstart-apply: like RHEL's sshd-keygen@.service, make any missing host key at boot.",
      "# Debian's unit runs only on a first boot by machine-id(5)'s rules, which an empty",
      '# /etc/machine-id is not; on the qcow2 route cloud-init makes the keys instead.',
      '[Unit]',
      'ConditionFirstBoot=',
      'ConditionPathIsReadWrite=/etc/ssh',
      'ConditionFileNotEmpty=|!/etc/ssh/ssh_host_ed25519_key',
      'ConditionFileNotEmpty=|!/etc/ssh/ssh_host_ecdsa_key',
      'ConditionFileNotEmpty=|!/etc/ssh/ssh_host_rsa_key',
      '',
    ].join('\n'),
    why: "RHEL's sshd-keygen@.service makes missing host keys on any boot; Debian's sshd-keygen.service only on a first boot (ConditionFirstBoot), which the guest's empty /etc/machine-id is not, and cloud-init (which makes them on the qcow2 route) does not run here",
  },
]

/**
 * The Debian stand-in guest as Anaconda would have left it after installing
 * with ksText: the cached guest root, KICKSTART_GUEST_EDITS, then
 * applyKickstart with the given media (e.g. OEMDRV -> oemdrv.iso extracted),
 * written by the guest image's disk builder (sizeBytes, default 10 GiB like
 * the qcow2 route's config). Cached by the kickstart's and the media
 * payloads' sha256 and this file. Returns the qcow2 and the build's notes
 * (every command and script, with their output).
 */
export async function kickstartGuestImage(
  ksText: string,
  media: Record<string, string>,
  sizeBytes = 10 * 1024 ** 3,
): Promise<{ file: string; notes: string }> {
  const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex')
  const sums = Object.entries(media).map(
    ([label, dir]) => `${label}:${sha(readFileSync(join(dir, 'appliance/SHA256SUMS'), { flag: 'r' }).toString())}`,
  )
  return guestImageFromRoot({
    name: 'kickstart',
    keyParts: [sha(ksText), ...sums, sha(readFileSync(fileURLToPath(import.meta.url)))],
    sizeBytes,
    transform: async (root, log) => {
      for (const e of KICKSTART_GUEST_EDITS) {
        await mkdir(dirname(join(root, e.path)), { recursive: true })
        await writeFile(join(root, e.path), e.text, { mode: 0o644 })
      }
      const r = await applyKickstart(ksText, root, { media, log })
      for (const s of r.scripts) log(`--- output of ${s.header} (line ${s.line}), in ${s.logFile}:\n${s.output.trimEnd()}`)
      for (const c of r.shimCalls) log(`shim call: ${c}`)
    },
  })
}

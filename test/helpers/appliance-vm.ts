// Shared by the boot tests: an appliance built from the Debian stand-in guest
// and the stand-in registry image, booted with `mirror-appliance vm`, and the
// checks made on it from the host and, over SSH, inside the guest.
import type { Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from './cli.js'
import { guestImage, GUEST_NOTE, GUEST_SHIMS } from './guest-image.js'
import { standinRegistryImage } from './standin-registry.js'
import { sampleImages, writeLayout, sha, type Blob } from './oci-fixtures.js'
import { spawnCli, waitFor } from './proc.js'
import { selfSignedCa } from './openssl.js'

export const HOSTNAME = 'mirror.boot.example'
export const ADMIN_PASSWORD = 'admin-Passw0rd'
export const INIT_PASSWORD = 'init-Passw0rd-e2e'
export const BOOT_TIMEOUT_S = Number(process.env.MIRROR_APPLIANCE_BOOT_TIMEOUT ?? 1800)

const skopeo = (args: string[]) => spawnSync('skopeo', ['--insecure-policy', ...args], { encoding: 'utf8' })

export interface VmInfo {
  url: string
  port: number
  sshPort: number
  caFile: string
  credentialsFile: string
  pid: number
  log: string
  accel: string
}

export interface Appliance {
  dir: string
  dist: string
  key: string
  caDir: string
  content: { ref: string; target: string; digest: string; blobs: Blob[] }[]
  registryDigest: string
  registryRef: string
}

/**
 * Everything up to a built dist/: guest image, stand-in registry image and content in a scratch cache, the config, the build.
 * route 'oemdrv' (the kickstart route) builds oemdrv.iso instead of the qcow2 (and needs no guest image).
 */
export async function buildAppliance(t: Test, route: 'qcow2' | 'oemdrv' = 'qcow2'): Promise<Appliance> {
  const guest = route === 'qcow2' ? await guestImage() : undefined
  t.comment(`guest: ${GUEST_NOTE}`)
  for (const s of GUEST_SHIMS) t.comment(`shim in the guest: ${s.path}: ${s.why}`)
  const reg = await standinRegistryImage()
  t.comment(`stand-in registry image ${reg.ref}@${reg.digest} (Debian's docker-registry, not the real registry:2.8.3)`)

  const dir = mkdtempSync(join(tmpdir(), 'ma-boot-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { MIRROR_APPLIANCE_CACHE: join(dir, 'cache') }

  const imp = await runCli(['images', 'import', reg.archive, '--name', reg.ref], { env })
  t.equal(imp.code, 0, `stand-in registry image imported: ${imp.stderr}`)

  // Content: a two-arch index and a single-arch image sharing a layer.
  const imgs = sampleImages()
  const layout = join(dir, 'content-oci')
  await writeLayout(layout, [
    { name: 'release', root: imgs.multi, images: [imgs.amd, imgs.arm] },
    { name: 'app', root: imgs.app.manifest, images: [imgs.app] },
  ])
  const content = [
    {
      ref: 'quay.io/example/release:4.14.1',
      target: 'ocp/release',
      digest: imgs.multi.digest,
      blobs: [imgs.multi, imgs.amd.manifest, imgs.amd.config, ...imgs.amd.layers, imgs.arm.manifest, imgs.arm.config, ...imgs.arm.layers],
    },
    {
      ref: 'quay.io/example/app:1.0',
      target: 'example/app',
      digest: imgs.app.manifest.digest,
      blobs: [imgs.app.manifest, imgs.app.config, ...imgs.app.layers],
    },
  ]
  for (const [i, c] of content.entries()) {
    const one = join(dir, `content-${i}`)
    const root = i === 0 ? imgs.multi : imgs.app.manifest
    await writeLayout(one, [{ name: c.ref, root, images: i === 0 ? [imgs.amd, imgs.arm] : [imgs.app] }])
    const r = await runCli(['images', 'import', one, '--format', 'oci-dir', '--name', c.ref], { env })
    t.equal(r.code, 0, `content ${c.ref} imported: ${r.stderr}`)
  }

  const key = join(dir, 'id_ed25519')
  const kg = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'e2e', '-f', key])
  t.equal(kg.status, 0, 'ssh key made')
  const pub = readFileSync(`${key}.pub`, 'utf8').trim()
  const registryRef = reg.ref.replace(/:[^/:]+$/, '')
  const cfg = join(dir, 'appliance.yaml')
  writeFileSync(
    cfg,
    `apiVersion: mirror-appliance/v1
host:
  hostname: ${HOSTNAME}
  disk: {device: vda}
  users:
    - name: admin
      sudo: true
      password: {plain: ${JSON.stringify(ADMIN_PASSWORD)}}
      sshKeys: [${JSON.stringify(pub)}]
registry:
  flavor: distribution
  port: 8443
  initUser: {name: init, password: ${JSON.stringify(INIT_PASSWORD)}}
  tls:
    extraSANs: [localhost, 127.0.0.1]
  images:
    registry: {ref: ${JSON.stringify(reg.ref)}, digest: ${JSON.stringify(reg.digest)}}
content:
  architecture: amd64
  images:
${content.map((c) => `    - {ref: ${JSON.stringify(c.ref)}, digest: ${JSON.stringify(c.digest)}, target: ${JSON.stringify(c.target)}}`).join('\n')}
${
  guest
    ? `outputs:
  oemdrv: false
  qcow2: {sizeGiB: 10}
`
    : `outputs:
  oemdrv: true
`
}`,
  )
  const dist = join(dir, 'dist')
  const b = await runCli(['build', '-c', cfg, '-o', dist, ...(guest ? ['--qcow2', '--base-image', guest] : ['--oemdrv'])], {
    env: { ...env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' },
  })
  t.equal(b.code, 0, `build ${guest ? '--qcow2 on the stand-in guest' : '--oemdrv'}: ${b.stderr.slice(-3000)}`)
  const caDir = join(dir, 'ca')
  mkdirSync(caDir)
  writeFileSync(join(caDir, 'ca.crt'), readFileSync(join(dist, 'secrets/ca.crt')))
  return { dir, dist, key, caDir, content, registryDigest: reg.digest, registryRef }
}

/** `vm DIST --wait --json`: the registry answered through its own certificate. */
export async function bootAndWait(t: Test, a: Appliance, what: string, extra: string[] = []): Promise<VmInfo> {
  const started = Date.now()
  const r = await runCli(['vm', a.dist, '--wait', '--json', '--timeout', String(BOOT_TIMEOUT_S), ...extra])
  const secs = Math.round((Date.now() - started) / 1000)
  if (r.code !== 0) {
    const log = join(a.dist, 'vm/console.log')
    t.fail(
      `${what}: vm --wait exit ${r.code}: ${r.stderr.slice(-2000)}\n--- console ---\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-6000) : '(none)'}`,
    )
    throw new Error(`${what}: the appliance did not come up`)
  }
  const info = JSON.parse(r.stdout) as VmInfo
  t.comment(`${what}: boot to ready ${secs} s (${info.accel})`)
  t.pass(`${what}: the registry answered at ${info.url} through its own TLS certificate`)
  t.teardown(() => stopVm(a))
  return info
}

export async function stopVm(a: Appliance): Promise<void> {
  await runCli(['vm', a.dist, '--stop'])
}

/** ssh and scp options for a throwaway guest: no host key records, never a prompt. */
export const SSH_OPTS = [
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'BatchMode=yes',
  '-o',
  'LogLevel=ERROR',
]

/** A command in the guest as root, over SSH with the config's user key (sudo with the user's password). */
export function guest(a: Appliance, vm: VmInfo, command: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(
    'ssh',
    [
      '-i',
      a.key,
      '-p',
      String(vm.sshPort),
      ...SSH_OPTS,
      '-o',
      'ConnectTimeout=30',
      'admin@127.0.0.1',
      `sudo -S -p '' sh -c ${shq(command)}`,
    ],
    { encoding: 'utf8', input: `${ADMIN_PASSWORD}\n`, timeout: 600_000 },
  )
  return { code: r.status, out: r.stdout, err: r.stderr }
}

/** registry.service comes from podman's quadlet generator and our .container file, runs, and runs the image by the digest the config names. */
export function checkRegistryUnit(t: Test, a: Appliance, vm: VmInfo, what: string): void {
  const src = guest(a, vm, 'systemctl show registry.service -p SourcePath --value; systemctl is-active registry.service')
  t.match(
    src.out,
    /^\/etc\/containers\/systemd\/registry\.container\nactive$/m,
    `${what}: registry.service was generated by the quadlet generator from our .container file, and runs`,
  )
  const gen = guest(a, vm, 'grep -c "^ExecStart=.*podman run" /run/systemd/generator/registry.service')
  t.equal(gen.out.trim(), '1', `${what}: the generated unit runs podman`)
  const img = guest(a, vm, "podman inspect registry --format '{{.ImageName}}'")
  t.equal(img.out.trim(), `${a.registryRef}@${a.registryDigest}`, `${what}: the container runs the image by the digest the config names`)
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

export const STEPS = [
  'scrub-kickstart',
  'verify-payload',
  'load-images',
  'trust-ca',
  'start-registry',
  'wait-health',
  'init-user',
  // distribution publishes from the start: recorded, nothing to do (Quay's port opens here)
  'open-registry',
  'push-content',
  'install-handoff',
  'write-credentials',
  'motd',
]

/** First boot finished on the guest: every step recorded, disarmed, motd ready, no failed unit. */
export function checkFirstBootDone(t: Test, a: Appliance, vm: VmInfo, what: string): void {
  const ls = guest(a, vm, 'ls /var/lib/mirror-appliance/firstboot')
  t.equal(ls.code, 0, `${what}: ssh as the config's user, sudo works: ${ls.err}`)
  const files = ls.out.split('\n').filter(Boolean)
  for (const s of STEPS) t.ok(files.includes(`${s}.done`), `${what}: step ${s} recorded`)
  t.ok(files.includes('done'), `${what}: first boot disarmed`)
  t.notOk(files.includes('failed'), `${what}: no failure recorded`)
  const motd = guest(a, vm, 'cat /etc/motd.d/mirror-appliance')
  t.match(motd.out, /^mirror-appliance registry/, `${what}: motd says the registry is ready`)
  t.notMatch(motd.out, /FAILED|not ready/i)
  const failed = guest(a, vm, 'systemctl --failed --no-legend --plain')
  t.equal(failed.out.trim(), '', `${what}: no unit failed`)
  // Issue 18 point 5: after first boot the init password stays only in the
  // files the host keeps using. This guest runs distribution, which has no
  // quay-initialize.json at all; for Quay its deletion is proved by the
  // first-boot harness (test/firstboot-harness.test.ts) and the bundle's
  // (test/registryctl-install.test.ts).
  const carriers = guest(a, vm, `grep -rlF -- ${shq(INIT_PASSWORD)} /etc/mirror-appliance || true`)
  t.same(
    carriers.out.split('\n').filter(Boolean).sort(),
    ['/etc/mirror-appliance/registry-auth.curl'],
    `${what}: in /etc/mirror-appliance only first boot's curl config holds the init password`,
  )
  t.equal(guest(a, vm, 'test -e /etc/mirror-appliance/quay-initialize.json').code, 1, `${what}: no Quay initialize request left`)
}

/**
 * The SSH server runs with the config's host.ssh (issue 18 point 8): the
 * config above gives admin an SSH key and says nothing of host.ssh, so the
 * defaults apply: root by key only, no password logins. `sshd -T` is what
 * the running sshd's binary makes of its files, after our settings unit (or
 * the kickstart's %post) and cloud-init's ssh_pwauth edit on the qcow2 route.
 */
export function checkSshd(t: Test, a: Appliance, vm: VmInfo, what: string): void {
  const r = guest(a, vm, 'PATH=/usr/sbin:/sbin:$PATH sshd -T')
  t.equal(r.code, 0, `${what}: sshd -T runs: ${r.err}`)
  const settings = new Map(
    r.out
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 2)
      .map((f) => [f[0]!.toLowerCase(), f.slice(1).join(' ')] as const),
  )
  // sshd -T prints prohibit-password by its old name
  t.equal(settings.get('permitrootlogin'), 'without-password', `${what}: root logs in by key only`)
  t.equal(settings.get('passwordauthentication'), 'no', `${what}: no password logins (admin has a key)`)
}

/**
 * Kickstart route: the copies of the kickstart Anaconda leaves (and the
 * emulation, test/helpers/kickstart-apply.ts, leaves the same way) no longer
 * carry the host-spec %post (issue 18 point 3). Caveat: the Debian stand-in
 * mounts a tmpfs on /tmp, hiding the ks-script copies the image holds there,
 * so on this guest the /tmp half of the check cannot fail; the first-boot
 * harness (test/firstboot-harness.test.ts) covers it.
 */
export function checkKickstartScrubbed(t: Test, a: Appliance, vm: VmInfo, what: string): void {
  const marker = '# >>> mirror-appliance host spec'
  const scripts = guest(a, vm, `grep -lxF -- ${shq(marker)} /tmp/ks-script-* 2>/dev/null || true`)
  t.equal(scripts.out.trim(), '', `${what}: no copy of the host-spec %post left in /tmp`)
  for (const f of ['/root/original-ks.cfg', '/root/anaconda-ks.cfg']) {
    const r = guest(a, vm, `cat ${f}`)
    t.equal(r.code, 0, `${what}: ${f} is there, as Anaconda leaves it: ${r.err}`)
    t.notOk(r.out.includes(marker) || r.out.includes('MIRROR_APPLIANCE_B64'), `${what}: ${f} holds no host-spec %post body`)
    t.notOk(r.out.includes(INIT_PASSWORD), `${what}: ${f} holds no init password`)
    t.match(
      r.out,
      /^# mirror-appliance first boot \(step scrub-kickstart\) removed the body of$/m,
      `${what}: ${f} says where the files went`,
    )
  }
}

/** From the host: every content image pulls by digest through the built CA and credentials, bytes equal; wrong password and foreign CA refused. */
export function checkContentFromHost(t: Test, a: Appliance, vm: VmInfo, what: string): void {
  const addr = `localhost:${vm.port}`
  const creds = `init:${INIT_PASSWORD}`
  for (const c of a.content) {
    const ref = `docker://${addr}/${c.target}@${c.digest}`
    const raw = spawnSync('skopeo', ['inspect', '--raw', '--cert-dir', a.caDir, '--creds', creds, ref])
    t.equal(raw.status, 0, `${what}: ${c.target} by digest: ${raw.stderr}`)
    t.equal(sha(raw.stdout), c.digest, `${what}: ${c.target}: the registry serves the digest the config names`)
    const back = join(a.dir, `pull-${what.replace(/\W+/g, '-')}-${c.target.replace(/\W+/g, '-')}`)
    const pull = skopeo(['copy', '--all', '--src-cert-dir', a.caDir, '--src-creds', creds, ref, `oci:${back}:x`])
    t.equal(pull.status, 0, `${what}: pull ${c.target}: ${pull.stderr}`)
    const got = new Set(existsSync(join(back, 'blobs/sha256')) ? readdirSync(join(back, 'blobs/sha256')) : [])
    const same = c.blobs.every(
      (b) => got.has(b.digest.slice(7)) && readFileSync(join(back, 'blobs/sha256', b.digest.slice(7))).equals(b.data),
    )
    t.ok(same, `${what}: ${c.target}: every blob pulled back, same bytes (${c.blobs.length})`)
    rmSync(back, { recursive: true, force: true })
  }
  const c0 = a.content[0]!
  const wrong = spawnSync(
    'skopeo',
    ['inspect', '--raw', '--cert-dir', a.caDir, '--creds', 'init:wrong-password', `docker://${addr}/${c0.target}@${c0.digest}`],
    { encoding: 'utf8' },
  )
  t.equal(wrong.status, 1, `${what}: a wrong password is refused`)
  t.match(wrong.stderr, /unauthorized|authentication required|401/i, `${what}: refused by the registry (401): ${wrong.stderr.trim()}`)
  const other = join(a.dir, 'other-ca')
  if (!existsSync(other)) {
    mkdirSync(other)
    let failed = ''
    try {
      selfSignedCa({ key: join(other, 'k.pem'), cert: join(other, 'ca.crt'), subject: '/CN=other CA', days: 2 })
    } catch (e) {
      failed = (e as Error).message
    }
    t.equal(failed, '', 'another CA made')
    rmSync(join(other, 'k.pem'))
  }
  const foreign = spawnSync(
    'skopeo',
    ['inspect', '--raw', '--cert-dir', other, '--creds', creds, `docker://${addr}/${c0.target}@${c0.digest}`],
    { encoding: 'utf8' },
  )
  t.equal(foreign.status, 1, `${what}: a client trusting another CA refuses the registry`)
  t.match(foreign.stderr, /x509|certificate/i, `${what}: for its certificate: ${foreign.stderr.trim()}`)
}

/** Boot (without waiting for the registry), kill QEMU with SIGKILL once the console shows `step STEP`, and check that step was not recorded. */
export async function powerCut(t: Test, a: Appliance, step: string, extra: string[]): Promise<void> {
  const log = join(a.dist, 'vm/console.log')
  rmSync(log, { force: true }) // the marker must come from this boot
  const proc = spawnCli(['vm', a.dist, '--wait', '--json', '--timeout', String(BOOT_TIMEOUT_S), ...extra])
  const pidFile = join(a.dist, 'vm/qemu.pid')
  const marker = `mirror-appliance first boot: step ${step}`
  let killed = false
  try {
    await waitFor(
      () => existsSync(log) && readFileSync(log, 'utf8').includes(marker),
      `console line "${marker}"`,
      BOOT_TIMEOUT_S * 1000,
      200,
    )
    const pid = Number(readFileSync(pidFile, 'utf8').trim())
    process.kill(pid, 'SIGKILL')
    killed = true
    t.pass(`power cut during ${step}: QEMU ${pid} killed`)
  } finally {
    if (!killed) await stopVm(a)
    const r = await proc.done
    if (killed) t.equal(r.code, 1, `power cut during ${step}: vm --wait reports that QEMU stopped`)
  }
}

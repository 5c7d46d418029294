// The Debian trixie guest that stands in for the RHEL 8 KVM guest image
// (test/helpers/guest-image.ts): built (or taken from the cache), an overlay
// of it booted under QEMU TCG by plain SeaBIOS with a NoCloud seed ISO
// (label cidata) that makes a user in group wheel with an SSH key we
// generate. Over SSH: login, sudo through RHEL's %wheel rule, podman with
// netavark running a container from a locally imported image, the RHEL
// shims (update-ca-trust really makes a test CA trusted by openssl and curl),
// and the quadlet generator.
//
// Outside CI the test skips when a tool the build needs is missing or
// deb.debian.org cannot be reached; under CI=true it fails instead.

import t, { type Test } from 'tap'
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile, copyFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findTool, run, type RunResult } from '../../builder/exec.js'
import { createOverlay } from '../../builder/tools/qemu-img.js'
import { GUEST_NOTE, GUEST_SHIMS, guestImage } from '../helpers/guest-image.js'
import { freePort } from '../helpers/net.js'

const CI = process.env.CI === 'true'
const USER = 'tester'
// SHA-512 crypt of "Hello world!" with salt "saltstring" (the first test vector of Drepper's
// "Unix crypt using SHA-256 and SHA-512", also checked in test/crypt.test.ts): sudo through %wheel asks for it.
const PASSWORD = 'Hello world!'
const PASSWORD_HASH = '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'
const BOOT_TIMEOUT_MS = 20 * 60_000

t.setTimeout(120 * 60_000)

/** Why the guest cannot be built here, or null. */
async function missingPrerequisite(): Promise<string | null> {
  for (const tool of [
    'curl',
    'debootstrap',
    'guestfish',
    'qemu-system-x86_64',
    'qemu-img',
    'xorriso',
    'ssh',
    'ssh-keygen',
    'openssl',
    'busybox',
    'chroot',
  ]) {
    if (!(await findTool(tool))) return `${tool} is not installed`
  }
  const r = await run('curl', ['-sfI', '--max-time', '20', 'http://deb.debian.org/debian/dists/trixie/Release'], { nothrow: true })
  if (r.code !== 0) return 'http://deb.debian.org/debian cannot be reached'
  return null
}

interface Vm {
  port: number
  key: string
  serial: string
  exited: () => boolean
  stop: () => Promise<void>
}

async function boot(t: Test, dir: string, guest: string): Promise<Vm> {
  const overlay = join(dir, 'overlay.qcow2')
  await createOverlay(overlay, guest, 'qcow2')
  const key = join(dir, 'id_ed25519')
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'guest-image-test', '-f', key])
  const pub = (await readFile(`${key}.pub`, 'utf8')).trim()
  const seed = join(dir, 'seed')
  await mkdir(seed)
  await writeFile(join(seed, 'meta-data'), 'instance-id: guest-image-test\nlocal-hostname: guest\n')
  await writeFile(
    join(seed, 'user-data'),
    '#cloud-config\n' +
      'ssh_pwauth: false\n' +
      'users:\n' +
      `  - name: ${USER}\n` +
      '    groups: [wheel]\n' +
      '    lock_passwd: false\n' +
      `    passwd: ${JSON.stringify(PASSWORD_HASH)}\n` +
      `    ssh_authorized_keys: [${JSON.stringify(pub)}]\n`,
  )
  const iso = join(dir, 'seed.iso')
  await run('xorriso', [
    '-as',
    'mkisofs',
    '-quiet',
    '-o',
    iso,
    '-V',
    'cidata',
    '-J',
    '-R',
    join(seed, 'user-data'),
    join(seed, 'meta-data'),
  ])
  const port = await freePort()
  const serial = join(dir, 'serial.log')
  const ac = new AbortController()
  let done = false
  const qemu = run(
    'qemu-system-x86_64',
    [
      '-accel',
      'tcg',
      '-m',
      '2048',
      '-smp',
      '2',
      '-display',
      'none',
      '-monitor',
      'none',
      '-serial',
      `file:${serial}`,
      '-drive',
      `file=${overlay},if=virtio,format=qcow2`,
      '-drive',
      `file=${iso},if=virtio,format=raw,readonly=on`,
      '-nic',
      `user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:${port}-:22`,
    ],
    { signal: ac.signal, nothrow: true, why: 'to boot the stand-in guest' },
  ).then(
    (r) => {
      done = true
      return r
    },
    (e: unknown) => {
      done = true
      return { stdout: '', stderr: String(e), code: null } as RunResult
    },
  )
  const stop = async () => {
    if (!done) ac.abort()
    await qemu
  }
  t.teardown(stop)
  return { port, key, serial, exited: () => done, stop }
}

function sshArgs(vm: Vm, command: string): string[] {
  return [
    '-i',
    vm.key,
    '-p',
    String(vm.port),
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'ConnectTimeout=10',
    '-o',
    'LogLevel=ERROR',
    `${USER}@127.0.0.1`,
    command,
  ]
}

/** One word for the guest's shell. */
const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/** A command in the guest as the user. */
async function ssh(vm: Vm, command: string, input?: string | Buffer): Promise<RunResult> {
  return run('ssh', sshArgs(vm, command), { nothrow: true, input, timeoutMs: 10 * 60_000 })
}

/** A command in the guest as root, through sudo and RHEL's %wheel rule (password on stdin). */
async function root(vm: Vm, command: string): Promise<RunResult> {
  return ssh(vm, `sudo -S -p '' sh -c ${shq(command)}`, `${PASSWORD}\n`)
}

async function serialTail(vm: Vm): Promise<string> {
  return (await readFile(vm.serial, 'utf8').catch(() => '')).slice(-4000)
}

/** Test CA and a leaf for localhost signed by it, made on this machine. */
async function makeCa(dir: string): Promise<{ ca: string; leaf: string; leafKey: string }> {
  const ca = join(dir, 'ca.pem')
  const caKey = join(dir, 'ca.key')
  const leaf = join(dir, 'leaf.pem')
  const leafKey = join(dir, 'leaf.key')
  const csr = join(dir, 'leaf.csr')
  const ext = join(dir, 'leaf.ext')
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    caKey,
    '-out',
    ca,
    '-days',
    '2',
    '-subj',
    '/CN=guest-image test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ])
  await run('openssl', [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    leafKey,
    '-out',
    csr,
    '-subj',
    '/CN=localhost',
  ])
  await writeFile(ext, 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-out',
    leaf,
    '-days',
    '2',
    '-extfile',
    ext,
  ])
  return { ca, leaf, leafKey }
}

/** A tarball with busybox as /bin/sh and friends: `podman import` makes an image of it. */
async function busyboxTar(dir: string): Promise<Buffer> {
  const tree = join(dir, 'bb')
  await mkdir(join(tree, 'bin'), { recursive: true })
  await copyFile('/bin/busybox', join(tree, 'bin/busybox'))
  await chmod(join(tree, 'bin/busybox'), 0o755)
  for (const a of ['sh', 'echo', 'cat', 'ip', 'hostname']) await symlink('busybox', join(tree, 'bin', a))
  const out = join(dir, 'bb.tar')
  await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', tree, '-cf', out, 'bin'])
  return readFile(out)
}

const missing = await missingPrerequisite()
const skip = missing && !CI ? `cannot build the Debian stand-in guest here: ${missing}` : false

t.test('Debian trixie guest standing in for the RHEL 8 KVM guest image: boots, SSH, podman + netavark, RHEL shims', { skip }, async (t) => {
  t.comment(`guest: ${GUEST_NOTE}`)
  for (const s of GUEST_SHIMS) t.comment(`shim in the guest: ${s.path}: ${s.why}`)
  t.equal(missing, null, 'everything the guest build needs is here (CI=true: a missing piece fails)')
  if (missing) return

  const t0 = Date.now()
  const guest = await guestImage()
  t.comment(`guest image ${guest}: ready in ${((Date.now() - t0) / 1000).toFixed(0)} s (built now, or from the cache)`)

  const dir = await mkdtemp(join(tmpdir(), 'guest-image-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const vm = await boot(t, dir, guest)
  try {
    const b0 = Date.now()
    let login: RunResult | undefined
    while (Date.now() - b0 < BOOT_TIMEOUT_MS && !vm.exited()) {
      login = await ssh(vm, 'id -un')
      if (login.code === 0) break
      await new Promise((r) => setTimeout(r, 3000))
    }
    if (login?.code !== 0) t.comment(`serial console tail:\n${await serialTail(vm)}`)
    t.equal(login?.code, 0, `SSH login with the generated key (Debian stand-in for RHEL 8): ${login?.stderr.trim()}`)
    if (login?.code !== 0) return
    t.equal(login.stdout.trim(), USER, 'logged in as the cloud-init user')
    t.comment(`boot to SSH login under TCG: ${((Date.now() - b0) / 1000).toFixed(0)} s`)

    const state = await root(vm, 'systemctl is-system-running --wait; systemctl --failed --no-legend --plain')
    t.match(state.stdout, /^running\n/, `systemd is up with no failed unit: ${state.stdout.trim()} ${state.stderr.trim()}`)
    const versions = await root(vm, 'podman --version; systemctl --version | head -1; cloud-init --version 2>&1; uname -r')
    t.comment(`versions in the guest: ${versions.stdout.trim().replace(/\n/g, '; ')}`)
    t.match(versions.stdout, /podman version 5\./, 'podman 5.x')

    const wheel = await root(vm, `id -nG ${USER}; sudo -l -U ${USER}`)
    t.match(wheel.stdout, /\bwheel\b/, 'the user is in group wheel')
    t.match(wheel.stdout, /\(ALL\) ALL/, 'sudo through %wheel ALL=(ALL) ALL (sudo -S with the password worked)')

    const info = await root(vm, "podman info --format '{{.Host.NetworkBackend}}'")
    t.equal(info.stdout.trim(), 'netavark', `podman info reports netavark: ${info.stderr.trim()}`)
    const put = await ssh(vm, 'cat > /tmp/bb.tar', await busyboxTar(dir))
    t.equal(put.code, 0, 'busybox tarball copied in')
    const ctr = await root(
      vm,
      'podman import -q /tmp/bb.tar localhost/bb:1 >/dev/null && podman run --rm localhost/bb:1 /bin/sh -c "echo hello from a container; ip -4 addr show eth0 | grep -c inet"',
    )
    t.match(ctr.stdout, /^hello from a container\n1\n/, `podman run on the default netavark bridge: ${ctr.stderr.trim().slice(-1000)}`)

    for (const s of GUEST_SHIMS) {
      const r = await ssh(vm, `test -e ${s.path}`)
      t.equal(r.code, 0, `shim present: ${s.path}`)
    }
    const py = await ssh(vm, `/usr/libexec/platform-python -c 'import sys; print(sys.version_info[0])'`)
    t.equal(py.stdout.trim(), '3', 'platform-python runs Python 3')

    const { ca, leaf, leafKey } = await makeCa(dir)
    for (const [f, name] of [
      [ca, 'ca.pem'],
      [leaf, 'leaf.pem'],
      [leafKey, 'leaf.key'],
    ] as const)
      await ssh(vm, `cat > /tmp/${name}`, await readFile(f))
    const before = await ssh(vm, 'openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt /tmp/leaf.pem')
    t.not(before.code, 0, 'before update-ca-trust the test CA is not trusted')
    const extract = await root(vm, 'cp /tmp/ca.pem /etc/pki/ca-trust/source/anchors/guest-image-test-ca.pem && update-ca-trust extract')
    t.equal(extract.code, 0, `update-ca-trust extract: ${extract.stderr.trim()}`)
    const after = await ssh(
      vm,
      'openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt /tmp/leaf.pem && openssl verify -CAfile /etc/pki/tls/certs/ca-bundle.crt /tmp/leaf.pem',
    )
    t.equal(after.code, 0, `after update-ca-trust the test CA is trusted: ${after.stdout.trim()} ${after.stderr.trim()}`)
    const curl = await ssh(
      vm,
      'openssl s_server -quiet -accept 4433 -cert /tmp/leaf.pem -key /tmp/leaf.key -www >/dev/null 2>&1 & ' +
        'for i in 1 2 3 4 5 6 7 8 9 10; do curl -s -o /dev/null -w "%{http_code}\\n" https://localhost:4433/ && break; sleep 1; done; kill $!',
    )
    t.match(curl.stdout, /^200$/m, `curl trusts a server certificate from the test CA: ${curl.stderr.trim()}`)

    const gen = await root(
      vm,
      'test -x /usr/lib/systemd/system-generators/podman-system-generator && mkdir -p /etc/containers/systemd && ' +
        'printf "[Container]\\nImage=localhost/bb:1\\nExec=/bin/sh -c \\"sleep 1\\"\\n" > /etc/containers/systemd/probe.container && ' +
        'mkdir -p /tmp/gen && /usr/lib/systemd/system-generators/podman-system-generator /tmp/gen /tmp/gen /tmp/gen && ' +
        'grep -c "^ExecStart=.*podman run" /tmp/gen/probe.service; rm -f /etc/containers/systemd/probe.container',
    )
    t.equal(gen.stdout.trim(), '1', `the quadlet generator exists and turns a .container into a unit: ${gen.stderr.trim()}`)
  } finally {
    await vm.stop()
  }
})

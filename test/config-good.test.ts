// Valid configs load, and normalization gives every later stage what it
// relies on: defaults filled in, paths absolute against the config file's
// directory, netmask from prefix, short name, digest from ref@sha256.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_CONFIG_NAME, EXAMPLE_PATH, loadConfig, loadConfigText } from '../builder/config/load.js'
import { prefixToNetmask } from '../builder/config/normalize.js'
import type { Config } from '../builder/config/types.js'

const good = fileURLToPath(new URL('./fixtures/good-config/', import.meta.url))
const HEAD = 'apiVersion: mirror-appliance/v1\nhost:\n  disk:\n    device: vda\n'
const load = (yaml: string, baseDir = '/cfg') => loadConfigText(yaml, 'appliance.yaml', { baseDir })

// The defaults are part of the user contract (example.yaml documents them).
const MINIMAL: Config = {
  apiVersion: 'mirror-appliance/v1',
  host: {
    hostname: 'mirror.example.internal',
    shortName: 'mirror',
    rhel: '8.10',
    timezone: 'UTC',
    ntpServers: [],
    keyboard: 'us',
    language: 'en_US.UTF-8',
    fips: false,
    network: { mode: 'dhcp', dns: [], searchDomains: [] },
    root: { kind: 'generate' },
    users: [],
    disk: { device: 'vda', minSizeGiB: 64, firmware: 'auto', layout: { rootGiB: 20, swapGiB: 4, varGiB: 0, registryDataGiB: 'rest' } },
    // RHEL 8 ships PermitRootLogin yes; no user has a key here, so passwords stay allowed
    ssh: { permitRootLogin: 'prohibit-password', passwordAuthentication: true },
    firewall: { keepServices: [] },
  },
  registry: {
    flavor: 'quay',
    port: 8443,
    dataDir: '/var/lib/mirror-registry',
    initUser: { name: 'init', email: 'init@mirror.example.internal' },
    tls: { mode: 'generate', validityDays: 730, extraSANs: [], autoRenew: true },
    // sign-up closed: the init user creates users (issue 18 point 4)
    quay: { userCreation: false },
  },
  content: { architecture: 'amd64', images: [], archives: [], ocMirrorArchives: [], keepPayload: false },
  outputs: { oemdrv: true, bundle: false },
}

t.test('minimal config: apiVersion and host.disk.device, everything else defaulted', async (t) => {
  const path = join(good, 'minimal.yaml')
  const r = loadConfig(path)
  t.same(r.config, MINIMAL)
  t.strictSame(r.warnings, [])
  t.equal(r.file, path)
  t.match(r.digest, /^sha256:[0-9a-f]{64}$/)
  t.equal(r.text, readFileSync(path, 'utf8'))
})

t.test('full config: every field set, each normalized', async (t) => {
  const path = join(good, 'full.yaml')
  const { config: c, warnings, input } = loadConfig(path)
  t.strictSame(warnings, [])
  const here = (p: string) => resolve(good, p)
  t.equal(c.host.hostname, 'registry.lab.example.com')
  t.equal(c.host.shortName, 'registry')
  t.equal(c.host.rhel, '8.8')
  t.same(c.host.network, {
    mode: 'static',
    interface: 'ens3',
    mac: '52:54:00:12:34:56',
    address: '192.0.2.10',
    prefix: 25,
    netmask: '255.255.255.128',
    gateway: '192.0.2.1',
    dns: ['192.0.2.53', '192.0.2.54'],
    searchDomains: ['lab.example.com', 'example.com'],
  })
  t.same(c.host.root, { kind: 'hash', hash: input.host!.root && 'hash' in input.host!.root ? input.host!.root.hash : '' })
  t.same(
    c.host.users.map((u) => [u.name, u.gecos, u.sudo, u.password.kind, u.sshKeys.length]),
    [
      ['admin', 'Registry administrator', true, 'plain', 1],
      ['ops', 'Operations', false, 'generate', 0],
      ['svc_backup', '', true, 'locked', 0],
    ],
  )
  t.same(c.host.disk, {
    device: '/dev/disk/by-id/virtio-registry0',
    minSizeGiB: 200,
    firmware: 'uefi',
    layout: { rootGiB: 30, swapGiB: 8, varGiB: 20, registryDataGiB: 120 },
  })
  t.same(c.registry, {
    flavor: 'distribution',
    port: 5000,
    dataDir: '/srv/registry',
    initUser: { name: 'mirroradmin', password: 's3cret-password', email: 'ops@lab.example.com' },
    tls: {
      mode: 'provided',
      certFile: here('certs/registry.crt'),
      keyFile: here('certs/registry.key'),
      caFile: '/etc/pki/lab/ca.crt',
      validityDays: 365,
      extraSANs: ['registry', '192.0.2.10'],
      autoRenew: false,
    },
    quay: { userCreation: true },
  })
  t.same(c.content, {
    architecture: 'all',
    images: [
      {
        ref: 'quay.io/openshift-release-dev/ocp-release@sha256:' + '1'.repeat(64),
        digest: 'sha256:' + '1'.repeat(64),
        target: 'openshift-release-dev/ocp-release',
      },
      { ref: 'registry.example.com:5000/team/app:1.2.3', digest: 'sha256:' + '2'.repeat(64), target: 'mirror/app' },
    ],
    archives: [
      { path: here('archives/tools.tar'), format: 'docker-archive' },
      { path: '/data/oci-images', format: 'oci-dir' },
    ],
    ocMirrorArchives: [here('mirror_000001.tar')],
    keepPayload: false,
  })
  t.same(c.outputs, {
    oemdrv: false,
    iso: { base: resolve(good, '../isos/rhel-8.8-x86_64-dvd.iso') },
    qcow2: { baseImage: here('rhel-8.8-x86_64-kvm.qcow2'), sizeGiB: 250, compress: true },
    pxe: { baseUrl: 'http://192.0.2.5:8080/appliance' },
    bundle: true,
  })
})

t.test('relative paths resolve against the config file, not the working directory', async (t) => {
  const viaPath = loadConfig(join(good, 'full.yaml')).config
  t.equal(dirname(viaPath.registry.tls.certFile!), join(good, 'certs'))
  t.not(process.cwd(), good)
  // loadConfigText takes the base directory explicitly.
  const c = load(HEAD + 'outputs:\n  iso:\n    base: ./a/../rhel.iso\n', '/srv/conf').config
  t.equal(c.outputs.iso!.base, '/srv/conf/rhel.iso')
})

t.test('netmask from prefix', async (t) => {
  const table: [number, string][] = [
    [0, '0.0.0.0'],
    [1, '128.0.0.0'],
    [8, '255.0.0.0'],
    [16, '255.255.0.0'],
    [23, '255.255.254.0'],
    [24, '255.255.255.0'],
    [30, '255.255.255.252'],
    [31, '255.255.255.254'],
    [32, '255.255.255.255'],
  ]
  for (const [prefix, mask] of table) t.equal(prefixToNetmask(prefix), mask, `/${prefix}`)
  const c = load(
    'apiVersion: mirror-appliance/v1\nhost:\n  network:\n    mode: static\n    address: 10.1.2.3/20\n    gateway: 10.1.15.254\n  disk:\n    device: vda\n',
  ).config
  t.same(c.host.network, {
    mode: 'static',
    address: '10.1.2.3',
    prefix: 20,
    netmask: '255.255.240.0',
    gateway: '10.1.15.254',
    dns: [],
    searchDomains: [],
  })
})

t.test('derived values: short name, disk device, init user email, TLS mode', async (t) => {
  const host = (h: string) => load(`apiVersion: mirror-appliance/v1\nhost:\n  hostname: ${h}\n  disk:\n    device: vda\n`).config
  t.equal(host('single').host.shortName, 'single')
  t.equal(host('a.b.c.d').host.shortName, 'a')
  t.equal(host('a.b.c.d').registry.initUser.email, 'init@a.b.c.d')
  const dev = (d: string) => load(`apiVersion: mirror-appliance/v1\nhost:\n  disk:\n    device: ${d}\n`).config.host.disk.device
  t.equal(dev('/dev/sda'), 'sda')
  t.equal(dev('nvme0n1'), 'nvme0n1')
  t.equal(dev('/dev/disk/by-path/pci-0000:00:04.0'), '/dev/disk/by-path/pci-0000:00:04.0')
  t.equal(load(HEAD + 'registry:\n  initUser:\n    name: quayadmin\n').config.registry.initUser.email, 'quayadmin@mirror.example.internal')
  // A certFile without a mode means provided.
  const tls = load(HEAD + 'registry:\n  tls:\n    certFile: c.pem\n    keyFile: k.pem\n', '/x').config.registry.tls
  t.same(tls, { mode: 'provided', certFile: '/x/c.pem', keyFile: '/x/k.pem', validityDays: 730, extraSANs: [], autoRenew: true })
})

t.test('images: digest taken from ref@sha256, target from the source path', async (t) => {
  const d1 = 'sha256:' + 'a'.repeat(64)
  const table: [string, string | undefined, string][] = [
    [`quay.io/org/app@${d1}`, d1, 'org/app'],
    [`quay.io/org/app:1.0@${d1}`, d1, 'org/app'],
    ['quay.io/org/app:1.0', undefined, 'org/app'],
    ['registry.local:5000/a/b/c:latest', undefined, 'a/b/c'],
    ['registry.local:5000/a/b/c', undefined, 'a/b/c'],
  ]
  for (const [ref, digest, target] of table) {
    const r = load(HEAD + `content:\n  images:\n    - ref: ${JSON.stringify(ref)}\n`)
    const img = r.config.content.images[0]!
    t.equal(img.digest, digest, `digest of ${ref}`)
    t.equal(img.target, target, `target of ${ref}`)
    // Without a digest the image is pinned only when fetched: a warning at its ref, not an error.
    t.same(
      r.warnings.map((w) => [w.line, w.col, w.path.join('.')]),
      digest ? [] : [[7, 12, 'content.images.0.ref']],
      `warnings for ${ref}`,
    )
  }
})

t.test('the embedded default config (the demo) loads with no errors and no warnings', async (t) => {
  const r = loadConfig()
  t.equal(r.file, DEFAULT_CONFIG_NAME)
  t.strictSame(r.warnings, [])
  const text = readFileSync(EXAMPLE_PATH, 'utf8')
  const first = text.split('\n')[0]!
  // A path relative to the config, where init writes the schema (test/cli.test.ts follows it as an editor does).
  t.equal(first, '# yaml-language-server: $schema=./mirror-appliance.schema.json', 'editors find the schema beside the config')
  // "the values below are the defaults unless marked example": the default
  // config is the minimal one plus exactly the fields marked example.
  const marked = text.split('\n').filter((l) => /#\s*example\s*$/.test(l))
  t.same(
    marked.map((l) => l.trim().split(':')[0]),
    ['hostname', '- name', 'device'],
  )
  const expected = structuredClone(MINIMAL)
  expected.host.users = [{ name: 'admin', gecos: 'Registry administrator', sudo: true, password: { kind: 'generate' }, sshKeys: [] }]
  t.same(r.config, expected)
})

t.test('YAML details users run into', async (t) => {
  // A quoted "8.10" is the string 8.10; CRLF and a BOM are fine.
  const crlf = '\ufeffapiVersion: mirror-appliance/v1\r\nhost:\r\n  rhel: "8.10"\r\n  disk:\r\n    device: vda\r\n'
  t.equal(load(crlf).config.host.rhel, '8.10')
  // Anchors and aliases within reason are allowed.
  const alias = HEAD.replace('host:\n', 'host:\n  ntpServers: &ntp [192.0.2.1]\n') + 'registry:\n  tls:\n    extraSANs: *ntp\n'
  t.same(load(alias).config.registry.tls.extraSANs, ['192.0.2.1'])
  // Flow style is the same config.
  t.same(load('{apiVersion: mirror-appliance/v1, host: {disk: {device: vda}}}').config, MINIMAL)
})

t.test(
  'host.ssh: password logins off by default once a user has a key; the config overrides; a warning when nobody could log in',
  async (t) => {
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b'
    const withKey = `${HEAD}  users:\n    - name: admin\n      sshKeys: ["${key}"]\n`
    t.same(load(withKey).config.host.ssh, { permitRootLogin: 'prohibit-password', passwordAuthentication: false })
    t.same(load(`${withKey}  ssh: {passwordAuthentication: true, permitRootLogin: "no"}\n`).config.host.ssh, {
      permitRootLogin: 'no',
      passwordAuthentication: true,
    })
    const noKey = load(`${HEAD}  ssh:\n    passwordAuthentication: false\n`)
    t.same(noKey.config.host.ssh.passwordAuthentication, false, 'honoured')
    t.same(
      noKey.warnings.map((w) => [w.line, w.path.join('.'), w.message]),
      [[6, 'host.ssh.passwordAuthentication', 'false, and no user in host.users has sshKeys: nobody can log in over SSH (console only)']],
    )
    t.same(load(`${HEAD}  firewall: {keepServices: [cockpit]}\n`).config.host.firewall, { keepServices: ['cockpit'] })
  },
)

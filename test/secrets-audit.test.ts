// Secrets audit of a real build (the CLI, a config with known plain
// passwords, --iso on the fixture ISO plus oemdrv.iso, --pxe for the served
// tree). Every output file is
// scanned, and the inside of both ISOs (extracted with xorriso, payload
// included), and the CLI's own verbose output. Each file is read raw, as
// base64 at all three alignments, and decoded (base64 blocks, data: URLs,
// quoted base64 strings, gzip), recursively. The carriers of host files
// (ks.cfg, Ignition, Butane) are taken apart into the host files they lay
// down (ks.cfg by running its host-spec %post under bash with a temp root),
// so that each secret is placed in the host file that carries it.
//
// What must hold:
//  - the plain root and user passwords appear nowhere (only $6$ hashes,
//    which verify against them);
//  - the CA private key appears only in secrets/ (no PEM line of it, no
//    private key with its modulus, not its private exponent);
//  - Quay's SECRET_KEY and DATABASE_SECRET_KEY only in Quay's config.yaml
//    and secrets/; the registry's init password and the Redis password only
//    in the host files that need them (listed below) and secrets/ and
//    openshift/pull-secret.json;
//  - every file that carries a secret is 0600 in the output (0700 dirs in
//    secrets/), the PXE tree's ks.cfg included, and on the host no file
//    carrying a secret is readable by others;
//  - issue 18, so that none of it comes back: the build's serve line binds to
//    the install network's address; the host's sshd takes no root password
//    (and no password at all once a user has a key); the firewall closes
//    RHEL's cockpit and dhcpv6-client; the PXE payload download refuses
//    names that leave the payload; no password goes through a sed
//    replacement; chosen passwords are hashed with rounds=100000.
import { createPrivateKey } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { run } from '../builder/exec.js'
import { runCli } from './helpers/cli.js'
import { fixtureIso } from './helpers/fixture-iso.js'
import { snapshot } from './helpers/proc.js'
import { laidFromKickstart } from './hostspec-fixture.js'

const ROOT_PW = 'R00t-Plain-Audit-pw!7'
const ADMIN_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@laptop'
/** Where the PXE tree will be served: this machine's address on the install network */
const PXE_ADDRESS = '192.0.2.1'
const USER_PW = 'Us3r-Plain-Audit-pw#9'
const INIT_PW = 'Init-Plain-Audit-pw%5'

const work = mkdtempSync(join(tmpdir(), 'secrets-audit-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const out = join(work, 'out')
const config = join(work, 'appliance.yaml')
writeFileSync(
  config,
  `apiVersion: mirror-appliance/v1
host:
  hostname: audit.example.internal
  root:
    plain: "${ROOT_PW}"
  users:
    - name: admin
      sudo: true
      password:
        plain: "${USER_PW}"
      sshKeys:
        - ${ADMIN_KEY}
  disk:
    device: vda
registry:
  initUser:
    name: init
    password: "${INIT_PW}"
outputs:
  oemdrv: true
`,
)

// ---- reading everything, decoded --------------------------------------------

interface Doc {
  /** Where: an output path, "appliance.iso:/ks.cfg", "host:/etc/… (via host/ks.cfg)", … */
  loc: string
  data: Buffer
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/

function tryB64(s: string): Buffer | null {
  const clean = s.replace(/\s+/g, '')
  if (clean.length < 16 || clean.length % 4 !== 0 || !B64.test(clean)) return null
  const b = Buffer.from(clean, 'base64')
  if (b[0] === 0x1f && b[1] === 0x8b) {
    try {
      return gunzipSync(b)
    } catch {
      return b
    }
  }
  return b
}

/** Everything base64 inside a text, decoded: line blocks, data: URLs, quoted strings. */
function decodedParts(data: Buffer): Buffer[] {
  const text = data.toString('latin1')
  const parts: Buffer[] = []
  const lines = text.split(/\r?\n/)
  let block: string[] = []
  const flush = () => {
    const b = block.length ? tryB64(block.join('')) : null
    if (b) parts.push(b)
    block = []
  }
  for (const l of lines) {
    if (B64.test(l.trim()) && l.trim().length >= 4) block.push(l.trim())
    else flush()
  }
  flush()
  for (const m of text.matchAll(/base64,([A-Za-z0-9+/=]+)/g)) {
    const b = tryB64(m[1]!)
    if (b) parts.push(b)
  }
  for (const m of text.matchAll(/["']([A-Za-z0-9+/]{16,}={0,2})["']/g)) {
    const b = tryB64(m[1]!)
    if (b) parts.push(b)
  }
  return parts
}

/** The needle as it reads inside base64 of any text, at each of the three byte alignments. */
function base64Forms(needle: string): string[] {
  const n = Buffer.from(needle)
  const forms: string[] = []
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), n])
      .toString('base64')
      .replace(/=+$/, '')
    const start = [0, 2, 3][k]!
    const total = k + n.length
    const end = total % 3 === 0 ? enc.length : Math.floor(total / 3) * 4
    forms.push(enc.slice(start, end))
  }
  return forms
}

/** data and everything decoded from it (three levels deep), each also as text without line breaks. */
interface Views {
  bufs: Buffer[]
  flat: string[]
}
const viewCache = new WeakMap<Buffer, Views>()
function views(data: Buffer): Views {
  let v = viewCache.get(data)
  if (!v) {
    const bufs: Buffer[] = []
    const add = (b: Buffer, depth: number) => {
      bufs.push(b)
      if (depth < 3) for (const p of decodedParts(b)) add(p, depth + 1)
    }
    add(data, 0)
    v = { bufs, flat: bufs.map((b) => b.toString('latin1').replace(/[\r\n]/g, '')) }
    viewCache.set(data, v)
  }
  return v
}

/** True if needle is in data: raw, as base64 (also across line breaks), or in anything decoded from it. */
function contains(data: Buffer, needle: string | Buffer): boolean {
  const v = views(data)
  const raw = typeof needle === 'string' ? Buffer.from(needle) : needle
  if (v.bufs.some((b) => b.includes(raw))) return true
  if (typeof needle !== 'string') return false
  const forms = base64Forms(needle).filter((f) => f.length >= 8)
  return v.flat.some((text) => forms.some((f) => text.includes(f)))
}

async function listFiles(dir: string): Promise<string[]> {
  return [...snapshot(dir)].filter(([, e]) => e.kind === 'file').map(([p]) => p)
}

/** Host files laid down by each carrier, plus what is left of the carrier outside them. */
async function splitCarrier(rel: string, data: Buffer): Promise<Doc[]> {
  const text = data.toString('utf8')
  const docs: Doc[] = []
  if (rel.endsWith('ks.cfg')) {
    const tmp = mkdtempSync(join(work, 'ks-'))
    const laid = await laidFromKickstart(text, tmp)
    for (const f of laid.files) {
      docs.push({ loc: `host:${f.path} (via ${rel})`, data: Buffer.from(f.contents, 'base64') })
      hostModes.set(`${f.path} (via ${rel})`, { mode: f.mode, owner: f.owner })
    }
    const rest = text.replace(/<<'MIRROR_APPLIANCE_B64'\n[\s\S]*?\nMIRROR_APPLIANCE_B64\n/g, "<<'MIRROR_APPLIANCE_B64'\n")
    docs.push({ loc: `${rel} (outside the host files)`, data: Buffer.from(rest) })
  } else if (rel.endsWith('.ign') || rel.endsWith('.bu')) {
    const doc = rel.endsWith('.ign') ? JSON.parse(text) : parseYaml(text)
    for (const f of doc.storage?.files ?? []) {
      const c = f.contents ?? {}
      const body =
        typeof c.inline === 'string'
          ? Buffer.from(c.inline)
          : (tryB64(String(c.source ?? '').replace(/^data:[^,]*;base64,/, '')) ?? Buffer.alloc(0))
      docs.push({ loc: `host:${f.path} (via ${rel})`, data: body })
      hostModes.set(`${f.path} (via ${rel})`, {
        mode: typeof f.mode === 'string' ? parseInt(f.mode, 8) : f.mode,
        owner: `${f.user?.name ?? f.user?.id}:${f.group?.name ?? f.group?.id}`,
      })
      f.contents = {}
    }
    docs.push({ loc: `${rel} (outside the host files)`, data: Buffer.from(JSON.stringify(doc)) })
  }
  return docs
}

const hostModes = new Map<string, { mode: number; owner: string }>()
const docs: Doc[] = []
let cliOutput = ''
const isos = ['appliance.iso', 'oemdrv.iso']

t.before(async () => {
  const r = await runCli(
    [
      'build',
      '-c',
      config,
      '-o',
      out,
      '--iso',
      await fixtureIso(),
      '--pxe',
      '--pxe-url',
      `http://${PXE_ADDRESS}:8080`,
      '--allow-missing',
      '--verbose',
    ],
    {
      env: { MIRROR_APPLIANCE_CACHE: join(work, 'cache'), SOURCE_DATE_EPOCH: '1700000000' },
    },
  )
  if (r.code !== 0) throw new Error(`build failed: ${r.stderr}`)
  cliOutput = r.stdout + r.stderr
  for (const rel of await listFiles(out)) {
    const data = readFileSync(join(out, rel))
    docs.push({ loc: rel, data })
    if (/(^|\/)(ks\.cfg|appliance\.ign|appliance\.bu)$/.test(rel)) docs.push(...(await splitCarrier(rel, data)))
  }
  for (const iso of isos) {
    const dir = join(work, `x-${iso}`)
    mkdirSync(dir)
    await run('xorriso', ['-osirrox', 'on', '-indev', join(out, iso), '-extract', '/', dir])
    for (const rel of await listFiles(dir)) {
      const data = readFileSync(join(dir, rel))
      docs.push({ loc: `${iso}:/${rel}`, data })
      if (rel === 'ks.cfg') docs.push(...(await splitCarrier(`${iso}:/ks.cfg`, data)))
    }
  }
})

/** Every place a needle is found, sorted; carriers themselves are left out when split into host files. */
function where(needle: string | Buffer): string[] {
  // The raw ISOs are read as the files xorriso extracts from them.
  const carriers = new Set([
    ...isos,
    ...docs.filter((d) => d.loc.endsWith('(outside the host files)')).map((d) => d.loc.replace(/ \(outside the host files\)$/, '')),
  ])
  return docs
    .filter((d) => !carriers.has(d.loc) && contains(d.data, needle))
    .map((d) => d.loc)
    .sort()
}

t.test('the scan sees inside: ISOs extracted, carriers split, payload present', async (t) => {
  t.ok(
    docs.some((d) => d.loc === 'appliance.iso:/ks.cfg'),
    'ks.cfg read from inside appliance.iso',
  )
  t.ok(
    docs.some((d) => d.loc === 'oemdrv.iso:/ks.cfg'),
    'ks.cfg read from inside oemdrv.iso',
  )
  t.ok(
    docs.some((d) => d.loc.startsWith('appliance.iso:/appliance/')),
    'payload read from inside appliance.iso',
  )
  t.ok(
    docs.some((d) => d.loc.startsWith('oemdrv.iso:/appliance/')),
    'payload read from inside oemdrv.iso',
  )
  t.ok(
    docs.some((d) => d.loc === 'host:/var/lib/mirror-registry/quay-config/config.yaml (via host/ks.cfg)'),
    'ks.cfg taken apart by running its %post',
  )
  t.ok(
    docs.some((d) => d.loc === 'host:/var/lib/mirror-registry/quay-config/config.yaml (via pxe/ks.cfg)'),
    'the PXE tree read and its ks.cfg taken apart',
  )
  t.ok(
    docs.some((d) => d.loc.startsWith('pxe/appliance/')),
    'the payload the PXE tree serves read too',
  )
  // The decoding finds what it should: the init password is only base64 inside the pull secret.
  t.ok(contains(readFileSync(join(out, 'openshift/pull-secret.json')), INIT_PW), 'finds a password inside base64 (the pull secret)')
  t.notOk(readFileSync(join(out, 'openshift/pull-secret.json')).includes(INIT_PW), '(not there in plain text)')
})

t.test('plain root and user passwords appear nowhere; their $6$ hashes verify', async (t) => {
  t.same(where(ROOT_PW), [], 'root password')
  t.same(where(USER_PW), [], 'user password')
  t.notOk(cliOutput.includes(ROOT_PW) || cliOutput.includes(USER_PW), 'nor in the CLI output')

  const ks = readFileSync(join(out, 'host/ks.cfg'), 'utf8')
  const rootHash = /^rootpw --iscrypted "(\$6\$[^"]+)"$/m.exec(ks)?.[1]
  const userHash = /^user --name=admin .*--iscrypted --password="(\$6\$[^"]+)"$/m.exec(ks)?.[1]
  for (const [who, hash, pw] of [
    ['root', rootHash, ROOT_PW],
    ['admin', userHash, USER_PW],
  ] as const) {
    t.ok(hash, `${who}: a $6$ hash in ks.cfg`)
    // issue 18: a chosen password costs a guesser 100000 rounds, not crypt's default 5000
    t.match(hash, /^\$6\$rounds=100000\$/, `${who}: hashed with rounds=100000`)
    // glibc's crypt, as a login on the host checks it (openssl passwd -6 knows no rounds=)
    const py = 'import crypt,sys; h=sys.argv[1]; sys.exit(0 if crypt.crypt(sys.stdin.read(), h) == h else 1)'
    const r = await run('python3', ['-W', 'ignore', '-c', py, hash!], { input: pw, nothrow: true })
    t.equal(r.code, 0, `${who}: the hash is of the configured password (glibc crypt)`)
  }
  for (const iso of isos) {
    const isoKs = docs.find((d) => d.loc === `${iso}:/ks.cfg`)!.data.toString('utf8')
    t.same(isoKs.match(/^(rootpw|user) .*$/gm), ks.match(/^(rootpw|user) .*$/gm), `${iso}: the same hashes in its ks.cfg`)
  }
})

t.test('the CA private key is only in secrets/', async (t) => {
  const caPem = readFileSync(join(out, 'secrets/ca.key'), 'utf8')
  const ca = createPrivateKey(caPem).export({ format: 'jwk' })
  const lines = caPem.split('\n').filter((l) => l && !l.startsWith('-----'))
  const allowed = ['secrets/ca.key', 'secrets/secrets.json']
  const found = new Set<string>()
  for (const l of lines.filter((l) => l.length >= 32)) for (const w of where(l)) found.add(w)
  t.same([...found].sort(), allowed, 'PEM lines of the CA key: only in secrets/')

  const d = Buffer.from(ca.d!, 'base64url')
  const outside = (l: string[]) => l.filter((x) => !x.startsWith('secrets/'))
  t.same(outside(where(d.subarray(0, 48))), [], 'its private exponent (raw bytes, as in DER) nowhere else')
  t.same(outside(where(d.toString('hex').slice(0, 64))), [], 'its private exponent (hex) nowhere else')

  // Any private key anywhere outside secrets/ must not be the CA's (another encoding would not match the PEM lines).
  const keys: string[] = []
  for (const doc of docs) {
    if (doc.loc.startsWith('secrets/')) continue
    for (const b of views(doc.data).bufs) {
      for (const m of b.toString('latin1').matchAll(/-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g)) {
        // Inside JSON or YAML strings the line breaks are escaped.
        const pem = m[0].replace(/\\r/g, '').replace(/\\n/g, '\n')
        let n: string | undefined
        try {
          n = createPrivateKey(pem).export({ format: 'jwk' }).n
        } catch (e) {
          t.fail(`${doc.loc}: a private key that cannot be read (${(e as Error).message}); look at it`)
          continue
        }
        keys.push(doc.loc)
        t.not(n, ca.n, `${doc.loc}: a private key, not the CA's`)
      }
    }
  }
  t.ok(keys.length > 0, `the server key was found and compared (${[...new Set(keys)].length} places), so the scan would see a key`)
})

const QUAY_CONFIG = '/var/lib/mirror-registry/quay-config/config.yaml'
const carried = (hostPath: string) => [
  `host:${hostPath} (via appliance.iso:/ks.cfg)`,
  `host:${hostPath} (via host/appliance.bu)`,
  `host:${hostPath} (via host/appliance.ign)`,
  `host:${hostPath} (via host/ks.cfg)`,
  `host:${hostPath} (via oemdrv.iso:/ks.cfg)`,
  `host:${hostPath} (via pxe/ks.cfg)`,
  `host/rootfs${hostPath}`,
]

t.test("Quay's SECRET_KEY and DATABASE_SECRET_KEY: only in Quay's config.yaml and secrets/", async (t) => {
  const stored = JSON.parse(readFileSync(join(out, 'secrets/secrets.json'), 'utf8'))
  const expected = [...carried(QUAY_CONFIG), 'secrets/secrets.json'].sort()
  t.same(where(stored.quaySecretKey), expected, 'SECRET_KEY')
  t.same(where(stored.quayDatabaseSecretKey), expected, 'DATABASE_SECRET_KEY')
  t.notOk(cliOutput.includes(stored.quaySecretKey) || cliOutput.includes(stored.quayDatabaseSecretKey), 'nor in the CLI output')
})

t.test('the init password: only where the host needs it, secrets/ and the OpenShift pull secret', async (t) => {
  const hostNeeds = [
    '/etc/mirror-appliance/quay-initialize.json', // first boot creates the user with it
    '/etc/mirror-appliance/registry-auth.curl', // first boot logs in to push the payload
    '/root/mirror-appliance/credentials.txt', // for the admin on the host
    '/root/mirror-appliance/pull-secret.json', // for the admin on the host
  ]
  const expected = [...hostNeeds.flatMap(carried), 'openshift/pull-secret.json'].sort()
  const found = where(INIT_PW)
  t.same(
    found.filter((l) => !l.startsWith('secrets/')),
    expected,
  )
  t.notOk(cliOutput.includes(INIT_PW), 'nor in the CLI output')
})

t.test('the Redis password: only in the Redis and Quay configs and secrets/', async (t) => {
  const stored = JSON.parse(readFileSync(join(out, 'secrets/secrets.json'), 'utf8'))
  const expected = [...carried('/var/lib/mirror-registry/redis/redis.conf'), ...carried(QUAY_CONFIG), 'secrets/secrets.json'].sort()
  t.same(where(stored.redisPassword), expected)
})

t.test(
  'modes: secrets/ 0700 and its files 0600; every output file that carries a secret 0600; no host file with a secret readable by others',
  async (t) => {
    const stored = JSON.parse(readFileSync(join(out, 'secrets/secrets.json'), 'utf8'))
    const caPem = readFileSync(join(out, 'secrets/ca.key'), 'utf8')
    const needles = [INIT_PW, stored.quaySecretKey, stored.quayDatabaseSecretKey, stored.redisPassword, caPem.split('\n')[5]!]
    const snap = snapshot(out)
    t.equal(snap.get('secrets')!.mode, 0o700, 'secrets/ is 0700')
    for (const [p, e] of snap) if (p.startsWith('secrets/')) t.equal(e.mode, 0o600, `${p} is 0600`)

    const outputFiles = docs.filter((d) => !d.loc.includes(':') && !d.loc.includes('(') && snap.get(d.loc)?.kind === 'file')
    for (const d of outputFiles) {
      if (!needles.some((n) => contains(d.data, n))) continue
      const mode = snap.get(d.loc)!.mode
      if (d.loc.startsWith('host/rootfs/')) {
        // A copy of the host's files with the host's modes (Quay's config.yaml is 0640 for its
        // container's group root there); on the build machine at least no one else may read it.
        t.equal(mode & 0o007, 0, `${d.loc} carries a secret: not readable by others (${mode.toString(8)}, as on the host)`)
      } else t.equal(mode & 0o077, 0, `${d.loc} carries a secret: not readable by group or others (${mode.toString(8)})`)
    }
    // On the host: the modes the carriers lay the files down with (ks.cfg run under bash, Ignition, Butane).
    for (const d of docs.filter((d) => d.loc.startsWith('host:'))) {
      if (!needles.some((n) => contains(d.data, n))) continue
      const m = hostModes.get(d.loc.slice('host:'.length))!
      t.equal(m.mode & 0o007, 0, `${d.loc}: not readable by others (${m.mode.toString(8)} ${m.owner})`)
      if (m.mode & 0o070) t.match(m.owner, /:root$/, `${d.loc}: group-readable only by group root`)
    }
    t.equal(statSync(join(out, 'openshift/pull-secret.json')).mode & 0o777, 0o600, 'openshift/pull-secret.json is 0600')
  },
)

// ---- issue 18: what must not come back ----------------------------------------

t.test("the PXE tree: ks.cfg 0600 like a fleet's, and the build's serve line listens on the install network only", async (t) => {
  t.equal(statSync(join(out, 'pxe/ks.cfg')).mode & 0o777, 0o600, 'pxe/ks.cfg is 0600')
  t.ok(contains(readFileSync(join(out, 'pxe/ks.cfg')), INIT_PW), '(it does carry the registry password)')
  const line = /serve the tree with: (mirror-appliance serve .*)$/m.exec(cliOutput)?.[1]
  t.equal(
    line,
    `mirror-appliance serve ${join(out, 'pxe')} --bind ${PXE_ADDRESS} --port 8080`,
    'the serve line binds to the --pxe-url address',
  )
  t.match(cliOutput, /stop serve once the host is installed/, 'and says to stop serving')
})

/** The kickstarts a build writes for the installed host, as files of the output. */
const kickstarts = () => ['host/ks.cfg', 'pxe/ks.cfg'].map((p) => ({ p, text: readFileSync(join(out, p), 'utf8') }))

t.test('the installed host: sshd takes no root password, and no password once a user has a key; where RHEL 8 reads it', async (t) => {
  const script = '/usr/local/libexec/mirror-appliance/sshd-settings'
  const laid = docs.filter((d) => d.loc.startsWith(`host:${script} (via `))
  t.same(
    laid.map((d) => d.loc.replace(/^.* \(via (.*)\)$/, '$1')).sort(),
    ['appliance.iso:/ks.cfg', 'host/appliance.bu', 'host/appliance.ign', 'host/ks.cfg', 'oemdrv.iso:/ks.cfg', 'pxe/ks.cfg'],
    'every carrier lays down the sshd settings',
  )
  for (const d of laid) {
    const text = d.data.toString()
    t.match(text, /^permit_root_login='prohibit-password'$/m, `${d.loc}: PermitRootLogin prohibit-password`)
    t.match(text, /^password_authentication='no'$/m, `${d.loc}: PasswordAuthentication no (admin has a key)`)
  }
  for (const { p, text } of kickstarts()) {
    t.match(text, new RegExp(`^'${script}'$`, 'm'), `${p}: %post applies them to /etc/ssh/sshd_config`)
    // RHEL 8's sshd_config includes no sshd_config.d: a drop-in there would be ignored
    t.notMatch(text, /sshd_config\.d/, `${p}: no drop-in RHEL 8 would ignore`)
  }
})

t.test("the installed host's firewall: RHEL's cockpit and dhcpv6-client closed", async (t) => {
  for (const { p, text } of kickstarts())
    t.match(text, /^firewall --enabled --service=ssh --port=8443:tcp --remove-service=cockpit,dhcpv6-client$/m, p)
})

t.test('the PXE payload download refuses names that leave the payload, before curl writes them', async (t) => {
  const pxeKs = readFileSync(join(out, 'pxe/ks.cfg'), 'utf8')
  const loop = /^while read -r _ name; do\n[\s\S]*?^done < "\$dest\/SHA256SUMS"$/m.exec(pxeKs)?.[0] ?? ''
  t.match(loop, /--create-dirs/, 'the download loop is there')
  const refuse = loop.indexOf('refusing to download it')
  t.ok(refuse >= 0 && refuse < loop.indexOf('curl '), 'names are checked before curl writes them')
})

t.test('no password goes through a sed replacement on the host (& and | in it would corrupt the file)', async (t) => {
  const ctl = docs.find((d) => d.loc === 'host:/usr/local/bin/mirror-registryctl (via host/ks.cfg)')
  t.ok(ctl, 'mirror-registryctl laid down by the kickstart')
  t.notMatch(ctl?.data.toString() ?? '', /sed [^\n]*\$pw/, 'no sed expression with the password in it')
})

t.test('the CA in secrets/ signs server certificates only, and only for this appliance (pathlen:0, name constraints)', async (t) => {
  const ca = join(out, 'secrets/ca.crt')
  const text = (await run('openssl', ['x509', '-in', ca, '-noout', '-text'])).stdout
  t.match(text, /X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0/, 'pathlen:0')
  t.match(text, /X509v3 Name Constraints: critical\n\s+Permitted:/, 'name constraints')
  // a certificate the CA's own key signs for a foreign name: refused by openssl
  const d = mkdtempSync(join(tmpdir(), 'audit-ca-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  writeFileSync(join(d, 'ext.cnf'), 'subjectAltName = DNS:quay.io\n')
  await run('openssl', [
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    join(d, 'k'),
    '-subj',
    '/CN=quay.io',
    '-out',
    join(d, 'csr'),
  ])
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    join(d, 'csr'),
    '-CA',
    ca,
    '-CAkey',
    join(out, 'secrets/ca.key'),
    '-set_serial',
    '1',
    '-days',
    '1',
    '-extfile',
    join(d, 'ext.cnf'),
    '-out',
    join(d, 'crt'),
  ])
  const v = await run('openssl', ['verify', '-CAfile', ca, join(d, 'crt')], { nothrow: true })
  t.not(v.code, 0, `a certificate for quay.io signed with secrets/ca.key does not verify: ${v.stdout}${v.stderr}`)
  const ctl = docs.find((x) => x.loc === 'host:/usr/local/bin/mirror-registryctl (via host/ks.cfg)')?.data.toString() ?? ''
  t.match(ctl, /basicConstraints = critical, CA:TRUE, pathlen:0/, 'rotate-cert’s new CA: pathlen:0')
  t.match(ctl, /-addext "nameConstraints = critical, \$nc"/, 'and name constraints')
})

// Bring-your-own certificate: every check a user can trip, each with a
// certificate made by openssl the way a site CA would make it.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigText } from '../builder/config/load.js'
import { planPki } from '../builder/plan/pki.js'
import { seededRng } from '../builder/plan/random.js'

const dir = mkdtempSync(join(tmpdir(), 'pki-byo-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const p = (n: string) => join(dir, n)
const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })

function key(name: string, alg: 'rsa' | 'ec' = 'rsa') {
  ossl(
    alg === 'rsa'
      ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', p(name)]
      : ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', p(name)],
  )
}
function selfSignedCa(name: string, days = 3650) {
  key(`${name}.key`)
  ossl([
    'req',
    '-x509',
    '-new',
    '-key',
    p(`${name}.key`),
    '-subj',
    `/CN=${name}`,
    '-days',
    String(days),
    '-out',
    p(`${name}.crt`),
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ])
}
function sign(opts: {
  name: string
  ca: string
  san: string
  days?: number
  isCa?: boolean
  alg?: 'rsa' | 'ec'
  notBefore?: string
  notAfter?: string
}) {
  key(`${opts.name}.key`, opts.alg)
  ossl(['req', '-new', '-key', p(`${opts.name}.key`), '-subj', `/CN=${opts.name}`, '-out', p(`${opts.name}.csr`)])
  writeFileSync(
    p(`${opts.name}.ext`),
    opts.isCa
      ? 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n'
      : `subjectAltName=${opts.san}\nextendedKeyUsage=serverAuth\n`,
  )
  if (opts.notBefore) {
    // openssl ca can set explicit dates; x509 -req cannot before 3.x: use `ca` with a minimal config
    writeFileSync(
      p('ca.cnf'),
      `[ca]\ndefault_ca=d\n[d]\ndatabase=${p('index.txt')}\nnew_certs_dir=${dir}\nserial=${p('serial')}\ndefault_md=sha256\npolicy=pol\ncopy_extensions=none\n[pol]\ncommonName=supplied\n`,
    )
    writeFileSync(p('index.txt'), '')
    writeFileSync(p('serial'), '1000\n')
    ossl([
      'ca',
      '-batch',
      '-config',
      p('ca.cnf'),
      '-cert',
      p(`${opts.ca}.crt`),
      '-keyfile',
      p(`${opts.ca}.key`),
      '-in',
      p(`${opts.name}.csr`),
      '-out',
      p(`${opts.name}.crt`),
      '-startdate',
      opts.notBefore,
      '-enddate',
      opts.notAfter!,
      '-extfile',
      p(`${opts.name}.ext`),
      '-notext',
    ])
    return
  }
  ossl([
    'x509',
    '-req',
    '-in',
    p(`${opts.name}.csr`),
    '-CA',
    p(`${opts.ca}.crt`),
    '-CAkey',
    p(`${opts.ca}.key`),
    '-CAcreateserial',
    '-days',
    String(opts.days ?? 365),
    '-extfile',
    p(`${opts.name}.ext`),
    '-out',
    p(`${opts.name}.crt`),
  ])
}

selfSignedCa('rootca')
selfSignedCa('otherca')
sign({ name: 'good', ca: 'rootca', san: 'DNS:registry.lab.example,IP:192.0.2.10' })
sign({ name: 'wrongname', ca: 'rootca', san: 'DNS:other.lab.example' })
sign({ name: 'wildcard', ca: 'rootca', san: 'DNS:*.lab.example', alg: 'ec' })
sign({ name: 'inter', ca: 'rootca', san: '', isCa: true })
sign({ name: 'leaf', ca: 'inter', san: 'DNS:registry.lab.example' })
sign({ name: 'old', ca: 'rootca', san: 'DNS:registry.lab.example', notBefore: '20200101000000Z', notAfter: '20210101000000Z' })
sign({ name: 'future', ca: 'rootca', san: 'DNS:registry.lab.example', notBefore: '20400101000000Z', notAfter: '20410101000000Z' })
writeFileSync(p('leaf-chain.crt'), readFileSync(p('leaf.crt'), 'utf8') + readFileSync(p('inter.crt'), 'utf8'))
writeFileSync(p('selfsigned-chain.crt'), readFileSync(p('good.crt'), 'utf8') + readFileSync(p('rootca.crt'), 'utf8'))
writeFileSync(p('notpem.crt'), 'hello\n')

function cfg(tls: string) {
  return loadConfigText(
    `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda } }
registry:
  tls:
    mode: provided
${tls}
`,
    join(dir, 'appliance.yaml'),
    { baseDir: dir },
  ).config
}
const plan = (tls: string) => planPki({ config: cfg(tls), rng: seededRng('x'), epoch: 1_700_000_000, configDir: dir })

t.test('a good certificate, key and CA are taken as they are', async (t) => {
  const pki = plan('    certFile: good.crt\n    keyFile: good.key\n    caFile: rootca.crt')
  t.equal(pki.caCertPem.trim(), readFileSync(p('rootca.crt'), 'utf8').trim())
  t.equal(pki.serverCertPem.trim(), readFileSync(p('good.crt'), 'utf8').trim())
  t.equal(pki.serverKeyPem, readFileSync(p('good.key'), 'utf8'))
  t.equal(pki.caKeyPem, undefined, 'no CA key: the user keeps it')
  t.same(pki.dnsNames, ['registry.lab.example'])
  t.same(pki.ipAddresses, ['192.0.2.10'])
})

t.test('an EC key and a wildcard name are fine', async (t) => {
  const pki = plan('    certFile: wildcard.crt\n    keyFile: wildcard.key\n    caFile: rootca.crt')
  t.same(pki.dnsNames, ['*.lab.example'])
})

t.test('an intermediate in certFile: chain verifies to the root, served in order', async (t) => {
  const pki = plan('    certFile: leaf-chain.crt\n    keyFile: leaf.key\n    caFile: rootca.crt')
  t.equal(pki.serverChainPem.match(/BEGIN CERTIFICATE/g)!.length, 2)
  t.equal(pki.caCertPem.trim(), readFileSync(p('rootca.crt'), 'utf8').trim())
  t.throws(
    () => plan('    certFile: leaf.crt\n    keyFile: leaf.key\n    caFile: rootca.crt'),
    { name: 'UserError', message: /leaf\.crt\): the chain does not verify to the CA in .*rootca\.crt/ },
    'missing intermediate',
  )
})

t.test('without caFile the chain must end in a self-signed root', async (t) => {
  const pki = plan('    certFile: selfsigned-chain.crt\n    keyFile: good.key')
  t.equal(pki.caCertPem.trim(), readFileSync(p('rootca.crt'), 'utf8').trim())
  t.throws(() => plan('    certFile: good.crt\n    keyFile: good.key'), { name: 'UserError', message: /caFile: needed/ })
})

const failures: [string, string, RegExp][] = [
  [
    'key of another certificate',
    '    certFile: good.crt\n    keyFile: wrongname.key\n    caFile: rootca.crt',
    /keyFile \(.*wrongname\.key\): the key does not belong to the certificate/,
  ],
  [
    'signed by another CA',
    '    certFile: good.crt\n    keyFile: good.key\n    caFile: otherca.crt',
    /certFile \(.*good\.crt\): the chain does not verify to the CA in .*otherca\.crt/,
  ],
  [
    'hostname not covered',
    '    certFile: wrongname.crt\n    keyFile: wrongname.key\n    caFile: rootca.crt',
    /does not cover host\.hostname registry\.lab\.example \(SANs: DNS:other\.lab\.example\)/,
  ],
  [
    'expired',
    '    certFile: old.crt\n    keyFile: old.key\n    caFile: rootca.crt',
    /old\.crt\): certificate "CN=old" expired on 2021-01-01/,
  ],
  [
    'not yet valid',
    '    certFile: future.crt\n    keyFile: future.key\n    caFile: rootca.crt',
    /future\.crt\): certificate "CN=future" is not valid before 2040-01-01/,
  ],
  ['missing file', '    certFile: nope.crt\n    keyFile: good.key\n    caFile: rootca.crt', /certFile: cannot read .*nope\.crt: ENOENT/],
  ['not PEM', '    certFile: notpem.crt\n    keyFile: good.key\n    caFile: rootca.crt', /certFile \(.*notpem\.crt\): no PEM certificate/],
  [
    'key not a key',
    '    certFile: good.crt\n    keyFile: notpem.crt\n    caFile: rootca.crt',
    /keyFile \(.*notpem\.crt\): not a readable, unencrypted private key/,
  ],
  [
    'CA file not PEM',
    '    certFile: good.crt\n    keyFile: good.key\n    caFile: notpem.crt',
    /caFile \(.*notpem\.crt\): no PEM certificate/,
  ],
]
for (const [name, tls, msg] of failures) {
  t.test(`refused: ${name}`, async (t) => {
    t.throws(() => plan(tls), { name: 'UserError', message: msg })
  })
}

t.test('expiry is judged at build time: the good cert is refused two years on', async (t) => {
  t.throws(
    () =>
      planPki({
        config: cfg('    certFile: good.crt\n    keyFile: good.key\n    caFile: rootca.crt'),
        rng: seededRng('x'),
        epoch: 0,
        configDir: dir,
        now: new Date(Date.now() + 2 * 365 * 86400e3),
      }),
    { name: 'UserError', message: /expired/ },
  )
})

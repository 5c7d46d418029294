// A real, throw-away, single-node Ceph for object-storage tests: ceph-mon,
// one ceph-osd with the memstore object store (no disk), and radosgw, from
// Debian's packages, as plain child processes on 127.0.0.1. No cephx
// (auth none), pool size 1. A radosgw user with known keys is created with
// radosgw-admin; buckets are created over S3 with the small SigV4 signer
// below (an implementation independent of the preflight's, on purpose).
//
// radosgw serves plain http and, with `tls`, https with a certificate for
// 127.0.0.1 signed by a CA made here (openssl), to test private endpoints.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, createHmac, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './net.js'
import { keyAndRequest, selfSignedCa, signRequest } from './openssl.js'

export const CEPH_TOOLS = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool', 'ceph-authtool'] as const

/** Why Ceph cannot run here, or null. */
export function cephMissing(): string | null {
  const missing = CEPH_TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0)
  return missing.length
    ? `Ceph is not installed (${missing.join(', ')} missing): apt-get install ceph-mon ceph-osd radosgw (.ci/run does)`
    : null
}

export interface TestCeph {
  /** http://127.0.0.1:PORT */
  endpoint: string
  /** https://127.0.0.1:PORT when started with tls */
  tlsEndpoint?: string
  /** PEM of the CA that signed the https endpoint's certificate */
  caPem?: string
  accessKey: string
  secretKey: string
  dir: string
  /** Seconds from the first command to radosgw answering */
  startSeconds: number
  createBucket(name: string): Promise<void>
  /** Object names in a bucket, from radosgw-admin (not through S3) */
  listObjects(bucket: string): string[]
  stop(): Promise<void>
}

function must(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`${what}: ${cmd} ${args.join(' ')} exited ${r.status}\n${r.stderr}${r.stdout}`)
  return r.stdout
}

/** The last lines of each daemon's own log file: radosgw says why it waits only there. */
function logFileTails(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).map((f) => {
    const lines = readFileSync(join(dir, f), 'utf8').trimEnd().split('\n')
    return `--- ${f} (last ${Math.min(lines.length, 25)} lines)\n${lines.slice(-25).join('\n')}`
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** SigV4 headers for a path-style S3 request with an empty or given body. */
export function sigv4(o: {
  method: string
  url: string
  body?: Buffer
  region?: string
  accessKey: string
  secretKey: string
  now?: Date
}): Record<string, string> {
  const u = new URL(o.url)
  const now = o.now ?? new Date()
  const amzDate = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '')
  const day = amzDate.slice(0, 8)
  const region = o.region ?? 'us-east-1'
  const payload = createHash('sha256')
    .update(o.body ?? Buffer.alloc(0))
    .digest('hex')
  const headers: Record<string, string> = { host: u.host, 'x-amz-content-sha256': payload, 'x-amz-date': amzDate }
  const names = Object.keys(headers).sort()
  const canonical = [
    o.method,
    u.pathname,
    u.search.slice(1),
    names.map((n) => `${n}:${headers[n]}\n`).join(''),
    names.join(';'),
    payload,
  ].join('\n')
  const scope = `${day}/${region}/s3/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n')
  let k: Buffer = createHmac('sha256', `AWS4${o.secretKey}`).update(day).digest()
  for (const part of [region, 's3', 'aws4_request']) k = createHmac('sha256', k).update(part).digest()
  const sig = createHmac('sha256', k).update(toSign).digest('hex')
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${o.accessKey}/${scope}, SignedHeaders=${names.join(';')}, Signature=${sig}`,
  }
}

function makeTlsMaterial(dir: string): { caPem: string; cert: string; key: string } {
  const ca = join(dir, 'tls')
  mkdirSync(ca)
  const p = (n: string) => join(ca, n)
  selfSignedCa({ key: p('ca.key'), cert: p('ca.crt'), subject: '/CN=ceph test CA', days: 2 })
  keyAndRequest({ key: p('rgw.key'), csr: p('rgw.csr'), subject: '/CN=127.0.0.1' })
  writeFileSync(p('ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  signRequest({ csr: p('rgw.csr'), ca: p('ca.crt'), caKey: p('ca.key'), serial: 2, days: 2, extfile: p('ext'), out: p('rgw.crt') })
  return { caPem: readFileSync(p('ca.crt'), 'utf8'), cert: p('rgw.crt'), key: p('rgw.key') }
}

/**
 * Start mon, osd and radosgw (about 10 s here; call stop() in teardown).
 * One more attempt, on new ports and a new fsid, if the first does not come
 * up (a port handed out by freePort() can be taken before the daemon binds
 * it). The first failure is printed whole, with the daemons' log tails.
 */
export async function startCeph(opts: { tls?: boolean } = {}): Promise<TestCeph> {
  try {
    return await startCephOnce(opts)
  } catch (e) {
    process.stderr.write(`# ceph did not start, trying once more with new ports: ${(e as Error).message}\n`)
    return startCephOnce(opts)
  }
}

async function startCephOnce(opts: { tls?: boolean }): Promise<TestCeph> {
  const t0 = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'ma-ceph-'))
  const children: ChildProcess[] = []
  const logs: Record<string, string> = {}
  const stop = async () => {
    for (const c of children.reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue
      const exited = new Promise((r) => c.once('exit', r))
      c.kill('SIGTERM')
      await Promise.race([exited, sleep(5000)])
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const fsid = randomUUID()
    const monPort = await freePort()
    const rgwPort = await freePort()
    const tlsPort = opts.tls ? await freePort() : 0
    for (const d of ['run', 'log', 'mon', 'osd/0']) mkdirSync(join(dir, d), { recursive: true })
    const conf = join(dir, 'ceph.conf')
    writeFileSync(
      conf,
      [
        '[global]',
        `fsid = ${fsid}`,
        `mon host = v1:127.0.0.1:${monPort}`,
        'mon initial members = a',
        'public addr = 127.0.0.1',
        'ms bind ipv6 = false',
        'ms bind msgr2 = false',
        // no cephx: a test cluster on loopback
        'auth cluster required = none',
        'auth service required = none',
        'auth client required = none',
        'osd pool default size = 1',
        'osd pool default min size = 1',
        'mon allow pool size one = true',
        'mon warn on pool no redundancy = false',
        'mon data avail warn = 1',
        'mon data avail crit = 0',
        // radosgw makes ~8 pools; the default 32 PGs each would pass mon_max_pg_per_osd
        'osd pool default pg num = 8',
        'osd pool default pgp num = 8',
        'osd pool default pg autoscale mode = off',
        'osd objectstore = memstore',
        'memstore device bytes = 1073741824',
        'osd crush chooseleaf type = 0',
        // The OSD's own crush update at start races its first monmap: now and
        // then it sends the command with a zero fsid, the mon refuses ('wrong
        // fsid'), the OSD's init gives up and radosgw waits forever (seen in CI
        // and here, ~1 start in 8). The OSD is placed in the CRUSH map below
        // instead, before it starts, so it sends no such command.
        'osd crush update on start = false',
        'osd class update on start = false',
        `run dir = ${dir}/run`,
        `admin socket = ${dir}/run/$name.asok`,
        `log file = ${dir}/log/$name.log`,
        `pid file = ${dir}/run/$name.pid`,
        `mon data = ${dir}/mon/$id`,
        `osd data = ${dir}/osd/$id`,
        '',
      ].join('\n'),
    )
    const ceph = (args: string[], what: string) => must('ceph', ['-c', conf, '--connect-timeout', '20', ...args], what)
    const daemon = (name: string, cmd: string, args: string[]) => {
      const c = spawn(cmd, ['-c', conf, '-f', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      logs[name] = ''
      const add = (d: Buffer) => (logs[name] = (logs[name] + d.toString()).slice(-4000))
      c.stdout!.on('data', add)
      c.stderr!.on('data', add)
      children.push(c)
      return c
    }

    must(
      'ceph-authtool',
      ['--create-keyring', join(dir, 'mon.keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'],
      'mon keyring',
    )
    must('monmaptool', ['--create', '--addv', 'a', `v1:127.0.0.1:${monPort}`, '--fsid', fsid, join(dir, 'monmap')], 'monmap')
    must('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', join(dir, 'mon.keyring')], 'mon mkfs')
    daemon('mon', 'ceph-mon', ['-i', 'a'])

    const osdUuid = randomUUID()
    const id = ceph(['osd', 'create', osdUuid], 'osd create').trim()
    if (id !== '0') throw new Error(`expected osd id 0, got ${id}`)
    ceph(['osd', 'crush', 'add', 'osd.0', '1.0', 'root=default', 'host=localhost'], 'osd crush add')
    must('ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid], 'osd mkfs')
    const osd = daemon('osd', 'ceph-osd', ['-i', '0'])

    let tlsMaterial: ReturnType<typeof makeTlsMaterial> | undefined
    let frontends = `beast endpoint=127.0.0.1:${rgwPort}`
    if (opts.tls) {
      tlsMaterial = makeTlsMaterial(dir)
      frontends += ` ssl_endpoint=127.0.0.1:${tlsPort} ssl_certificate=${tlsMaterial.cert} ssl_private_key=${tlsMaterial.key}`
    }
    const rgw = daemon('rgw', 'radosgw', ['-n', 'client.rgw.a', '--rgw-frontends', frontends])
    const endpoint = `http://127.0.0.1:${rgwPort}`
    const deadline = Date.now() + 90_000
    for (;;) {
      if (rgw.exitCode !== null) throw new Error(`radosgw exited with ${rgw.exitCode}`)
      if (osd.exitCode !== null) throw new Error(`ceph-osd exited with ${osd.exitCode}`)
      try {
        if ((await fetch(endpoint)).status === 200) break
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`radosgw did not answer on ${endpoint} within 90 s`)
      await sleep(250)
    }

    const accessKey = 'MAEXAMPLEACCESSKEY01'
    const secretKey = 'ma/Example+Secret/Key0123456789abcdefghij'
    must(
      'radosgw-admin',
      [
        '-c',
        conf,
        'user',
        'create',
        '--uid=mirror',
        '--display-name=mirror appliance test',
        `--access-key=${accessKey}`,
        `--secret-key=${secretKey}`,
      ],
      'rgw user',
    )

    return {
      endpoint,
      ...(opts.tls ? { tlsEndpoint: `https://127.0.0.1:${tlsPort}`, caPem: tlsMaterial!.caPem } : {}),
      accessKey,
      secretKey,
      dir,
      startSeconds: (Date.now() - t0) / 1000,
      async createBucket(name) {
        const url = `${endpoint}/${name}`
        const r = await fetch(url, { method: 'PUT', headers: sigv4({ method: 'PUT', url, accessKey, secretKey }) })
        if (r.status !== 200) throw new Error(`create bucket ${name}: HTTP ${r.status} ${await r.text()}`)
      },
      listObjects(bucket) {
        const out = must('radosgw-admin', ['-c', conf, 'bucket', 'list', `--bucket=${bucket}`], 'bucket list')
        return (JSON.parse(out) as { name: string }[]).map((o) => o.name)
      },
      stop,
    }
  } catch (e) {
    const tail = [...Object.entries(logs).map(([k, v]) => `--- ${k} (stderr)\n${v}`), ...logFileTails(join(dir, 'log'))].join('\n')
    await stop()
    throw new Error(`${(e as Error).message}\n${tail}`)
  }
}

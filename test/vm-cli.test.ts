// vm DIR: the QEMU command line (table), the flags (every usage error exits
// 2 with its message), the registry wait against a local HTTPS server (right
// CA and name: ready; another CA or name: never), and real QEMU runs of the
// busybox fixture disk: it powers off before any registry answers (exit 1
// with the console), Ctrl-C stops the VM, a second VM is refused, --stop
// stops a foreground one. No QEMU is ever left running.
import t from 'tap'
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { createServer, type Server } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { firstBootFailure, firstBootRunning, qemuVmArgs, isVmProcess, vmPaths, type VmArgsOptions } from '../builder/media/vm.js'
import { parseBearerChallenge, probeContent, probeRegistry, waitForRegistry, type RegistryTarget } from '../builder/media/vm-wait.js'
import { runCli } from './helpers/cli.js'
import { spawnCli, waitFor } from './helpers/proc.js'
import { freePort } from './helpers/net.js'
import { userCa } from './helpers/user-ca.js'

const HOST = 'registry.lab.example'

// ---- the argv builder --------------------------------------------------------

const base: VmArgsOptions = {
  accel: 'tcg',
  memoryMb: 4096,
  cpus: 2,
  firmware: 'bios',
  drives: [{ file: '/d/vm/appliance.qcow2', kind: 'disk' }],
  serialLog: '/d/vm/console.log',
  registry: { hostPort: 18443, guestPort: 8443 },
  sshPort: 12222,
  qmpSocket: '/d/vm/qmp.sock',
  pidFile: '/d/vm/qemu.pid',
}

/** The value after each occurrence of flag. */
const values = (argv: string[], flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []))

t.test('qemuVmArgs', async (t) => {
  const cases: { name: string; o: Partial<VmArgsOptions>; has: string[][]; not?: string[]; check?: (a: string[]) => void }[] = [
    {
      name: 'defaults: tcg, SeaBIOS, user networking with both forwards, console in a file, QMP, pid file',
      o: {},
      has: [
        ['-machine', 'pc,accel=tcg'],
        ['-m', '4096'],
        ['-smp', '2'],
        ['-display', 'none'],
        ['-nic', 'user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:18443-:8443,hostfwd=tcp:127.0.0.1:12222-:22'],
        ['-chardev', 'file,id=serial0,path=/d/vm/console.log'],
        ['-serial', 'chardev:serial0'],
        ['-chardev', 'socket,id=qmp,path=/d/vm/qmp.sock,server=on,wait=off'],
        ['-mon', 'chardev=qmp,mode=control'],
        ['-pidfile', '/d/vm/qemu.pid'],
        ['-drive', 'if=none,id=disk0,format=qcow2,discard=unmap,file=/d/vm/appliance.qcow2'],
        ['-device', 'virtio-blk-pci,drive=disk0,bootindex=0'],
      ],
      not: ['-cpu', '-no-reboot', '-daemonize', '-nographic', '-kernel', 'if=pflash'],
    },
    {
      name: 'kvm: -cpu host',
      o: { accel: 'kvm' },
      has: [
        ['-machine', 'pc,accel=kvm'],
        ['-cpu', 'host'],
      ],
    },
    {
      name: 'memory and cpus',
      o: { memoryMb: 1024, cpus: 4 },
      has: [
        ['-m', '1024'],
        ['-smp', '4'],
      ],
    },
    {
      name: 'uefi: OVMF code read-only, a writable copy of the variables',
      o: { firmware: 'uefi', ovmfVars: '/d/vm/OVMF_VARS.fd' },
      has: [
        ['-drive', 'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd'],
        ['-drive', 'if=pflash,format=raw,unit=1,file=/d/vm/OVMF_VARS.fd'],
      ],
    },
    {
      name: 'install: the installer CD boots first, the OEMDRV CD after the disk, QEMU exits on reboot',
      o: {
        drives: [
          { file: '/iso/rhel.iso', kind: 'cdrom' },
          { file: '/d/vm/install.qcow2', kind: 'disk' },
          { file: '/d/oemdrv.iso', kind: 'cdrom' },
        ],
        noReboot: true,
      },
      has: [
        ['-drive', 'if=none,id=cd0,media=cdrom,format=raw,readonly=on,file=/iso/rhel.iso'],
        ['-device', 'ide-cd,drive=cd0,bus=ide.0,unit=0,bootindex=0'],
        ['-device', 'virtio-blk-pci,drive=disk0,bootindex=1'],
        ['-device', 'ide-cd,drive=cd1,bus=ide.0,unit=1,bootindex=2'],
        ['-no-reboot'],
      ],
    },
    {
      name: 'a data disk is the second virtio disk',
      o: {
        drives: [
          { file: '/d/vm/appliance.qcow2', kind: 'disk' },
          { file: '/d/vm/appliance-data.qcow2', kind: 'disk' },
        ],
      },
      has: [
        ['-device', 'virtio-blk-pci,drive=disk1,bootindex=1'],
        ['-drive', 'if=none,id=disk1,format=qcow2,discard=unmap,file=/d/vm/appliance-data.qcow2'],
      ],
    },
    {
      name: 'direct kernel boot: its option ROM has boot index 0',
      o: { kernel: { file: '/boot/vmlinuz', initrd: '/boot/initrd.img', append: 'console=ttyS0 root=LABEL=x' } },
      has: [
        ['-kernel', '/boot/vmlinuz'],
        ['-initrd', '/boot/initrd.img'],
        ['-append', 'console=ttyS0 root=LABEL=x'],
        ['-device', 'virtio-blk-pci,drive=disk0,bootindex=1'],
      ],
    },
    { name: 'daemonize', o: { daemonize: true }, has: [['-daemonize']] },
    {
      name: 'a comma in a path is doubled (QEMU option syntax)',
      o: {
        drives: [{ file: '/a,b/vm/appliance.qcow2', kind: 'disk' }],
        serialLog: '/a,b/vm/console.log',
        qmpSocket: '/a,b/vm/qmp.sock',
        pidFile: '/a,b/vm/qemu.pid',
      },
      has: [
        ['-drive', 'if=none,id=disk0,format=qcow2,discard=unmap,file=/a,,b/vm/appliance.qcow2'],
        ['-chardev', 'file,id=serial0,path=/a,,b/vm/console.log'],
        ['-chardev', 'socket,id=qmp,path=/a,,b/vm/qmp.sock,server=on,wait=off'],
        ['-pidfile', '/a,b/vm/qemu.pid'],
      ],
    },
  ]
  for (const c of cases) {
    const argv = qemuVmArgs({ ...base, ...c.o })
    for (const seq of c.has) {
      const at = argv.findIndex((_, i) => seq.every((s, j) => argv[i + j] === s))
      t.ok(at >= 0, `${c.name}: has ${seq.join(' ')}`, { argv })
    }
    for (const n of c.not ?? [])
      t.notOk(
        argv.some((a) => a === n || a.startsWith(n)),
        `${c.name}: no ${n}`,
      )
  }
  t.same(qemuVmArgs(base), qemuVmArgs({ ...base }), 'pure: same options, same argv')
  t.equal(values(qemuVmArgs(base), '-nic').length, 1, 'one NIC')
  t.throws(() => qemuVmArgs({ ...base, firmware: 'uefi' }), /ovmfVars/)
})

// ---- a directory that looks like a build output -----------------------------

const root = mkdtempSync(join(tmpdir(), 'ma-vm-'))
t.teardown(() => {
  // A safety net: a failed assertion must not leave a QEMU running.
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(root)) process.kill(Number(name), 'SIGKILL')
    } catch {
      // gone
    }
  }
  rmSync(root, { recursive: true, force: true })
})

function fakeBuild(name: string, o: { disk?: string; outputs?: string[]; flavor?: string } = {}): string {
  const dir = join(root, name)
  mkdirSync(join(dir, 'secrets'), { recursive: true })
  const outputs = o.outputs ?? []
  if (o.disk) {
    symlinkSync(o.disk, join(dir, 'appliance.qcow2'))
    outputs.push('appliance.qcow2')
  }
  for (const f of outputs) if (!existsSync(join(dir, f))) writeFileSync(join(dir, f), 'x')
  const manifest = {
    schema: 'mirror-appliance/manifest/v1',
    host: { hostname: HOST, rhel: '8.10', flavor: o.flavor ?? 'distribution', port: 5000 },
    outputs: outputs.map((p) => ({ path: p, size: 1, sha256: '0'.repeat(64) })),
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest))
  writeFileSync(join(dir, 'secrets/ca.crt'), 'not used by these tests\n')
  writeFileSync(join(dir, 'secrets/credentials.txt'), 'registry user: init\nuser admin password: secret\n')
  return dir
}

const env = { MIRROR_APPLIANCE_ACCEL: 'tcg' }

t.test('vm --help', async (t) => {
  const r = await runCli(['vm', '--help'])
  t.equal(r.code, 0)
  t.match(r.stdout, /Usage: mirror-appliance vm DIR \[--install\] \[--port N\]/)
  for (const flag of [
    '--install',
    '--iso FILE',
    '--wait',
    '--timeout S',
    '--stop',
    '--print',
    '--fresh',
    '--ssh-port',
    '--memory',
    '--uefi',
    '--log FILE',
  ])
    t.match(r.stdout, flag)
  const main = await runCli(['--help'])
  t.match(main.stdout, /^ {2}vm +boot a build in QEMU/m, 'listed in the main help')
})

t.test('usage errors exit 2 with their message', async (t) => {
  const good = fakeBuild('good', { outputs: ['appliance.qcow2'] })
  const noDisk = fakeBuild('nodisk', { outputs: ['oemdrv.iso'] })
  const empty = join(root, 'empty')
  mkdirSync(empty)
  const iso = join(root, 'stock.iso')
  writeFileSync(iso, 'x')
  const noOemdrv = fakeBuild('nooemdrv', { outputs: ['appliance.qcow2'] })
  const cases: [string[], RegExp][] = [
    [[], /missing DIR/],
    [[good, 'other'], /one DIR only/],
    [[join(root, 'nosuch')], /nosuch: no such directory/],
    [[empty], /is not a build output: no manifest\.json/],
    [[noDisk], /has no appliance\.qcow2 to boot[\s\S]*build with --qcow2 --base-image IMG[\s\S]*or use --install/],
    [[noDisk, '--install'], /has no appliance\.iso to install from[\s\S]*build it with --iso BASE\.iso/],
    [[noOemdrv, '--install', '--iso', iso], /has no oemdrv\.iso[\s\S]*build it with --oemdrv/],
    [[noDisk, '--install', '--iso', join(root, 'nosuch.iso')], /--iso .*nosuch\.iso: no such file/],
    [[good, '--iso', iso], /--iso is only used with --install/],
    [[good, '--port', '0'], /--port: must be a whole number from 1 to 65535, not "0"/],
    [[good, '--port', '70000'], /--port: must be a whole number from 1 to 65535/],
    [[good, '--port', 'abc'], /--port: must be a whole number/],
    [[good, '--port', '8.5'], /--port: must be a whole number/],
    [[good, '--ssh-port', '-1'], /ssh-port/],
    [[good, '--port', '20000', '--ssh-port', '20000'], /--port and --ssh-port must differ/],
    [[good, '--timeout', '60'], /--timeout is only used with --wait or --stop/],
    [[good, '--wait', '--timeout', '0'], /--timeout: must be a positive number of seconds/],
    [[good, '--wait', '--timeout', 'soon'], /--timeout: must be a positive number of seconds/],
    [[good, '--memory', '12'], /--memory: must be a whole number of MiB from 256/],
    [[good, '--cpus', '0'], /--cpus: must be a whole number from 1 to 64/],
    [[good, '--json'], /--json needs --wait, --print or --stop/],
    [[good, '--stop', '--install'], /--stop cannot be combined with --install/],
    [[good, '--print', '--wait'], /--print runs nothing/],
    [[good, '--initrd', '/boot/x'], /--initrd and --append are only used with --kernel/],
    [[good, '--disk-size', '20'], /--disk-size is only used with --install/],
    [[good, '--kernel', join(root, 'nokernel')], /nokernel: no such file/],
    [[good, '--bogus'], /Unknown option '--bogus'/],
  ]
  for (const [args, re] of cases) {
    const r = await runCli(['vm', ...args], { env })
    t.equal(r.code, 2, `vm ${args.join(' ')}: exit 2`)
    t.match(r.stderr, re, `vm ${args.join(' ')}: ${re}`)
  }
  const bad = await runCli(['vm', good, '--print'], { env: { ...env, MIRROR_APPLIANCE_ACCEL: 'fast' } })
  t.equal(bad.code, 2)
  t.match(bad.stderr, /MIRROR_APPLIANCE_ACCEL must be kvm or tcg/)
  t.notOk(existsSync(join(good, 'vm')), 'nothing was written')
})

t.test('QEMU missing: exit 1 naming the Debian package', async (t) => {
  const dir = fakeBuild('noqemu', { outputs: ['appliance.qcow2'] })
  const r = await runCli(['vm', dir, '--print'], { env: { ...env, PATH: join(root, 'empty-path') } })
  t.equal(r.code, 1)
  t.match(r.stderr, /qemu-system-x86_64 is needed to run the appliance in a VM/)
  t.match(r.stderr, /apt-get install qemu-system-x86/)
})

t.test('--print: the command line, nothing written', async (t) => {
  const dir = fakeBuild('print', { outputs: ['appliance.qcow2'] })
  const r = await runCli(['vm', dir, '--print', '--port', '18443', '--ssh-port', '12222', '--memory', '2048', '--cpus', '1'], { env })
  t.equal(r.code, 0, 'exit code', { stderr: r.stderr })
  t.match(r.stdout, /^qemu-system-x86_64 /)
  t.match(r.stdout, 'hostfwd=tcp:127.0.0.1:18443-:5000,hostfwd=tcp:127.0.0.1:12222-:22')
  t.match(r.stdout, `file=${join(dir, 'vm/appliance.qcow2')}`)
  t.match(r.stdout, /-machine \$?'?pc,accel=tcg/)
  t.match(r.stdout, /-m 2048 -smp 1/)
  t.notOk(existsSync(join(dir, 'vm')), 'nothing was written')
  const j = await runCli(['vm', dir, '--print', '--json', '--uefi'], { env })
  t.equal(j.code, 0, 'exit code', { stderr: j.stderr })
  const doc = JSON.parse(j.stdout) as { boot: string[]; accel: string; port: number; sshPort: number }
  t.equal(doc.boot[0], 'qemu-system-x86_64')
  t.equal(doc.accel, 'tcg')
  t.not(doc.port, doc.sshPort, 'two free ports')
  t.ok(doc.boot.includes(`if=pflash,format=raw,unit=1,file=${join(dir, 'vm/OVMF_VARS.fd')}`))
  const inst = fakeBuild('print-install', { outputs: ['appliance.iso'] })
  const i = await runCli(['vm', inst, '--install', '--print', '--json'], { env })
  t.equal(i.code, 0, 'exit code', { stderr: i.stderr })
  const di = JSON.parse(i.stdout) as { install: string[]; boot: string[] }
  t.ok(di.install.includes(`if=none,id=cd0,media=cdrom,format=raw,readonly=on,file=${join(inst, 'appliance.iso')}`))
  t.ok(di.install.includes('-no-reboot'))
  t.ok(di.boot.includes(`if=none,id=disk0,format=qcow2,discard=unmap,file=${join(inst, 'vm/install.qcow2')}`))
  t.notOk(di.boot.includes('-no-reboot'))
})

// ---- the registry wait --------------------------------------------------------

t.test('waitForRegistry: only the right CA and the right name', async (t) => {
  const d = mkdtempSync(join(root, 'pki-'))
  mkdirSync(join(d, 'a'))
  mkdirSync(join(d, 'b'))
  const a = userCa(join(d, 'a'), HOST)
  const b = userCa(join(d, 'b'), HOST)
  const port = await freePort()
  const hits: string[] = []
  const server: Server = createServer({ key: readFileSync(a.key), cert: readFileSync(a.cert) }, (req, res) => {
    hits.push(`${req.method} ${req.url} ${req.headers.host}`)
    if (req.url === '/v2/') {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' }).end('{}')
    } else if (req.url === '/health/instance') res.writeHead(200).end('{"data":{"services":{}}}')
    else res.writeHead(404).end()
  })
  // The registry comes up a while after the wait starts: refused connections first.
  const listening = new Promise<void>((resolve) => setTimeout(() => server.listen(port, '127.0.0.1', resolve), 1500))
  t.teardown(() => server.close())
  const target: RegistryTarget = { address: '127.0.0.1', port, hostname: HOST, ca: readFileSync(a.ca, 'utf8'), flavor: 'distribution' }

  const early = await probeRegistry(target, 1000)
  t.notOk(early.ok)
  t.match(early.error, /ECONNREFUSED/)

  const ok = await waitForRegistry({ target, timeoutMs: 20_000, intervalMs: 300 })
  await listening
  t.ok(ok.ok, 'ready once it answers 401 on /v2/')
  t.ok(ok.ok && ok.status === 401)
  t.ok(ok.seconds >= 1, 'it waited for the server')
  t.match(hits[hits.length - 1], `GET /v2/ ${HOST}:${port}`, 'asked with the registry host name')

  const quay = await waitForRegistry({ target: { ...target, flavor: 'quay' }, timeoutMs: 5000, intervalMs: 300 })
  t.ok(quay.ok && quay.status === 200, 'quay: /health/instance 200')

  const otherCa = await waitForRegistry({ target: { ...target, ca: readFileSync(b.ca, 'utf8') }, timeoutMs: 1500, intervalMs: 300 })
  t.notOk(otherCa.ok, 'another CA: never ready')
  t.ok(!otherCa.ok && otherCa.reason === 'timeout')
  t.match(!otherCa.ok && otherCa.lastError, /self[- ]signed|unable to (verify|get)|certificate/i)

  const otherName = await waitForRegistry({ target: { ...target, hostname: 'other.lab.example' }, timeoutMs: 1500, intervalMs: 300 })
  t.notOk(otherName.ok, 'a name the certificate does not cover: never ready')
  t.match(!otherName.ok && otherName.lastError, /other\.lab\.example|altnames|Hostname/i)

  const quayNotReady = await probeRegistry({ ...target, flavor: 'quay', port: await freePort() })
  t.notOk(quayNotReady.ok)

  const gone = await waitForRegistry({
    target: { ...target, port: await freePort() },
    timeoutMs: 10_000,
    intervalMs: 300,
    alive: () => false,
  })
  t.ok(!gone.ok && gone.reason === 'exited', 'a VM that is gone ends the wait')

  const ac = new AbortController()
  setTimeout(() => ac.abort(new Error('stop')), 300)
  await t.rejects(
    waitForRegistry({ target: { ...target, port: await freePort() }, timeoutMs: 10_000, intervalMs: 200, signal: ac.signal }),
    /stop/,
  )
})

t.test(
  'waitForRegistry with content: ready only once every image is served by digest to the init user (Basic, and Bearer tokens as Quay hands out)',
  async (t) => {
    const d = mkdtempSync(join(root, 'pki-content-'))
    const a = userCa(d, HOST)
    const port = await freePort()
    const auth = Buffer.from('init:pw-123').toString('base64')
    const repo = 'ocp/release'
    const digest = `sha256:${'a'.repeat(64)}`
    let pushed = false
    let bearer = false
    const server: Server = createServer({ key: readFileSync(a.key), cert: readFileSync(a.cert) }, (req, res) => {
      const h = req.headers.authorization ?? ''
      if (req.url === '/v2/') return void res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' }).end('{}')
      if (req.url?.startsWith('/v2/auth?')) {
        const q = new URL(req.url, 'https://x').searchParams
        if (h !== `Basic ${auth}`) return void res.writeHead(401).end()
        t.equal(q.get('scope'), `repository:${repo}:pull`, 'the token asked for pull on the repository')
        t.equal(q.get('service'), `${HOST}:${port}`, 'with the service the challenge named')
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"tok-1"}')
      }
      if (req.url === `/v2/${repo}/manifests/${digest}`) {
        const authed = bearer ? h === 'Bearer tok-1' : h === `Basic ${auth}`
        if (!authed) {
          const challenge = bearer ? `Bearer realm="https://${HOST}:${port}/v2/auth",service="${HOST}:${port}"` : 'Basic realm="registry"'
          return void res.writeHead(401, { 'www-authenticate': challenge }).end()
        }
        return void res.writeHead(pushed ? 200 : 404).end()
      }
      res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    t.teardown(() => server.close())
    const target: RegistryTarget = { address: '127.0.0.1', port, hostname: HOST, ca: readFileSync(a.ca, 'utf8'), flavor: 'distribution' }
    const content = { auth, images: [{ repo, digest }] }

    const notYet = await waitForRegistry({ target, content, timeoutMs: 1200, intervalMs: 300 })
    t.ok(!notYet.ok && notYet.reason === 'timeout', 'answering on /v2/ is not enough while the content is missing')
    t.match(!notYet.ok && notYet.lastError, /not yet with its content: ocp\/release@sha256:aaaaaaaaaaaa… answered HTTP 404/)

    setTimeout(() => (pushed = true), 700)
    const ready = await waitForRegistry({ target, content, timeoutMs: 10_000, intervalMs: 300 })
    t.ok(ready.ok, 'ready once the image is served (Basic)')

    const wrong = await probeContent(target, Buffer.from('init:wrong').toString('base64'), { repo, digest })
    t.notOk(wrong.ok, 'a wrong password is not ready')
    t.equal(wrong.status, 401)

    bearer = true
    const viaToken = await probeContent(target, auth, { repo, digest })
    t.ok(viaToken.ok, 'Bearer challenge: a token from the realm, then the image')
    const foreignRealm = parseBearerChallenge('Bearer realm="https://elsewhere.example/token",service="x"')
    t.same(foreignRealm, { realm: 'https://elsewhere.example/token', params: { service: 'x' } })

    const failed = await waitForRegistry({
      target,
      content,
      timeoutMs: 10_000,
      intervalMs: 300,
      failed: () => "first boot failed at step 'push-content'",
    })
    t.ok(!failed.ok && failed.reason === 'failed', 'a first-boot failure ends the wait at once')
    t.match(!failed.ok && failed.lastError, /push-content/)
  },
)

t.test("firstBootFailure reads the console for first boot's failure line", async (t) => {
  const d = mkdtempSync(join(root, 'console-'))
  const log = join(d, 'console.log')
  t.equal(firstBootFailure(log), undefined, 'no console yet')
  writeFileSync(log, '[  OK  ] Started foo.\nmirror-appliance first boot: step load-images\n')
  t.equal(firstBootFailure(log), undefined)
  writeFileSync(
    log,
    "mirror-appliance first boot: step load-images\nmirror-appliance first boot: FAILED at step 'load-images' (exit 1).\n",
    { flag: 'a' },
  )
  t.equal(firstBootFailure(log), "first boot failed at step 'load-images' (the console says so)")
})

t.test('firstBootRunning: first boot printed a step in this boot and has not said it is done', async (t) => {
  const d = mkdtempSync(join(root, 'console-run-'))
  const log = join(d, 'console.log')
  writeFileSync(log, '[  OK  ] Started registry.service.\n')
  t.equal(firstBootRunning(log), undefined, 'a reboot: first boot does not run, nothing to wait for')
  writeFileSync(log, 'mirror-appliance first boot: step push-content\nmirror-appliance first boot: step motd\n', { flag: 'a' })
  t.equal(firstBootRunning(log), 'first boot is still running (step motd)')
  writeFileSync(log, 'mirror-appliance first boot: done: the registry https://r:8443 is ready; credentials in /root/mirror-appliance\n', {
    flag: 'a',
  })
  t.equal(firstBootRunning(log), undefined, 'done')
})

t.test('waitForRegistry: pending holds a ready registry back until it clears', async (t) => {
  const d = mkdtempSync(join(root, 'pki-pending-'))
  const a = userCa(d, HOST)
  const port = await freePort()
  const server: Server = createServer(
    { key: readFileSync(a.key), cert: readFileSync(a.cert) },
    (_req, res) => void res.writeHead(401).end(),
  )
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const target: RegistryTarget = { address: '127.0.0.1', port, hostname: HOST, ca: readFileSync(a.ca, 'utf8'), flavor: 'distribution' }
  const held = await waitForRegistry({ target, timeoutMs: 1000, intervalMs: 200, pending: () => 'first boot is still running (step motd)' })
  t.ok(!held.ok && held.reason === 'timeout' && held.lastError === 'first boot is still running (step motd)', 'not ready while pending')
  let n = 0
  const later = await waitForRegistry({ target, timeoutMs: 10_000, intervalMs: 200, pending: () => (++n < 3 ? 'running' : undefined) })
  t.ok(later.ok, 'ready once pending clears')
})

// ---- real QEMU -------------------------------------------------------------------

/** Live (non-zombie) QEMU processes of this build dir. */
function qemusOf(dir: string): number[] {
  const paths = vmPaths(dir)
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => isVmProcess(pid, paths))
}

t.test('real QEMU with the fixture disk', { timeout: 600_000 }, async (t) => {
  process.env.LIBGUESTFS_BACKEND ??= 'direct'
  process.env.LIBGUESTFS_BACKEND_SETTINGS ??= 'force_tcg'
  const { fixtureQcow2, BOOT_MARKER, FIXTURE_ROOT_LABEL } = await import('./helpers/fixture-qcow2.js')
  const fixture = await fixtureQcow2()
  const kernel = readdirSync('/boot')
    .filter((n) => n.startsWith('vmlinuz-'))
    .sort()
    .pop()
  if (!kernel) {
    t.comment('no kernel in /boot for direct boot: skipped')
    return
  }
  const kernelArgs = ['--kernel', `/boot/${kernel}`, '--memory', '512']
  const dir = fakeBuild('fixture', { disk: fixture })
  const overlay = join(dir, 'vm/appliance.qcow2')
  const pidFile = join(dir, 'vm/qemu.pid')

  await t.test('the guest powers off before any registry answers: exit 1 with the console', async (t) => {
    // No MIRROR_APPLIANCE_ACCEL: the KVM probe decides (here KVM is broken, so: software emulation, said once).
    const r = await runCli([
      'vm',
      dir,
      '--wait',
      '--timeout',
      '120',
      ...kernelArgs,
      '--initrd',
      `/boot/${kernel.replace('vmlinuz', 'initrd.img')}`,
      '--append',
      `root=LABEL=${FIXTURE_ROOT_LABEL} rootfstype=xfs ro console=ttyS0 panic=-1 quiet loglevel=3`,
    ])
    t.equal(r.code, 1, 'exit code', { stderr: r.stderr })
    t.match(r.stderr, /QEMU stopped before the registry answered/)
    t.match(r.stderr, BOOT_MARKER, 'the console tail is in the message')
    t.ok((r.stderr.match(/KVM not usable/g) ?? []).length <= 1, 'said at most once')
    t.match(readFileSync(join(dir, 'vm/console.log'), 'utf8'), BOOT_MARKER, 'the console log has the boot')
    t.same(qemusOf(dir), [], 'no QEMU left')
    t.notOk(existsSync(pidFile), 'no pid file left')
    t.ok(existsSync(overlay), 'the overlay stays for the next run')
    t.ok(lstatSync(join(dir, 'appliance.qcow2')).isSymbolicLink(), 'the built disk is untouched')
  })

  // A guest that never powers off: the kernel waits for a root device that does not exist.
  const hang = [...kernelArgs, '--append', 'root=LABEL=nosuch rootwait console=ttyS0']

  await t.test('Ctrl-C while waiting stops QEMU', async (t) => {
    const ino = lstatSync(overlay).ino
    const p = spawnCli(['vm', dir, '--wait', '--timeout', '300', ...hang], { env })
    let err = ''
    p.child.stderr!.on('data', (d) => (err += d))
    // Started and detached: the command is waiting for the registry now.
    await waitFor(() => /QEMU pid \d+/.test(err), 'QEMU to start', 60_000, 50)
    const pid = Number(readFileSync(pidFile, 'utf8'))
    t.ok(isVmProcess(pid, vmPaths(dir)), 'QEMU runs detached')
    p.child.kill('SIGINT')
    const r = await p.done
    t.equal(r.code, 130, 'exit code', { stderr: r.stderr })
    t.match(r.stderr, /interrupted/)
    t.notOk(isVmProcess(pid, vmPaths(dir)), 'QEMU is gone')
    t.same(qemusOf(dir), [], 'no QEMU left')
    t.notOk(existsSync(pidFile), 'no pid file left')
    t.equal(lstatSync(overlay).ino, ino, 'the same overlay: the VM state persists across runs')
  })

  await t.test('the registry never answers: exit 1 after --timeout, with the console, nothing left', async (t) => {
    const r = await runCli(['vm', dir, '--wait', '--timeout', '4', ...hang], { env })
    t.equal(r.code, 1, 'exit code', { stderr: r.stderr })
    t.match(r.stderr, /the registry did not answer within 4 s \(tcg\)/)
    t.match(r.stderr, /last console lines/)
    t.match(r.stderr, /--timeout S/, 'the hint says how to give it more time')
    t.same(qemusOf(dir), [], 'no QEMU left')
    t.notOk(existsSync(pidFile), 'no pid file left')
  })

  await t.test('foreground: a second VM is refused; --stop stops it', async (t) => {
    const p = spawnCli(['vm', dir, ...hang], { env })
    await waitFor(() => existsSync(pidFile), 'the QEMU pid file', 60_000, 50)
    await waitFor(
      () => /Waiting for root device/.test(readFileSync(join(dir, 'vm/console.log'), 'utf8')),
      'the guest kernel to wait for its root',
      180_000,
      200,
    )
    const second = await runCli(['vm', dir, '--wait'], { env })
    t.equal(second.code, 2)
    t.match(second.stderr, /a VM of .* is already running \(QEMU pid \d+/)
    t.match(second.stderr, /vm .* --stop/)
    const stop = await runCli(['vm', dir, '--stop', '--timeout', '2'], { env })
    t.equal(stop.code, 0, 'exit code', { stderr: stop.stderr })
    t.match(stop.stderr, /stopped the VM/)
    const r = await p.done
    t.equal(r.code, 0, 'exit code', { stderr: r.stderr })
    t.match(r.stderr, /Waiting for root device/, 'the console is shown')
    t.same(qemusOf(dir), [], 'no QEMU left')
    t.notOk(existsSync(pidFile))
    const again = await runCli(['vm', dir, '--stop', '--json'], { env })
    t.equal(again.code, 0)
    t.same(JSON.parse(again.stdout), { stopped: false }, 'stopping a stopped VM is fine')
  })

  await t.test('a vm command that is starting the VM holds it', async (t) => {
    writeFileSync(join(dir, 'vm/starting.lock'), `${process.pid}\n`)
    const r = await runCli(['vm', dir, ...hang], { env })
    t.equal(r.code, 2, 'exit code', { stderr: r.stderr })
    t.match(r.stderr, new RegExp(`another "mirror-appliance vm" \\(pid ${process.pid}\\) is starting or running the VM`))
    writeFileSync(join(dir, 'vm/starting.lock'), '999999999\n')
    const stale = spawnCli(['vm', dir, ...hang], { env })
    await waitFor(() => existsSync(pidFile), 'the QEMU pid file', 60_000, 50)
    stale.child.kill('SIGINT')
    t.equal((await stale.done).code, 130, 'a stale lock is taken over')
    t.notOk(existsSync(join(dir, 'vm/starting.lock')), 'the lock is released')
    t.same(qemusOf(dir), [], 'no QEMU left')
  })

  await t.test('--fresh makes a new overlay', async (t) => {
    // Marks on the old state: an old time on the overlay, an install marker.
    utimesSync(overlay, new Date('2001-01-01'), new Date('2001-01-01'))
    writeFileSync(join(dir, 'vm/install.done'), 'old\n')
    const p = spawnCli(['vm', dir, '--fresh', ...hang], { env })
    await waitFor(() => existsSync(pidFile), 'the QEMU pid file', 60_000, 50)
    t.ok(lstatSync(overlay).mtimeMs > Date.parse('2020-01-01'), 'a new overlay')
    t.notOk(existsSync(join(dir, 'vm/install.done')), 'the old VM state is gone')
    p.child.kill('SIGTERM')
    const r = await p.done
    t.equal(r.code, 143, 'exit code', { stderr: r.stderr })
    t.same(qemusOf(dir), [], 'no QEMU left')
  })
})

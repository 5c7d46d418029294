// Network boot of the trees `build --pxe` writes, under QEMU: the machine's
// NIC firmware is iPXE (QEMU's option ROM), slirp's DHCP hands it the URL of
// the tree's pxe/boot.ipxe (as a site's DHCP server would), and the tree is
// served by `mirror-appliance serve` exactly as the build's summary says.
// iPXE fetches the kernel and initrd over HTTP; the fixture's initrd then does
// what Anaconda does with our command line: DHCP, <inst.repo>/.treeinfo and
// the kickstart from inst.ks=, and reports on the serial port which
// kickstart it got.
//
// Single host: BIOS and UEFI. Fleet (test/fixtures/fleet-3): host A's MAC
// gets host A's kickstart (BIOS, with a bootable local disk attached: the
// network comes first), host B's MAC host B's (UEFI); a MAC not in the fleet
// leaves iPXE and the firmware boots the local disk, whose boot sector writes
// a marker to COM1 and ends QEMU through isa-debug-exit. Boots run two at a
// time.
import t, { type Test } from 'tap'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fixtureIso } from '../helpers/fixture-iso.js'
import { freePort } from '../helpers/net.js'
import { buildAndServe as buildAndServeWith, IPXE_ROM, line, netboot as netbootIn, type Boot, type NetBoot } from '../helpers/netboot.js'
import { limiter } from '../helpers/proc.js'

const FLEET = fileURLToPath(new URL('../fixtures/fleet-3/appliance.yaml', import.meta.url))
const MARKER = 'LOCAL-DISK-BOOTED'
/** What the boot sector writes to isa-debug-exit; QEMU then exits with (value << 1) | 1. */
const DISK_EXIT = 0x21
const env = { SOURCE_DATE_EPOCH: '1700000000' }

const dir = mkdtempSync(join(tmpdir(), 'pxe-boot-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/**
 * A raw disk whose MBR boot sector (16-bit real mode, loaded at 0x7c00)
 * writes MARKER to COM1 (port 0x3f8), then DISK_EXIT to port 0xf4.
 */
function localDisk(file: string): void {
  const code = [
    0xfa, //                  cli
    0x31,
    0xc0, //            xor ax, ax
    0x8e,
    0xd8, //            mov ds, ax
    0xbe,
    0x1a,
    0x7c, //      mov si, 0x7c1a (the text, at offset 26)
    0xba,
    0xf8,
    0x03, //      mov dx, 0x3f8
    0xac, //                  next: lodsb
    0x84,
    0xc0, //            test al, al
    0x74,
    0x03, //            jz done
    0xee, //                  out dx, al
    0xeb,
    0xf8, //            jmp next
    0xb0,
    DISK_EXIT, //       done: mov al, DISK_EXIT
    0xe6,
    0xf4, //            out 0xf4, al
    0xf4, //                  hlt
    0xeb,
    0xfd, //            jmp hlt
  ]
  const sector = Buffer.alloc(512)
  Buffer.from(code).copy(sector, 0)
  sector.write(`\r\n${MARKER}\r\n\0`, code.length, 'latin1')
  sector[510] = 0x55
  sector[511] = 0xaa
  const disk = Buffer.alloc(1024 * 1024)
  sector.copy(disk, 0)
  writeFileSync(file, disk)
}

const pool = limiter(2)
const qemus = new AbortController()
t.teardown(() => qemus.abort())

/** Text files of the tree (kickstarts and boot entries; not repo/ or the payload), relative paths. */
function treeTexts(tree: string): string[] {
  return readdirSync(tree, { recursive: true, encoding: 'utf8' }).filter(
    (f) =>
      /(^|\/)(ks\.cfg|[^/]*\.ipxe|grub\.cfg[^/]*|pxelinux\.cfg\/[^/]+)$/.test(f) && !f.startsWith('repo/') && !f.startsWith('appliance/'),
  )
}

/**
 * Every URL under the tree's base URL that its kickstarts and boot entries
 * name, fetched from the running server (127.0.0.1 instead of the guest's
 * 10.0.2.2). A directory URL counts when what its user reads there is served:
 * repo -> .treeinfo (Anaconda), appliance -> SHA256SUMS and every file it
 * lists (the kickstart's %post loop).
 */
async function checkUrls(t: Test, tree: string, url: string): Promise<void> {
  const local = url.replace('10.0.2.2', '127.0.0.1')
  const esc = url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const named = new Set<string>()
  for (const f of treeTexts(tree)) {
    for (const m of readFileSync(join(tree, f), 'utf8').matchAll(new RegExp(`${esc}(/[^\\s'"();]*)?`, 'g')))
      named.add((m[1] ?? '/').replace(/\/+$/, '') || '/')
  }
  const paths = new Set<string>()
  for (const p of named) {
    if (p === '/repo') paths.add('/repo/.treeinfo')
    else if (p === '/appliance') {
      paths.add('/appliance/SHA256SUMS')
      for (const l of readFileSync(join(tree, 'appliance/SHA256SUMS'), 'utf8').split('\n').filter(Boolean))
        paths.add(`/appliance/${l.replace(/^\S+\s+\*?/, '')}`)
    } else if (!p.includes('${')) paths.add(p) // iPXE's ${net0/mac:hexhyp} is filled in by iPXE: the boot tests cover it
  }
  t.ok(named.has('/repo') && named.has('/appliance'), 'the kickstarts name the repo and the payload')
  for (const p of [...paths].sort()) {
    const r = await fetch(local + p)
    await r.arrayBuffer()
    t.equal(r.status, 200, `${url}${p}`)
  }
}

const netboot = (b: NetBoot): Promise<Boot> => netbootIn(b, { dir, signal: qemus.signal })
const buildAndServe = (t: Test, args: string[]) => buildAndServeWith(t, args, env)

t.test('PXE trees network-boot under QEMU (iPXE over HTTP)', async (t) => {
  if (!existsSync(IPXE_ROM)) {
    t.fail(`${IPXE_ROM} is missing: apt-get install ipxe-qemu`)
    return
  }
  const iso = await fixtureIso()
  const disk = join(dir, 'local.img')
  localDisk(disk)

  // single host
  const cfg = join(dir, 'appliance.yaml')
  writeFileSync(
    cfg,
    'apiVersion: mirror-appliance/v1\nhost:\n  hostname: pxe-single.lab.example\n  disk: {device: vda}\nregistry:\n  flavor: distribution\n',
  )
  const singlePort = await freePort()
  const single = await buildAndServe(t, [
    'build',
    '-c',
    cfg,
    '-o',
    join(dir, 'single'),
    '--iso',
    iso,
    '--pxe',
    '--pxe-url',
    `http://10.0.2.2:${singlePort}`,
    '--allow-missing',
    '--cache',
    join(dir, 'empty-cache'),
  ])
  // fleet
  const fleetPort = await freePort()
  const fleet = await buildAndServe(t, [
    'build',
    '-c',
    FLEET,
    '-o',
    join(dir, 'fleet'),
    '--iso',
    iso,
    '--pxe',
    '--pxe-url',
    `http://10.0.2.2:${fleetPort}`,
    '--no-oemdrv',
    '--allow-missing',
    '--cache',
    join(dir, 'empty-cache'),
    '--seed',
    'pxe-boot',
  ])

  const boots = {
    singleBios: { name: 'single-bios', firmware: 'bios', bootfile: `${single.url}/pxe/boot.ipxe`, mac: '52:54:00:00:00:01' },
    singleUefi: { name: 'single-uefi', firmware: 'uefi', bootfile: `${single.url}/pxe/boot.ipxe`, mac: '52:54:00:00:00:01' },
    fleetA: { name: 'fleet-a-bios', firmware: 'bios', bootfile: `${fleet.url}/pxe/boot.ipxe`, mac: '52:54:00:00:00:11', disk },
    fleetB: { name: 'fleet-b-uefi', firmware: 'uefi', bootfile: `${fleet.url}/pxe/boot.ipxe`, mac: '52:54:00:00:00:12' },
    unknown: { name: 'fleet-unknown-bios', firmware: 'bios', bootfile: `${fleet.url}/pxe/boot.ipxe`, mac: '52:54:00:00:00:99', disk },
  } satisfies Record<string, NetBoot>
  const runs = Object.fromEntries(Object.entries(boots).map(([k, b]) => [k, pool(() => netboot(b))])) as Record<
    keyof typeof boots,
    Promise<Boot>
  >
  Object.values(runs).forEach((p) => p.catch(() => {}))

  await t.test('every URL the served trees name resolves', async (t) => {
    await checkUrls(t, single.tree, single.url)
    await checkUrls(t, fleet.tree, fleet.url)
  })

  const ksFirst = (f: string) => readFileSync(f, 'utf8').split('\n')[0]!

  for (const key of ['singleBios', 'singleUefi'] as const) {
    await t.test(
      `single host, ${boots[key].firmware}: iPXE boots the tree's kernel, the installer finds the repo and our kickstart`,
      async (t) => {
        const b = await runs[key]
        t.comment(`${boots[key].name}: ${(b.ms / 1000).toFixed(1)} s, qemu exit ${b.code}`)
        t.ok(b.log.includes(`${single.url}/pxe/boot.ipxe... ok`), 'iPXE fetched pxe/boot.ipxe from the served tree')
        const cmdline = line(b.log, 'CMDLINE: ')
        t.ok(cmdline, 'the kernel iPXE fetched ran the installer initrd')
        t.match(cmdline ?? '', / ip=dhcp /, 'ip=dhcp')
        t.match(cmdline ?? '', ` inst.repo=${single.url}/repo `, "inst.repo is the tree's repo/")
        t.match(cmdline ?? '', ` inst.ks=${single.url}/ks.cfg`, "inst.ks is the tree's ks.cfg")
        t.match(line(b.log, 'NET-UP: ') ?? '', /^NET-UP: \S+ 10\.0\.2\.\d+ \(ip=dhcp\)$/, 'the installer got an address by DHCP')
        t.equal(line(b.log, 'REPO-FOUND: '), 'REPO-FOUND: Red Hat Enterprise Linux 8.10', 'repo/.treeinfo served')
        t.equal(line(b.log, 'KS-FOUND: '), `KS-FOUND: ${ksFirst(join(single.tree, 'ks.cfg'))}`, 'kickstart fetched over HTTP')
        t.equal(line(b.log, 'KS-HOSTNAME: '), 'KS-HOSTNAME: pxe-single.lab.example', "and it is this config's kickstart")
        t.equal(b.code, 0, 'guest powered off by itself')
        if (!line(b.log, 'KS-HOSTNAME: ')) t.comment(b.log.slice(-3000))
      },
    )
  }

  for (const [key, host, id] of [
    ['fleetA', 'mirror-a.lab.example', '01-52-54-00-00-00-11'],
    ['fleetB', 'mirror-b.lab.example', '01-52-54-00-00-00-12'],
  ] as const) {
    await t.test(`fleet, ${host}'s MAC, ${boots[key].firmware}: its own entry and its own kickstart`, async (t) => {
      const b = await runs[key]
      t.comment(`${boots[key].name}: ${(b.ms / 1000).toFixed(1)} s, qemu exit ${b.code}`)
      t.ok(b.log.includes(`${fleet.url}/pxe/ipxe/${id}.ipxe... ok`), `boot.ipxe chained pxe/ipxe/${id}.ipxe`)
      const ksUrl = `${fleet.url}/hosts/${host}/ks.cfg`
      t.match(line(b.log, 'CMDLINE: ') ?? '', ` inst.ks=${ksUrl}`, `inst.ks is ${host}'s kickstart`)
      t.equal(line(b.log, 'REPO-FOUND: '), 'REPO-FOUND: Red Hat Enterprise Linux 8.10', 'repo/.treeinfo served')
      t.equal(line(b.log, 'KS-FOUND: '), `KS-FOUND: ${ksFirst(join(fleet.tree, 'hosts', host, 'ks.cfg'))}`, 'kickstart fetched over HTTP')
      t.equal(line(b.log, 'KS-HOSTNAME: '), `KS-HOSTNAME: ${host}`, `and it is ${host}'s`)
      t.notOk(b.log.includes(MARKER), 'the local disk was not booted')
      t.equal(b.code, 0, 'guest powered off by itself')
      if (!line(b.log, 'KS-HOSTNAME: ')) t.comment(b.log.slice(-3000))
    })
  }

  await t.test('fleet, a MAC not in the fleet (bios): iPXE exits and the firmware boots the local disk', async (t) => {
    const b = await runs.unknown
    t.comment(`${boots.unknown.name}: ${(b.ms / 1000).toFixed(1)} s, qemu exit ${b.code}`)
    t.ok(b.log.includes(`${fleet.url}/pxe/boot.ipxe... ok`), "iPXE fetched the fleet's boot.ipxe")
    t.ok(b.log.includes('Not a fleet machine: booting from the local disk'), 'no entry for this MAC: the script says so')
    t.ok(b.log.includes(MARKER), "the local disk's boot sector ran")
    t.equal(b.code, (DISK_EXIT << 1) | 1, 'and ended QEMU (isa-debug-exit)')
    t.notOk(b.log.includes('images/pxeboot/vmlinuz'), 'no installer kernel fetched')
    t.notOk(b.log.includes('CMDLINE: '), 'no installer ran')
    if (!b.log.includes(MARKER)) t.comment(b.log.slice(-3000))
  })
})

// qcow2 path 1 end to end: the suite's own small Linux guest image stands in
// for the RHEL 8 KVM guest image. Two builds (seed + data disk + grow; and
// cloud-init disabled + compressed), one failing build, then ONE read-only
// libguestfs session inspects both results (each launch costs ~20 s), and the
// first result boots under QEMU TCG with the fixture's tiny init reporting on
// the serial port.

import t, { type Test } from 'tap'
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { UserError } from '../../builder/errors.js'
import { run } from '../../builder/exec.js'
import { buildQcow2FromImage, type Qcow2Result } from '../../builder/media/qcow2.js'
import { sha256File } from '../../builder/hash.js'
import type { HostSpec } from '../../builder/plan/types.js'
import { GuestfishSession, gfLine, parseStruct } from '../../builder/tools/guestfish.js'
import { imageInfo } from '../../builder/tools/qemu-img.js'
import { BOOT_MARKER, FIXTURE_QCOW2_BYTES, FIXTURE_ROOT_LABEL, fixtureQcow2 } from '../helpers/fixture-qcow2.js'

const EPOCH = 1700000000
const DATA = '/var/lib/mirror-registry'
const KEY = '-----BEGIN PRIVATE KEY-----\nnot a real key\n-----END PRIVATE KEY-----\n'
const UNIT =
  '[Unit]\nDescription=First boot\nAfter=network-online.target\n\n[Service]\nType=oneshot\nExecStart=/usr/local/libexec/mirror-appliance-firstboot\n\n[Install]\nWantedBy=multi-user.target\n'
const BINARY = Buffer.from([0, 1, 2, 255, 10, 37, 101, 110, 100])

const host: HostSpec = {
  dirs: [
    { path: '/etc/mirror-appliance', mode: 0o755, owner: 'root', group: 'root' },
    { path: '/etc/mirror-appliance/tls', mode: 0o700, owner: 'root', group: 'root' },
    { path: DATA, mode: 0o750, owner: 'registry', group: 'registry', selinuxType: 'container_file_t' },
    { path: `${DATA}/quay`, mode: 0o770, owner: '1001', group: 'root' },
  ],
  files: [
    { path: '/etc/systemd/system/mirror-appliance-firstboot.service', contents: UNIT, mode: 0o644, owner: 'root', group: 'root' },
    { path: '/etc/mirror-appliance/tls/server.key', contents: KEY, mode: 0o600, owner: 'root', group: 'root', secret: true },
    {
      path: '/usr/local/libexec/mirror-appliance-firstboot',
      contents: '#!/bin/bash\nset -euo pipefail\necho "first boot"\n',
      mode: 0o755,
      owner: 'root',
      group: 'root',
    },
    { path: '/etc/mirror-appliance/empty', contents: '', mode: 0o644, owner: 'root', group: 'root' },
    {
      path: '/etc/mirror-appliance/binary.bin',
      contents: BINARY,
      mode: 0o640,
      owner: 'root',
      group: 'registry',
      selinuxType: 'container_file_t',
    },
    {
      path: `${DATA}/quay/config.yaml`,
      contents: 'SERVER_HOSTNAME: mirror.example.com\n',
      mode: 0o640,
      owner: 'registry',
      group: 'registry',
    },
  ],
  enableUnits: ['mirror-appliance-firstboot.service', 'chronyd.service'],
  disableUnits: ['kdump.service'],
  firewallPorts: ['8443/tcp', '8443/tcp', '9000-9002/udp'],
}

const seed = {
  instanceId: 'mirror-appliance-test',
  hostname: 'mirror.example.com',
  users: [
    {
      name: 'admin',
      gecos: 'Admin',
      groups: ['wheel'],
      passwordHash: null,
      sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJtest admin@example'],
    },
  ],
  rootPasswordHash: '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
  network: {
    mode: 'static' as const,
    address: '192.0.2.10',
    prefix: 24,
    netmask: '255.255.255.0',
    gateway: '192.0.2.1',
    dns: ['192.0.2.53'],
    searchDomains: ['example.com'],
  },
  rhel: '8.10' as const,
  sshPasswordAuthentication: false,
}

t.test('path 1: a guest image with the host spec laid in, inspected and booted', async (t) => {
  const dir = t.testdir()
  const base = await fixtureQcow2()
  const baseSum = await sha256File(base)
  const payload = join(dir, 'payload')
  await mkdir(join(payload, 'oci', 'blobs'), { recursive: true })
  await writeFile(join(payload, 'oci', 'index.json'), '{"schemaVersion":2}\n', { mode: 0o600 })
  await writeFile(join(payload, 'oci', 'blobs', 'blob'), Buffer.alloc(300_000, 7))
  const out = join(dir, 'appliance.qcow2')
  const data = join(dir, 'data.qcow2')
  const steps: number[] = []

  const t0 = Date.now()
  const r1 = await buildQcow2FromImage({
    baseImage: base,
    outFile: out,
    host,
    payloadDir: payload,
    sizeGiB: 1,
    dataDisk: { outFile: data, sizeGiB: 2, mountPoint: DATA },
    cloudInit: { seed },
    epoch: EPOCH,
    onProgress: (p) => steps.push(p.percent),
  })
  t.comment(`path 1 build (seed, data disk, grow): ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  const out2 = join(dir, 'plain.qcow2')
  const r2 = await buildQcow2FromImage({
    baseImage: base,
    outFile: out2,
    host: { ...host, dirs: [], files: host.files.slice(0, 1) },
    cloudInit: 'disable',
    compress: true,
    epoch: EPOCH,
    vmName: 'plain',
  })

  t.equal(await sha256File(base), baseSum, 'the base image is unchanged (sha256)')
  t.equal(r1.sha256, await sha256File(out), 'reported sha256 is the file’s')
  t.equal(r1.dataDisk?.sha256, await sha256File(data), 'reported data disk sha256 is the file’s')
  t.equal(steps.at(-1), 100, 'progress ends at 100%')
  t.same(
    (await readdir(dir)).sort(),
    ['appliance.qcow2', 'data.qcow2', 'payload', 'plain.qcow2'],
    'no scratch files left beside the outputs',
  )
  for (const f of [out, data, out2]) t.equal((await imageInfo(f)).backingFile, undefined, `${f} is standalone (no backing file)`)
  t.equal((await imageInfo(out)).virtualSize, 1024 ** 3, 'grown to 1 GiB')
  t.equal((await imageInfo(out2)).virtualSize, FIXTURE_QCOW2_BYTES, 'no size: the base size')
  t.match(r1.warnings.join('\n'), /podman is not installed/, 'warns that the stand-in has no podman')
  t.notMatch(r1.warnings.join('\n'), /firewalld|not enabled/, 'no other warnings')
  t.match(r1.virtInstall, /^virt-install --import --name appliance /)
  t.match(r1.domainXml, new RegExp(`<source file="${out}"/>[\\s\\S]*<source file="${data}"/>`), 'domain XML lists both disks')
  const xmlFile = join(dir, 'appliance.xml')
  await writeFile(xmlFile, r1.domainXml)
  const xml = await run('virt-xml-validate', [xmlFile, 'domain'], { nothrow: true })
  t.equal(xml.code, 0, `domain XML valid against libvirt's schema (virt-xml-validate): ${xml.stderr}`)
  await run('rm', [xmlFile])

  await t.test('a build that fails midway leaves no output', async (t) => {
    const bad = join(dir, 'bad.qcow2')
    const badHost: HostSpec = {
      ...host,
      files: [...host.files, { path: '/etc/x', contents: 'x', mode: 0o644, owner: 'nosuchuser', group: 'root' }],
    }
    await t.rejects(
      buildQcow2FromImage({
        baseImage: base,
        outFile: bad,
        host: badHost,
        cloudInit: 'disable',
        epoch: EPOCH,
        dataDisk: { outFile: join(dir, 'bad-data.qcow2'), sizeGiB: 1, mountPoint: DATA },
      }),
      {
        name: 'UserError',
        message: /\/etc\/x: user "nosuchuser" does not exist in the base image/,
      },
    )
    t.same(
      (await readdir(dir)).sort(),
      ['appliance.qcow2', 'data.qcow2', 'payload', 'plain.qcow2'],
      'no output, no data disk, no scratch left',
    )
    t.equal(await sha256File(base), baseSum, 'base still unchanged')
  })

  await t.test('inspected in one read-only libguestfs session', async (t) => {
    await inspect(t, dir, { out, data, out2, r1 })
  })

  await t.test('boots under QEMU (TCG) into the fixture init', async (t) => {
    const log = join(dir, 'serial.log')
    const kernel = (await readdir('/boot'))
      .filter((n) => n.startsWith('vmlinuz-'))
      .sort()
      .pop()!
    const t1 = Date.now()
    await run(
      'qemu-system-x86_64',
      [
        '-accel',
        'tcg',
        '-m',
        '768',
        '-nographic',
        '-monitor',
        'none',
        '-serial',
        `file:${log}`,
        '-nic',
        'none',
        '-no-reboot',
        '-kernel',
        `/boot/${kernel}`,
        '-initrd',
        `/boot/${kernel.replace('vmlinuz', 'initrd.img')}`,
        '-append',
        `root=LABEL=${FIXTURE_ROOT_LABEL} rootfstype=xfs ro console=ttyS0 panic=-1 quiet loglevel=3`,
        '-drive',
        `if=none,id=d0,format=qcow2,file=${out},snapshot=on`,
        '-device',
        'virtio-blk-pci,drive=d0',
      ],
      { timeoutMs: 240_000, nothrow: true },
    )
    t.comment(`boot to the fixture init and power-off: ${((Date.now() - t1) / 1000).toFixed(1)} s`)
    const text = await readFile(log, 'utf8')
    t.match(text, BOOT_MARKER, 'booted from the built image')
    t.match(
      text,
      'WANTS: mirror-appliance-firstboot.service -> /etc/systemd/system/mirror-appliance-firstboot.service',
      'first-boot unit enabled',
    )
    t.notMatch(text, 'WANTS: kdump.service', 'kdump disabled')
    t.match(text, 'CLOUD-INIT: nocloud seed')
    t.match(text, 'AUTORELABEL: yes')
    t.match(text, 'PAYLOAD: oci')
    t.match(text, 'FIXTURE-QCOW2-DONE')
  })
})

async function inspect(t: Test, dir: string, o: { out: string; data: string; out2: string; r1: Qcow2Result }): Promise<void> {
  const gf = await GuestfishSession.start({
    drives: [
      { file: o.out, format: 'qcow2', readonly: true },
      { file: o.data, format: 'qcow2', readonly: true },
      { file: o.out2, format: 'qcow2', readonly: true },
    ],
    workDir: dir,
  })
  try {
    await gf.batch([gfLine('mount-ro', ['/dev/sda1', '/']), gfLine('mount-ro', ['/dev/sdb', DATA])])
    const st = async (p: string) => {
      const s = parseStruct(await gf.cmd('lstatns', p))
      return { mode: Number(s.st_mode) & 0o7777, type: Number(s.st_mode) & 0o170000, uid: Number(s.st_uid), gid: Number(s.st_gid) }
    }
    let n = 0
    const bytes = async (p: string): Promise<Buffer> => {
      const local = join(dir, `got-${n++}`)
      await gf.cmd('download', p, local)
      const b = await readFile(local)
      await run('rm', ['-f', local])
      return b
    }
    const ids = { root: 0, registry: 1001, '1001': 1001 } as Record<string, number>
    const gids = { root: 0, registry: 1002 } as Record<string, number>
    for (const d of host.dirs) {
      t.same(
        await st(d.path),
        { mode: d.mode, type: 0o040000, uid: ids[d.owner], gid: gids[d.group] },
        `dir ${d.path}: mode ${d.mode.toString(8)}, owner ${d.owner}:${d.group}`,
      )
    }
    for (const f of host.files) {
      t.same(
        await st(f.path),
        { mode: f.mode, type: 0o100000, uid: ids[f.owner], gid: gids[f.group] },
        `file ${f.path}: mode ${f.mode.toString(8)}, owner ${f.owner}:${f.group}`,
      )
      t.same(await bytes(f.path), Buffer.from(f.contents), `file ${f.path}: exact contents`)
    }
    const label = await gf.cmd('lgetxattr', `${DATA}`, 'security.selinux')
    t.match(label, 'system_u:object_r:container_file_t:s0', 'SELinux type on the data dir')
    t.equal(
      (await gf.cmd('readlink', '/etc/systemd/system/multi-user.target.wants/mirror-appliance-firstboot.service')).trim(),
      '/etc/systemd/system/mirror-appliance-firstboot.service',
      'first-boot unit enabled like systemctl would',
    )
    t.equal(
      (await gf.cmd('readlink', '/etc/systemd/system/multi-user.target.wants/chronyd.service')).trim(),
      '/usr/lib/systemd/system/chronyd.service',
      'a unit from the image enabled',
    )
    t.equal(
      (await gf.cmd('readlink', '/etc/systemd/system/ntpd.service')).trim(),
      '/usr/lib/systemd/system/chronyd.service',
      'its Alias= linked',
    )
    t.equal((await gf.cmd('exists', '/etc/systemd/system/multi-user.target.wants/kdump.service')).trim(), 'false', 'kdump disabled')
    const zone = (await bytes('/etc/firewalld/zones/public.xml')).toString()
    t.match(zone, '<service name="ssh"/>', 'zone keeps the image’s services')
    t.equal(zone.match(/<port protocol="tcp" port="8443"\/>/g)?.length, 1, 'port 8443/tcp once')
    t.match(zone, '<port protocol="udp" port="9000-9002"/>', 'port range')
    t.match(zone, /<\/zone>\n$/, 'zone file ends cleanly')
    t.same(await bytes(`/var/lib/mirror-appliance/payload/oci/blobs/blob`), Buffer.alloc(300_000, 7), 'payload blob')
    t.same(
      await st('/var/lib/mirror-appliance/payload/oci/index.json'),
      { mode: 0o644, type: 0o100000, uid: 0, gid: 0 },
      'payload files root-owned, readable',
    )
    const ud = (await bytes('/var/lib/cloud/seed/nocloud/user-data')).toString()
    t.match(ud, /^#cloud-config\n/)
    const y = parseYaml(ud) as {
      hostname: string
      fqdn: string
      users: { name: string; ssh_authorized_keys: string[] }[]
      chpasswd: { users: { name: string; password: string; type: string }[] }
    }
    t.equal(y.fqdn, 'mirror.example.com')
    t.equal(y.hostname, 'mirror')
    t.same(y.users[0]?.ssh_authorized_keys, seed.users[0]!.sshKeys, 'SSH key in the seed')
    t.same(
      y.chpasswd.users,
      [{ name: 'root', password: seed.rootPasswordHash, type: 'hash' }],
      'root hash in the form 8.10’s cloud-init (23.4) reads',
    )
    t.same(await st('/var/lib/cloud/seed/nocloud/user-data'), { mode: 0o600, type: 0o100000, uid: 0, gid: 0 }, 'seed holds hashes: 0600')
    t.match((await bytes('/var/lib/cloud/seed/nocloud/meta-data')).toString(), 'local-hostname: "mirror.example.com"')
    const net = parseYaml((await bytes('/var/lib/cloud/seed/nocloud/network-config')).toString()) as {
      ethernets: { primary: { addresses: string[]; gateway4: string } }
    }
    t.same(net.ethernets.primary.addresses, ['192.0.2.10/24'], 'static address in network-config')
    t.equal((await gf.cmd('exists', '/etc/cloud/cloud-init.disabled')).trim(), 'false', 'cloud-init not disabled when seeded')
    t.equal((await gf.cmd('exists', '/.autorelabel')).trim(), 'true', '/.autorelabel armed')
    const fstab = (await bytes('/etc/fstab')).toString()
    t.equal(
      fstab,
      `LABEL=${FIXTURE_ROOT_LABEL} / xfs defaults 0 0\nUUID=${o.r1.dataDisk!.uuid} ${DATA} xfs defaults,nofail 0 0\n`,
      'fstab mounts the data disk by UUID',
    )
    t.equal((await gf.cmd('vfs-uuid', '/dev/sdb')).trim(), o.r1.dataDisk!.uuid, 'data disk has that UUID')
    const parts = await gf.cmd('part-list', '/dev/sda')
    const end = Number(/part_end: (\d+)/.exec(parts)![1])
    t.ok(end > 1024 ** 3 - 1024 * 1024, `root partition reaches the end of the 1 GiB disk (ends at ${end})`)
    const vfs = parseStruct(await gf.cmd('statvfs', '/'))
    t.ok(Number(vfs.blocks) * Number(vfs.bsize) > 700 * 1024 * 1024, 'root file system grown past the base’s 512 MiB')

    // The data disk must be mountable by RHEL 8's kernel: no bigtime, no inobtcount.
    await gf.batch([gfLine('umount-all'), gfLine('mount-ro', ['/dev/sdc1', '/'])])
    t.equal((await gf.cmd('exists', '/etc/cloud/cloud-init.disabled')).trim(), 'true', 'second build: cloud-init disabled')
    t.equal((await gf.cmd('exists', '/var/lib/cloud/seed')).trim(), 'false', 'second build: no seed')
    t.equal((await gf.cmd('exists', '/etc/fstab')).trim(), 'true')
    t.equal((await bytes('/etc/fstab')).toString(), `LABEL=${FIXTURE_ROOT_LABEL} / xfs defaults 0 0\n`, 'second build: fstab untouched')
    await gf.close()
  } catch (e) {
    await gf.kill()
    throw e
  }
  // Feature flags of the data disk file system, read by xfs_db from the image's bytes.
  const raw = join(dir, 'data.raw')
  await run('qemu-img', ['convert', '-O', 'raw', o.data, raw])
  const v = await run('xfs_db', ['-r', '-c', 'version', raw])
  await run('rm', ['-f', raw])
  t.notMatch(v.stdout, /BIGTIME|INOBTCNT/, `data disk XFS has no bigtime/inobtcount (RHEL 8 can mount it): ${v.stdout.trim()}`)
  t.match(v.stdout, /CRC/, 'a v5 (CRC) XFS')
}

t.test('bad input fails before any work, as UserError', async (t) => {
  const dir = t.testdir()
  const base = await fixtureQcow2()
  const opts = { baseImage: base, outFile: join(dir, 'o.qcow2'), host, cloudInit: 'disable' as const, epoch: EPOCH }
  await t.rejects(buildQcow2FromImage({ ...opts, baseImage: join(dir, 'missing.qcow2') }), { name: 'UserError', message: /does not exist/ })
  await t.rejects(buildQcow2FromImage({ ...opts, sizeGiB: 0.25 }), { name: 'UserError', message: /smaller than the base image/ })
  await t.rejects(
    buildQcow2FromImage({
      ...opts,
      host: { ...host, files: [{ path: 'etc/x', contents: '', mode: 0o644, owner: 'root', group: 'root' }] },
    }),
    { name: 'UserError', message: /"etc\/x" is not a clean absolute path/ },
  )
  await t.rejects(buildQcow2FromImage({ ...opts, host: { ...host, enableUnits: ['bad unit'] } }), {
    name: 'UserError',
    message: /not a systemd unit name/,
  })
  await t.rejects(buildQcow2FromImage({ ...opts, outFile: base }), UserError)
  await writeFile(join(dir, 'o.qcow2'), 'x')
  await t.rejects(buildQcow2FromImage(opts), { name: 'UserError', message: /already exists/ })
  t.equal((await stat(join(dir, 'o.qcow2'))).size, 1, 'existing output untouched')
})

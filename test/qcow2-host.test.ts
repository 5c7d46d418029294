// The pure pieces of the qcow2 builder: guestfish quoting (judged by guestfish
// itself), systemctl-enable links, firewalld zone edits, fstab, qemu-img argv.
import t from 'tap'
import { run } from '../builder/exec.js'
import { gfLine, gfQuote } from '../builder/tools/guestfish.js'
import { convertArgs, overlayArgs, parseInfo } from '../builder/tools/qemu-img.js'
import {
  enableLinks,
  fstabWithMount,
  parseIds,
  parseInstallSection,
  renderNoCloud,
  resolveId,
  virtInstallArgs,
  zoneWithPorts,
  zoneWithoutServices,
  defaultPublicZone,
} from '../builder/media/qcow2-host.js'

t.test('gfQuote: guestfish reads back exactly what we meant', async (t) => {
  const values = [
    'plain',
    'with space',
    'quote"inside',
    "single'quote",
    'back\\slash',
    'tab\there',
    'new\nline',
    'dollar $HOME `x`',
    '-leading',
    'üñí',
    '#hash',
    ':colon',
  ]
  // guestfish's echo prints its arguments; no helper VM needed.
  const script = values.map((v) => gfLine('echo', [v])).join('\n') + '\n'
  const r = await run('guestfish', [], { input: script })
  t.same(
    r.stdout.split('\n').slice(0, -1),
    values.flatMap((v) => v.split('\n')),
  )
  t.throws(() => gfQuote('a\0b'))
  t.throws(() => gfLine('rm -rf', []))
  t.equal(gfLine('add', ['/x y.qcow2'], { format: 'qcow2', readonly: true }), 'add "/x y.qcow2" format:qcow2 readonly:true')
})

t.test('[Install] section and the links systemctl enable makes', async (t) => {
  const unit =
    '[Unit]\nWantedBy=not-here.target\n[Install]\nWantedBy=multi-user.target graphical.target\n# comment\nRequiredBy=foo.service\nAlias=bar.service\nAlso=baz.socket\n'
  const i = parseInstallSection(unit)
  t.same(i, {
    wantedBy: ['multi-user.target', 'graphical.target'],
    requiredBy: ['foo.service'],
    alias: ['bar.service'],
    also: ['baz.socket'],
  })
  t.same(
    parseInstallSection('[Install]\nWantedBy=a.target\nWantedBy=\nWantedBy=b.target\n').wantedBy,
    ['b.target'],
    'empty assignment resets',
  )
  t.same(enableLinks('x.service', '/etc/systemd/system/x.service', i), [
    { link: '/etc/systemd/system/multi-user.target.wants/x.service', target: '/etc/systemd/system/x.service' },
    { link: '/etc/systemd/system/graphical.target.wants/x.service', target: '/etc/systemd/system/x.service' },
    { link: '/etc/systemd/system/foo.service.requires/x.service', target: '/etc/systemd/system/x.service' },
    { link: '/etc/systemd/system/bar.service', target: '/etc/systemd/system/x.service' },
  ])
})

t.test('firewalld zone: ports added once, existing content kept', async (t) => {
  const zone = '<?xml version="1.0" encoding="utf-8"?>\n<zone>\n  <service name="ssh"/>\n  <port port="8443" protocol="tcp"/>\n</zone>\n'
  const out = zoneWithPorts(zone, ['8443/tcp', '5000/tcp', '5000/tcp', '60-70/udp'])
  t.equal(
    out,
    '<?xml version="1.0" encoding="utf-8"?>\n<zone>\n  <service name="ssh"/>\n  <port port="8443" protocol="tcp"/>\n  <port protocol="tcp" port="5000"/>\n  <port protocol="udp" port="60-70"/>\n</zone>\n',
  )
  t.equal(zoneWithPorts(out, ['5000/tcp']), out, 'idempotent')
  t.throws(() => zoneWithPorts(zone, ['8443']), { name: 'UserError' })
  const xml = await run('xmllint', ['--noout', '-'], { input: out, nothrow: true })
  t.equal(xml.code, 0, 'still well-formed XML')
})

t.test("firewalld zone: RHEL's cockpit and dhcpv6-client removed, ssh and the registry port left (issue 18)", async (t) => {
  // RHEL 8's public zone as the qcow2 route finds it (or its stand-in when the image has none)
  const rhel = defaultPublicZone()
  t.match(rhel, /<service name="cockpit"\/>/, 'the stand-in has what RHEL ships')
  const out = zoneWithoutServices(zoneWithPorts(rhel, ['8443/tcp']), ['cockpit', 'dhcpv6-client'])
  t.same(
    [...out.matchAll(/<service name="([^"]+)"\/>/g)].map((m) => m[1]),
    ['ssh'],
    'only ssh is left of the services',
  )
  t.match(out, /<port protocol="tcp" port="8443"\/>/)
  t.equal(zoneWithoutServices(out, ['cockpit', 'dhcpv6-client']), out, 'idempotent')
  t.equal(zoneWithoutServices(rhel, []), rhel, 'nothing removed when the config keeps them')
  t.match(zoneWithoutServices('<zone>\n  <service name="cockpit-ws"/>\n</zone>\n', ['cockpit']), /cockpit-ws/, 'only the exact name')
  t.throws(() => zoneWithoutServices(rhel, ['a"b']), /not a firewalld service name/)
  const xml = await run('xmllint', ['--noout', '-'], { input: out, nothrow: true })
  t.equal(xml.code, 0, 'still well-formed XML')
})

t.test('owners resolve through the image’s own tables', async (t) => {
  const users = parseIds('root:x:0:0::/root:/bin/bash\nquay:x:1001:1001::/:/sbin/nologin\nbroken\n')
  t.equal(resolveId('quay', users, 'user', '/p'), 1001)
  t.equal(resolveId('42', users, 'user', '/p'), 42)
  t.throws(() => resolveId('nobody2', users, 'user', '/p'), {
    name: 'UserError',
    message: /\/p: user "nobody2" does not exist in the base image's \/etc\/passwd/,
  })
})

t.test('fstab: one line for the data disk, replacing an older one', async (t) => {
  const f = fstabWithMount('# hdr\nUUID=a / xfs defaults 0 0\nUUID=old /data xfs defaults 0 0\n', 'u-1', '/data')
  t.equal(f, '# hdr\nUUID=a / xfs defaults 0 0\nUUID=u-1 /data xfs defaults,nofail 0 0\n')
  t.equal(fstabWithMount('', 'u', '/d'), 'UUID=u /d xfs defaults,nofail 0 0\n')
})

t.test('qemu-img argv and info', async (t) => {
  t.same(overlayArgs('/o.qcow2', '/base, odd.qcow2', 'qcow2'), [
    'create',
    '-q',
    '-f',
    'qcow2',
    '-b',
    '/base, odd.qcow2',
    '-F',
    'qcow2',
    '/o.qcow2',
  ])
  t.same(convertArgs('/a', 'qcow2', '/b', true), ['convert', '-f', 'qcow2', '-O', 'qcow2', '-c', '-o', 'compat=1.1', '/a', '/b'])
  t.same(parseInfo('{"format":"qcow2","virtual-size":1073741824,"backing-filename":"/b"}'), {
    format: 'qcow2',
    virtualSize: 1073741824,
    actualSize: undefined,
    backingFile: '/b',
  })
})

t.test('NoCloud seed without users or static network', async (t) => {
  const f = renderNoCloud({
    instanceId: 'i-1',
    hostname: 'h.example',
    users: [],
    rootPasswordHash: null,
    rhel: '8.10',
    sshPasswordAuthentication: false,
  })
  t.equal(f['network-config'], undefined, 'DHCP: no network-config, cloud-init falls back to DHCP')
  t.match(f['user-data'], /users:\n {2}- default\n/)
  t.notMatch(f['user-data'], /chpasswd/)
  t.throws(
    () =>
      renderNoCloud({
        instanceId: 'i',
        hostname: 'h',
        users: [{ name: 'Bad Name', gecos: '', groups: [], passwordHash: null, sshKeys: [] }],
        rootPasswordHash: null,
        rhel: '8.10',
        sshPasswordAuthentication: false,
      }),
    { name: 'UserError' },
  )
})

t.test('virt-install argv escapes commas in paths', async (t) => {
  const a = virtInstallArgs({ name: 'vm', disks: ['/a,b.qcow2'] })
  t.ok(a.includes('path=/a,,b.qcow2,format=qcow2,bus=virtio'))
  t.equal(a[0], '--import')
})

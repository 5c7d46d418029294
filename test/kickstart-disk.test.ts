// The disk layout and the check that it fits host.disk.minSizeGiB, with the
// field paths the config rules turn into line:col errors.
import t from 'tap'
import { join } from 'node:path'
import { UserError } from '../builder/errors.js'
import { checkDiskLayout, computeDiskLayout } from '../builder/render/disk.js'
import { renderKickstart } from '../builder/render/kickstart.js'
import { loadFixture, planFor } from './hostspec-fixture.js'

const base = loadFixture(join(new URL('./fixtures/', import.meta.url).pathname, 'ks-dhcp-auto', 'appliance.yaml')).config
type Layout = typeof base.host.disk.layout
const withDisk = (d: Partial<Omit<typeof base.host.disk, 'layout'>> & { layout?: Partial<Layout> }, dataDir = base.registry.dataDir) => {
  const c = structuredClone(base)
  Object.assign(c.host.disk, { ...d, layout: { ...c.host.disk.layout, ...d.layout } })
  c.registry.dataDir = dataDir
  return c
}

t.test('the default layout fits 64 GiB and is computed in MiB', async (t) => {
  t.same(checkDiskLayout(base), [])
  const l = computeDiskLayout(base)
  t.same(
    l.volumes.map((v) => [v.mount, v.sizeMiB, v.grow]),
    [
      ['/', 20480, false],
      ['swap', 4096, false],
      ['/var/lib/mirror-registry', 1024, true],
    ],
  )
  // 2 table + 600 EFI budget (auto) + 1024 /boot + 4 PV metadata + volumes
  t.equal(l.requiredMiB, 2 + 600 + 1024 + 4 + 20480 + 4096 + 1024)
})

t.test('full fits, one GiB more does not, and the error names the field', async (t) => {
  // 30 GiB disk, bios: 2 + 1 + 1024 + 4 + root + data must be <= 30720
  const fixed = (dataGiB: number, minSizeGiB: number) =>
    withDisk({ firmware: 'bios', minSizeGiB, layout: { rootGiB: 20, swapGiB: 0, varGiB: 0, registryDataGiB: dataGiB } })
  t.same(checkDiskLayout(fixed(8, 30)), [], '20 + 8 GiB + 1031 MiB overhead fits 30 GiB')
  const errs = checkDiskLayout(fixed(9, 30))
  t.equal(errs.length, 1)
  t.same(errs[0]!.path, ['host', 'disk', 'layout', 'registryDataGiB'])
  t.match(errs[0]!.message, /need 30727 MiB .* host\.disk\.minSizeGiB is 30 GiB \(30720 MiB\): 7 MiB too many/)
  const rest = checkDiskLayout(withDisk({ minSizeGiB: 20, layout: { rootGiB: 20, registryDataGiB: 'rest' } }))
  t.same(rest[0]?.path, ['host', 'disk', 'layout', 'rootGiB'], 'with "rest" the fixed volumes are to blame')
})

t.test('data dirs that cannot be the registry volume, and bad device names', async (t) => {
  for (const dir of ['/', '/var', '/boot', '/boot/x', 'relative', '/a/../b', '/with space', "/q'uote", '/etc'])
    t.same(
      checkDiskLayout(withDisk({}, dir)).map((e) => e.path),
      [['registry', 'dataDir']],
      dir,
    )
  for (const dev of ['vda,vdb', 'sd a', '-x', '/dev/sda', '$(x)'])
    t.same(
      checkDiskLayout(withDisk({ device: dev })).map((e) => e.path),
      [['host', 'disk', 'device']],
      dev,
    )
  for (const dev of ['vda', 'nvme0n1', '/dev/disk/by-id/wwn-0x5000c500a0b1c2d3', '/dev/disk/by-path/pci-0000:00:05.0'])
    t.same(checkDiskLayout(withDisk({ device: dev })), [], dev)
  t.same(
    checkDiskLayout(withDisk({ layout: { rootGiB: 2 } })).map((e) => e.path),
    [['host', 'disk', 'layout', 'rootGiB']],
  )
})

t.test('renderKickstart refuses a layout that does not fit', async (t) => {
  const c = withDisk({ minSizeGiB: 16 })
  t.throws(() => renderKickstart(planFor(c, 'sha256:x'), { source: 'cdrom' }), UserError)
})

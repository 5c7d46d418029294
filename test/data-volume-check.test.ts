// The build's data-volume check (builder/commands/data-volume-check.ts): what
// the registry data volume needs for a payload in each flavor, against what
// the smallest disk the config allows gives it. The same payload fits on a
// disk in the distribution flavor (its content is the payload's own blobs)
// and not in Quay's (pushed: a second copy), and the refusal names the host,
// the shortfall and the setting to change.
import t from 'tap'
import { checkDataVolume, dataVolumeError } from '../builder/commands/data-volume-check.js'
import { loadConfigText } from '../builder/config/load.js'
import { TREE_FILE_BYTES } from '../builder/payload/data-volume.js'
import { computeDiskLayout } from '../builder/render/disk.js'

const GiB = 1024 ** 3
const config = (flavor: string, extra = '') =>
  loadConfigText(
    `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda, minSizeGiB: 64 } }
registry: { flavor: ${flavor} }
${extra}`,
    'dv.yaml',
    { baseDir: '/tmp' },
  ).config
// 30 GiB of payload, 28 GiB of it content; 20 000 tree files
const figures = { payloadBytes: 30 * GiB, contentBytes: 28 * GiB, treeFiles: 20_000 }

t.test('the data volume on a 64 GiB disk: what "rest" leaves it', async (t) => {
  const c = config('distribution')
  const layout = computeDiskLayout(c)
  const check = checkDataVolume(c, figures)
  t.equal(
    check.volumeBytes,
    (layout.diskMiB - layout.requiredMiB + 1024) * 1024 * 1024,
    'the disk less every other volume and the overheads',
  )
  t.ok(check.volumeBytes > 35 * GiB && check.volumeBytes < 40 * GiB)
})

t.test("distribution: the payload plus the tree's link files; fits", async (t) => {
  const check = checkDataVolume(config('distribution'), figures)
  t.equal(check.needs.how, 'tree')
  t.equal(check.needs.peakBytes, 30 * GiB + 20_000 * TREE_FILE_BYTES)
  t.equal(check.needs.steadyBytes, 28 * GiB + 20_000 * TREE_FILE_BYTES, 'the payload removed: the content once, and the tree')
  t.ok(check.fits)
  t.match(
    check.summary,
    /^data volume \/var\/lib\/mirror-registry \(distribution, its storage tree moved into place, no push\): needs 30\.\d+ GiB during first boot/,
  )
  t.match(check.summary, /gives it 3\d\.\d+ GiB$/)
})

t.test("quay: the payload plus Quay's pushed copy; too small, and the error says what to change", async (t) => {
  const c = config('quay')
  const check = checkDataVolume(c, figures)
  t.equal(check.needs.how, 'push')
  t.equal(check.needs.peakBytes, 58 * GiB)
  t.notOk(check.fits)
  const e = dataVolumeError([{ hostname: 'registry.lab.example', config: c, check }])
  t.equal(e.exitCode, 2)
  t.match(
    e.message,
    /registry\.lab\.example: data volume \/var\/lib\/mirror-registry \(quay, content pushed at first boot\): needs 58\.0 GiB during first boot \(payload \(<dataDir>\/\.payload\) 30\.0 GiB \+ Quay's copy of the content, pushed at first boot 28\.0 GiB\), 28\.0 GiB after; .*gives it 38\.\d GiB: 19\.\d GiB short; raise host\.disk\.minSizeGiB/,
  )
})

t.test("a fixed data volume: its size; keepPayload keeps the payload's bytes after first boot", async (t) => {
  const c = loadConfigText(
    `apiVersion: mirror-appliance/v1
host: { hostname: r.example, disk: { device: vda, minSizeGiB: 200, layout: { registryDataGiB: 40 } } }
registry: { flavor: quay }
content: { keepPayload: true }
`,
    'dv.yaml',
    { baseDir: '/tmp' },
  ).config
  const check = checkDataVolume(c, figures)
  t.equal(check.volumeBytes, 40 * GiB)
  t.equal(check.needs.steadyBytes, 58 * GiB, "kept: payload and Quay's copy")
  t.notOk(check.fits)
  t.match(dataVolumeError([{ hostname: 'r.example', config: c, check }]).message, /raise host\.disk\.layout\.registryDataGiB/)
})

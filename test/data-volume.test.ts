// How much the registry data volume needs for a payload in each flavor
// (builder/payload/data-volume.ts): distribution serves the tree laid at build
// time (content bytes once, shared with the payload), Quay gets a pushed copy
// (payload + copy until the payload is removed), object storage keeps the
// registry's copy off the volume.
import t from 'tap'
import { dataVolumeNeeds, TREE_FILE_BYTES, type DataVolumeInput } from '../builder/payload/data-volume.js'

const GiB = 1024 ** 3
const base = { payloadBytes: 12 * GiB, contentBytes: 10 * GiB, treeFiles: 1000 }

t.test('each flavor: how, peak and steady bytes', async (t) => {
  const cases: [string, Partial<DataVolumeInput> & Pick<DataVolumeInput, 'flavor'>, { how: string; peak: number; steady: number }][] = [
    [
      'distribution: the tree, bytes once',
      { flavor: 'distribution' },
      { how: 'tree', peak: 12 * GiB + 1000 * TREE_FILE_BYTES, steady: 10 * GiB + 1000 * TREE_FILE_BYTES },
    ],
    [
      'distribution keeping the payload',
      { flavor: 'distribution', keepPayload: true },
      { how: 'tree', peak: 12 * GiB + 1000 * TREE_FILE_BYTES, steady: 12 * GiB + 1000 * TREE_FILE_BYTES },
    ],
    [
      'quay: payload plus the pushed copy, the payload removed after',
      { flavor: 'quay' },
      { how: 'push', peak: 22 * GiB, steady: 10 * GiB },
    ],
    ['quay keeping the payload', { flavor: 'quay', keepPayload: true }, { how: 'push', peak: 22 * GiB, steady: 22 * GiB }],
    ['quay on object storage', { flavor: 'quay', objectStorage: true }, { how: 'push', peak: 12 * GiB, steady: 0 }],
    [
      'distribution on object storage: pushed, no tree',
      { flavor: 'distribution', objectStorage: true, keepPayload: true },
      { how: 'push', peak: 12 * GiB, steady: 12 * GiB },
    ],
  ]
  for (const [name, o, want] of cases) {
    const r = dataVolumeNeeds({ ...base, ...o })
    t.same({ how: r.how, peak: r.peakBytes, steady: r.steadyBytes }, want, name)
    t.equal(
      r.items.reduce((n, i) => n + i.bytes, 0),
      r.peakBytes,
      `${name}: the items add up to the peak`,
    )
  }
  // the point of the tree: distribution needs content once, Quay twice while pushing
  const d = dataVolumeNeeds({ ...base, flavor: 'distribution' })
  const q = dataVolumeNeeds({ ...base, flavor: 'quay' })
  t.ok(q.peakBytes - d.peakBytes > 9 * GiB, 'the tree saves about the content size')
  t.match(d.items[1]!.what, /1000 link files and directories/)
  t.match(q.items[1]!.what, /Quay's copy of the content/)
})

t.test('bad figures are a bug, said plainly', async (t) => {
  t.throws(() => dataVolumeNeeds({ ...base, flavor: 'quay', payloadBytes: -1 }), /payloadBytes must be a byte count/)
  t.throws(() => dataVolumeNeeds({ ...base, flavor: 'quay', treeFiles: 1.5 }), /treeFiles must be a byte count/)
  t.throws(() => dataVolumeNeeds({ ...base, flavor: 'quay', contentBytes: 13 * GiB }), /cannot exceed the payload/)
})

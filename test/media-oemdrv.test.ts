import t from 'tap'
import { readFile, mkdir, writeFile, readdir, truncate, utimes, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { buildOemdrv } from '../builder/media/oemdrv.js'
import { UserError } from '../builder/errors.js'
import { isoDescriptors, listIso, readIsoFile } from './helpers/fixture-iso.js'
import { run } from '../builder/exec.js'

const KS = '#version=RHEL8\ntext\neula --agreed\nreboot --eject\n'
const EPOCH = 1700000000

async function payload(dir: string): Promise<string> {
  const p = join(dir, 'payload')
  await mkdir(join(p, 'oci', 'blobs', 'sha256'), { recursive: true })
  await writeFile(join(p, 'oci', 'index.json'), '{"schemaVersion":2,"manifests":[]}\n')
  await writeFile(join(p, 'oci', 'blobs', 'sha256', 'a'.repeat(64)), Buffer.alloc(100_000, 7))
  await writeFile(join(p, 'firstboot.sh'), '#!/bin/bash\necho hi\n', { mode: 0o755 })
  return p
}

t.test('OEMDRV ISO: label, ks.cfg at the root, payload under /appliance, Joliet + Rock Ridge', async (t) => {
  const dir = t.testdir()
  const p = await payload(dir)
  const out = join(dir, 'oemdrv.iso')
  const seen: number[] = []
  const r = await buildOemdrv({ ksText: KS, payloadDir: p, outFile: out, epoch: EPOCH, onProgress: (x) => seen.push(x.percent) })
  t.equal(r.volumeId, 'OEMDRV')
  t.equal(r.bytes, (await stat(out)).size, 'reported size is the file size')
  const pvd = await run('xorriso', ['-indev', out, '-pvd_info'])
  t.match(pvd.stdout, /^Volume Id\s*:\s*OEMDRV\s*$/m, 'volume id OEMDRV')
  t.equal(await readIsoFile(out, '/ks.cfg'), KS, 'ks.cfg at the root, unchanged')
  const files = await listIso(out)
  t.equal(files.get('/appliance/oci/index.json'), 35)
  t.equal(files.get('/appliance/oci/blobs/sha256/' + 'a'.repeat(64)), 100_000)
  t.equal(files.get('/appliance/firstboot.sh'), 20)
  const d = await isoDescriptors(out)
  t.ok(d.joliet, 'Joliet tree present')
  t.ok(d.rockRidge, 'Rock Ridge present')
  t.equal(seen.at(-1), 100, 'progress ends at 100%')
  t.same(await readdir(dir), ['oemdrv.iso', 'payload'], 'no temp files left')
})

t.test('OEMDRV ISO without payload', async (t) => {
  const out = join(t.testdir(), 'o.iso')
  await buildOemdrv({ ksText: KS, outFile: out, epoch: EPOCH })
  const files = await listIso(out)
  t.same([...files.keys()].sort(), ['/', '/ks.cfg'])
})

t.test('same inputs and epoch give identical bytes; another epoch does not', async (t) => {
  const dir = t.testdir()
  const p = await payload(dir)
  const a = join(dir, 'a.iso')
  const b = join(dir, 'b.iso')
  const c = join(dir, 'c.iso')
  await buildOemdrv({ ksText: KS, payloadDir: p, outFile: a, epoch: EPOCH })
  // different wall clock, different mtimes on the inputs
  await new Promise((r) => setTimeout(r, 1100))
  await utimes(join(p, 'firstboot.sh'), 1234, 1234)
  await buildOemdrv({ ksText: KS, payloadDir: p, outFile: b, epoch: EPOCH })
  await buildOemdrv({ ksText: KS, payloadDir: p, outFile: c, epoch: EPOCH + 86400 })
  const [ba, bb, bc] = await Promise.all([readFile(a), readFile(b), readFile(c)])
  t.ok(ba.equals(bb), 'bit-identical')
  t.notOk(ba.equals(bc), 'epoch is part of the image')
})

t.test('bad input is a UserError and writes nothing', async (t) => {
  const dir = t.testdir({ 'exists.iso': 'x', 'file.txt': 'x' })
  const out = join(dir, 'o.iso')
  await t.rejects(buildOemdrv({ ksText: KS, payloadDir: join(dir, 'nope'), outFile: out, epoch: EPOCH }), UserError)
  await t.rejects(buildOemdrv({ ksText: KS, payloadDir: join(dir, 'file.txt'), outFile: out, epoch: EPOCH }), /not a directory/)
  await t.rejects(buildOemdrv({ ksText: '  \n', outFile: out, epoch: EPOCH }), /kickstart text is empty/)
  await t.rejects(buildOemdrv({ ksText: KS, outFile: join(dir, 'exists.iso'), epoch: EPOCH }), /already exists/)
  await t.rejects(buildOemdrv({ ksText: KS, outFile: join(dir, 'no', 'o.iso'), epoch: EPOCH }), /does not exist/)
  t.same((await readdir(dir)).sort(), ['exists.iso', 'file.txt'])
  await buildOemdrv({ ksText: KS, outFile: join(dir, 'exists.iso'), epoch: EPOCH, force: true })
  t.equal(await readIsoFile(join(dir, 'exists.iso'), '/ks.cfg'), KS, 'force replaces')
})

t.test('abort while writing leaves no file behind', async (t) => {
  const dir = t.testdir()
  const p = join(dir, 'payload')
  await mkdir(p)
  await writeFile(join(p, 'big.bin'), '')
  await truncate(join(p, 'big.bin'), 3 * 1024 ** 3) // sparse: costs no disk to read
  const out = join(dir, 'o.iso')
  const ac = new AbortController()
  let progressed = false
  await t.rejects(
    buildOemdrv({
      ksText: KS,
      payloadDir: p,
      outFile: out,
      epoch: EPOCH,
      signal: ac.signal,
      onProgress: (x) => {
        if (!progressed && x.percent < 100) {
          progressed = true
          ac.abort()
        }
      },
    }),
  )
  t.ok(progressed, 'aborted mid-write')
  t.same(await readdir(dir), ['payload'], 'no output, no temp file')
})

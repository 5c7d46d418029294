// remasterIso against the RHEL-8.10-shaped fixture ISO: what lands on the
// medium, checked with xorriso and mtools as a user would; refusals; bytes.
import t from 'tap'
import { mkdir, readFile, readdir, rename, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { remasterIso } from '../builder/media/iso.js'
import { hashedWhileWritten } from '../builder/hash.js'
import { buildOemdrv } from '../builder/media/oemdrv.js'
import { checkFreeSpace, freeBytes } from '../builder/media/common.js'
import { UserError } from '../builder/errors.js'
import { mtype } from '../builder/tools/mtools.js'
import { run } from '../builder/exec.js'
import { FIXTURE_VOLID, buildFixtureIso, fixtureIso, listIso, readIsoFile } from './helpers/fixture-iso.js'

const KS = '#version=RHEL8 mirror-appliance test\ntext\neula --agreed\ncdrom\nreboot --eject\n'
const EPOCH = 1700000000
const KSARG = 'inst.ks=hd:LABEL=RHEL-8-10-0-BaseOS-x86_64:/ks.cfg'

async function payload(dir: string): Promise<string> {
  const p = join(dir, 'payload')
  await mkdir(join(p, 'oci'), { recursive: true })
  await writeFile(join(p, 'oci', 'index.json'), '{"schemaVersion":2}\n')
  await writeFile(join(p, 'blob.bin'), Buffer.alloc(3 * 1024 * 1024, 1))
  return p
}

t.test('remastered ISO: ks.cfg, payload, patched menus in all three places, boot setup replayed', async (t) => {
  const base = await fixtureIso()
  const dir = t.testdir()
  const out = join(dir, 'out.iso')
  const progress: number[] = []
  const r = await remasterIso({
    baseIso: base,
    outFile: out,
    ksText: KS,
    payloadDir: await payload(dir),
    epoch: EPOCH,
    onProgress: (p) => progress.push(p.percent),
  })
  t.equal(r.volumeId, FIXTURE_VOLID)
  t.equal(
    r.baseSha256,
    createHash('sha256')
      .update(await readFile(base))
      .digest('hex'),
  )
  t.equal(
    r.outSha256,
    createHash('sha256')
      .update(await readFile(out))
      .digest('hex'),
  )
  t.same(r.warnings, [])
  t.equal(progress.at(-1), 100)

  const pvd = await run('xorriso', ['-indev', out, '-pvd_info'])
  t.match(pvd.stdout, new RegExp(`^Volume Id\\s*:\\s*${FIXTURE_VOLID}\\s*$`, 'm'), 'volume id kept')
  t.equal(await readIsoFile(out, '/ks.cfg'), KS)
  const files = await listIso(out)
  t.equal(files.get('/appliance/oci/index.json'), 20)
  t.equal(files.get('/appliance/blob.bin'), 3 * 1024 * 1024)
  t.equal(files.get('/images/pxeboot/vmlinuz'), (await listIso(base)).get('/images/pxeboot/vmlinuz'), 'base files carried over')

  const iso = await readIsoFile(out, '/isolinux/isolinux.cfg')
  t.match(
    iso,
    new RegExp(
      `label linux\\n  menu default\\n.*\\n.*\\n  append initrd=initrd.img inst.stage2=hd:LABEL=${FIXTURE_VOLID} quiet ${KSARG}\\n`,
    ),
  )
  t.match(iso, /^timeout 50$/m)
  const grub = await readIsoFile(out, '/EFI/BOOT/grub.cfg')
  t.match(grub, /^set default="0"$/m)
  t.match(grub, /^set timeout=5$/m)
  t.match(grub, new RegExp(`linuxefi /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=${FIXTURE_VOLID} quiet ${KSARG}`))
  t.match(grub, /rd\.live\.check/, 'media check kept')

  // The ESP copy inside efiboot.img: UEFI from USB reads this one; a boot under OVMF from CD does not prove it.
  const img = join(dir, 'efiboot.img')
  await run('xorriso', ['-osirrox', 'on', '-indev', out, '-extract', '/images/efiboot.img', img])
  t.equal(await mtype(img, '/EFI/BOOT/grub.cfg'), grub, 'efiboot.img grub.cfg = ISO grub.cfg')
  const label = await run('mlabel', ['-i', img, '-s', '::'], { env: { MTOOLS_SKIP_CHECK: '1' } })
  t.match(label.stdout, /ANACONDA/, 'ESP label kept')

  // El Torito + hybrid MBR/GPT replayed, the ESP partition pointing at the new efiboot.img
  const rep = await run('xorriso', ['-indev', out, '-report_el_torito', 'cmd', '-report_system_area', 'plain'])
  t.match(rep.stdout, /-boot_image isolinux bin_path='\/isolinux\/isolinux.bin'/)
  t.match(rep.stdout, /-boot_image any efi_path='\/images\/efiboot.img'/)
  t.match(rep.stdout, /-boot_image isolinux partition_entry=gpt_basdat/)
  t.match(rep.stdout, /MBR partition path :\s+2\s+\/images\/efiboot.img/)
  t.match(rep.stdout, /GPT partition path :\s+2\s+\/images\/efiboot.img/)
  t.match(rep.stdout, /System area summary: MBR isohybrid cyl-align-on GPT/)
})

t.test('reproducible: same inputs and epoch give the same bytes', async (t) => {
  const base = await fixtureIso()
  const dir = t.testdir()
  const p = await payload(dir)
  const a = await remasterIso({ baseIso: base, outFile: join(dir, 'a.iso'), ksText: KS, payloadDir: p, epoch: EPOCH })
  await new Promise((r) => setTimeout(r, 1100))
  const b = await remasterIso({ baseIso: base, outFile: join(dir, 'b.iso'), ksText: KS, payloadDir: p, epoch: EPOCH })
  t.equal(a.outSha256, b.outSha256, 'same sha256')
  t.ok((await readFile(join(dir, 'a.iso'))).equals(await readFile(join(dir, 'b.iso'))), 'bit-identical')
  const c = await remasterIso({ baseIso: base, outFile: join(dir, 'c.iso'), ksText: KS + '# changed\n', payloadDir: p, epoch: EPOCH })
  t.not(c.outSha256, a.outSha256, 'kickstart is part of the image')
})

t.test('the base ISO is hashed once per file version when a hash cache is given', async (t) => {
  const dir = t.testdir()
  const base = join(dir, 'base.iso')
  await writeFile(base, await readFile(await fixtureIso()))
  const want = createHash('sha256')
    .update(await readFile(base))
    .digest('hex')
  const cache = join(dir, 'cache')
  const one = { baseIso: base, ksText: KS, epoch: EPOCH, hashCacheDir: cache, hashOutput: false }
  const a = await remasterIso({ ...one, outFile: join(dir, 'a.iso') })
  t.same([a.baseSha256, a.baseSha256Cached], [want, false], 'first build reads it')
  const b = await remasterIso({ ...one, outFile: join(dir, 'b.iso') })
  t.same([b.baseSha256, b.baseSha256Cached], [want, true], 'rebuild remembers it')
  t.ok((await readFile(join(dir, 'a.iso'))).equals(await readFile(join(dir, 'b.iso'))), 'same output either way')
  // A new copy of the same bytes is a new file version: hashed again, same result.
  await writeFile(base + '.new', await readFile(base))
  await rename(base + '.new', base)
  const c = await remasterIso({ ...one, outFile: join(dir, 'c.iso') })
  t.same([c.baseSha256, c.baseSha256Cached], [want, false], 'replaced file is read again')
})

t.test('a rebuild hashes the output while xorriso writes it: the head of the last output is in the cache', async (t) => {
  const dir = t.testdir()
  const base = await fixtureIso()
  const cache = join(dir, 'cache')
  const sha256 = async (f: string) =>
    createHash('sha256')
      .update(await readFile(f))
      .digest('hex')
  const build = async (name: string) => {
    await mkdir(join(dir, name))
    const outFile = join(dir, name, 'appliance.iso')
    const r = await remasterIso({ baseIso: base, outFile, ksText: KS, epoch: EPOCH, hashCacheDir: cache })
    return { outFile, r, whileWritten: await hashedWhileWritten(outFile) }
  }
  const first = await build('first')
  t.equal(first.whileWritten, null, 'first build: no head to start from, the output is read back')
  t.equal(first.r.outSha256, await sha256(first.outFile))
  const again = await build('again')
  t.equal(again.whileWritten?.sha256, await sha256(again.outFile), 'rebuild: hashed while written, and right')
  t.equal(again.r.outSha256, again.whileWritten?.sha256)

  // A remembered head that is not the one the output gets is never trusted.
  const [entry] = await readdir(join(cache, 'iso-heads'))
  await writeFile(join(cache, 'iso-heads', entry!), Buffer.alloc(64 * 1024, 0xaa))
  const wrong = await build('wrong')
  t.equal(wrong.whileWritten, null, 'a wrong head: nothing taken from the follower')
  t.equal(wrong.r.outSha256, await sha256(wrong.outFile), 'the output read back instead')
  t.ok(
    (await readFile(join(cache, 'iso-heads', entry!))).equals((await readFile(wrong.outFile)).subarray(0, 64 * 1024)),
    'and the real head remembered',
  )
})

t.test('refusals are UserErrors naming the problem, and leave nothing behind', async (t) => {
  const dir = t.testdir({ 'junk.iso': 'not an iso at all '.repeat(4000) })
  const out = join(dir, 'out.iso')
  const opts = { outFile: out, ksText: KS, epoch: EPOCH }
  await t.rejects(
    remasterIso({ ...opts, baseIso: join(dir, 'missing.iso') }),
    new UserError(`base ISO ${join(dir, 'missing.iso')} does not exist`),
  )
  await t.rejects(remasterIso({ ...opts, baseIso: dir }), /is not a file/)
  await t.rejects(remasterIso({ ...opts, baseIso: join(dir, 'junk.iso') }), /is not an ISO 9660 image/)

  const oem = join(dir, 'oemdrv.iso')
  await buildOemdrv({ ksText: KS, outFile: oem, epoch: EPOCH })
  await t.rejects(
    remasterIso({ ...opts, baseIso: oem }),
    /does not have the RHEL installer layout: missing \/isolinux\/isolinux.cfg, \/EFI\/BOOT\/grub.cfg, \/images\/efiboot.img/,
  )

  const rhel9 = join(dir, 'rhel9.iso')
  await buildFixtureIso(rhel9, { volumeId: 'RHEL-9-4-0-BaseOS-x86_64' })
  const e = await remasterIso({ ...opts, baseIso: rhel9 }).catch((x: unknown) => x)
  t.ok(e instanceof UserError, 'UserError')
  t.match((e as Error).message, /says RHEL 9; only RHEL 8 is supported \(use force/)
  const forced = await remasterIso({ ...opts, baseIso: rhel9, force: true })
  t.equal(forced.volumeId, 'RHEL-9-4-0-BaseOS-x86_64', 'force accepts it')
  t.match(
    await readIsoFile(out, '/EFI/BOOT/grub.cfg'),
    /inst\.ks=hd:LABEL=RHEL-9-4-0-BaseOS-x86_64:\/ks\.cfg/,
    'labels follow the volume id',
  )
  await t.rejects(remasterIso({ ...opts, baseIso: rhel9, force: false }), /already exists/, 'existing output refused without force')

  await t.rejects(
    remasterIso({ ...opts, outFile: join(dir, 'x.iso'), baseIso: await fixtureIso(), payloadDir: join(dir, 'nope') }),
    /payload directory .* does not exist/,
  )
  t.same((await readdir(dir)).sort(), ['junk.iso', 'oemdrv.iso', 'out.iso', 'rhel9.iso'], 'no temp files')
})

t.test('free space check', async (t) => {
  const dir = t.testdir()
  const free = await freeBytes(dir)
  await t.resolves(checkFreeSpace(dir, 1024, 'x'))
  await t.rejects(
    checkFreeSpace(dir, free + 1024 ** 3, 'out.iso'),
    /not enough free space in .* for out.iso: need about \d+ MiB, \d+ MiB free/,
  )
})

t.test('abort mid-write leaves no output', async (t) => {
  const dir = t.testdir()
  const p = join(dir, 'payload')
  await mkdir(p)
  await writeFile(join(p, 'big.bin'), '')
  await truncate(join(p, 'big.bin'), 3 * 1024 ** 3)
  const ac = new AbortController()
  let aborted = false
  await t.rejects(
    remasterIso({
      baseIso: await fixtureIso(),
      outFile: join(dir, 'o.iso'),
      ksText: KS,
      payloadDir: p,
      epoch: EPOCH,
      signal: ac.signal,
      onProgress: (x) => {
        if (!aborted && x.percent < 100) {
          aborted = true
          ac.abort()
        }
      },
    }),
  )
  t.ok(aborted)
  t.same(await readdir(dir), ['payload'])
})

// A real > 4 GiB file costs ~45 s of disk writing here, so it only runs on request.
t.test(
  'payload file over 4 GiB (ISO level 3)',
  { skip: !process.env.MIRROR_APPLIANCE_SLOW_TESTS && 'set MIRROR_APPLIANCE_SLOW_TESTS=1' },
  async (t) => {
    const dir = t.testdir()
    const p = join(dir, 'payload')
    await mkdir(p)
    const size = Math.floor(4.1 * 1024 ** 3) // a whole number of bytes, over 4 GiB
    await writeFile(join(p, 'huge.bin'), '')
    await truncate(join(p, 'huge.bin'), size)
    const out = join(dir, 'o.iso')
    await remasterIso({ baseIso: await fixtureIso(), outFile: out, ksText: KS, payloadDir: p, epoch: EPOCH })
    t.equal((await listIso(out)).get('/appliance/huge.bin'), size)
    t.ok((await stat(out)).size > size)
  },
)

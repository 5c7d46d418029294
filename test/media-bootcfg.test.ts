// Golden pairs: the RHEL 8.10 menus from the fixture and what the remaster makes of them.
// Refresh after a reviewed change: UPDATE_GOLDEN=1 npx tap test/media-bootcfg.test.ts
import t, { type Test } from 'tap'
import { readFile } from 'node:fs/promises'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { majorFromVolumeId, patchGrubCfg, patchIsolinuxCfg, udevEscape, ksArg } from '../builder/media/bootcfg.js'
import { golden as checkGolden } from './helpers/golden.js'

const DIR = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'fixture-iso')
const VOLID = 'RHEL-8-10-0-BaseOS-x86_64'
const EDIT = { volumeId: VOLID, ksPath: '/ks.cfg' }

const golden = (t: Test, name: string, actual: string) => checkGolden(t, join(DIR, 'expected', name), actual, `expected/${name}`)

t.test("udevEscape follows udev's whitelist", async (t) => {
  const cases: Array<[string, string]> = [
    [VOLID, VOLID],
    ['RHEL-8.6 Server.x86_64', 'RHEL-8.6\\x20Server.x86_64'],
    ['a/b(c)', 'a\\x2fb\\x28c\\x29'],
    ["it's", 'it\\x27s'],
    ['#+.:=@_-', '#+.:=@_-'],
  ]
  for (const [i, o] of cases) t.equal(udevEscape(i), o, i)
})

t.test('isolinux.cfg: inst.ks on install entries, plain install default, 5 s', async (t) => {
  const r = patchIsolinuxCfg(await readFile(join(DIR, 'isolinux.cfg'), 'utf8'), EDIT)
  golden(t, 'isolinux.cfg.result', r.text)
  t.equal(r.defaultEntry, 'linux')
  t.equal(r.patchedEntries, 3, 'linux, check and basic graphics; not rescue')
  t.match(r.text, /^timeout 50$/m)
  t.equal(r.text.match(/menu default/g)?.length, 1, 'exactly one default')
  t.match(r.text, /label check\n.*\n\s+kernel vmlinuz\n\s+append .*rd\.live\.check/, 'media check kept')
  t.notMatch(r.text, /inst\.rescue.*inst\.ks/, 'rescue entry untouched')
  t.equal(patchIsolinuxCfg(r.text, EDIT).text, r.text, 'idempotent: patching twice changes nothing')
})

t.test('grub.cfg: inst.ks on install entries, entry 0 default, 5 s, search label', async (t) => {
  const r = patchGrubCfg(await readFile(join(DIR, 'grub.cfg'), 'utf8'), EDIT)
  golden(t, 'grub.cfg.result', r.text)
  t.equal(r.defaultEntry, '0')
  t.equal(r.patchedEntries, 3)
  t.match(r.text, /^set default="0"$/m)
  t.match(r.text, /^set timeout=5$/m)
  t.match(r.text, /^search --no-floppy --set=root -l 'RHEL-8-10-0-BaseOS-x86_64'$/m)
  t.equal(patchGrubCfg(r.text, EDIT).text, r.text, 'idempotent')
})

t.test('an existing inst.ks is replaced, a different label is made consistent', async (t) => {
  const cfg = 'label linux\n  append initrd=initrd.img inst.stage2=hd:LABEL=OLD inst.ks=http://x/ks.cfg quiet\n'
  const r = patchIsolinuxCfg(cfg, { volumeId: 'My Label', ksPath: '/ks.cfg' })
  t.equal(
    r.text,
    'label linux\n  menu default\n  append initrd=initrd.img inst.stage2=hd:LABEL=My\\x20Label quiet inst.ks=hd:LABEL=My\\x20Label:/ks.cfg\n',
  )
  const g = patchGrubCfg(
    "set default=\"1\"\nsearch --no-floppy --set=root -l 'OLD'\nmenuentry 'x' {\n\tlinuxefi /v inst.stage2=hd:LABEL=OLD\n}\n",
    { volumeId: "My 'Label'", ksPath: '/ks.cfg' },
  )
  t.match(g.text, /-l 'My '\\''Label'\\'''/, 'grub quoting of the real (unescaped) label')
  t.match(g.text, /inst\.stage2=hd:LABEL=My\\x20\\x27Label\\x27 inst\.ks=hd:LABEL=My\\x20\\x27Label\\x27:\/ks\.cfg/)
  t.equal(ksArg({ volumeId: VOLID, ksPath: '/ks.cfg' }), 'inst.ks=hd:LABEL=RHEL-8-10-0-BaseOS-x86_64:/ks.cfg')
})

t.test('a menu with no installer entry is reported, not invented', async (t) => {
  const r = patchIsolinuxCfg('default local\nlabel local\n  localboot 0xffff\n', EDIT)
  t.equal(r.patchedEntries, 0)
  t.equal(r.defaultEntry, null)
  const g = patchGrubCfg('set default="0"\nmenuentry "x" {\n\tchainloader /x\n}\n', EDIT)
  t.equal(g.patchedEntries, 0)
  t.match(g.text, /set default="0"/, 'default untouched when no install entry')
})

t.test('major release from volume ids', async (t) => {
  const cases: Array<[string, number | null]> = [
    ['RHEL-8-10-0-BaseOS-x86_64', 8],
    ['RHEL-8.6 Server.x86_64', 8],
    ['RHEL-9-4-0-BaseOS-x86_64', 9],
    ['RHEL-10-0-BaseOS-x86_64', 10],
    ['Rocky-8-10-x86_64-dvd', 8],
    ['AlmaLinux-8-10-x86_64-dvd', 8],
    ['CentOS-Stream-8-x86_64-dvd', 8],
    ['Fedora-S-dvd-x86_64-40', null],
    ['ISOIMAGE', null],
    ['debian 12.5.0 amd64 n', null],
  ]
  for (const [v, m] of cases) t.equal(majorFromVolumeId(v), m, v)
})

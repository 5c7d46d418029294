// Pure argv builders and output parsers of the media tools, against real
// recorded tool output; and every module that runs a tool declares it, so
// the build's check and `doctor` (which read only the declarations) see it.
import t from 'tap'
import ts from 'typescript'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join, dirname, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  PACIFIER_INTERVAL,
  parseImageSectors,
  parseIsoInfo,
  parseXorrisoProgress,
  xorrisoExtractArgs,
  xorrisoInspectArgs,
  xorrisoPacifierInterval,
  xorrisoTimestring,
  xorrisoWriteArgs,
} from '../builder/tools/xorriso.js'
import { run } from '../builder/exec.js'
import { mcopyArgs, mdirArgs, mtypeArgs } from '../builder/tools/mtools.js'
import { qemuArgs, qemuEscape } from '../builder/tools/qemu.js'
import { checkBaseIso } from '../builder/media/iso.js'
import { progressMeter } from '../builder/media/common.js'
import { DOCTOR_TOOL_USES } from '../builder/commands/doctor.js'
import type { ToolNeed } from '../builder/tool-needs.js'

const EXP = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'fixture-iso', 'expected')

t.test('xorrisoTimestring', async (t) => {
  t.equal(xorrisoTimestring(0), '1970010100000000')
  t.equal(xorrisoTimestring(1700000000), '2023111422132000')
  t.throws(() => xorrisoTimestring(-1))
  t.throws(() => xorrisoTimestring(1.5))
})

t.test('xorrisoWriteArgs', async (t) => {
  const pinned = [
    '-volume_date',
    'uuid',
    '2023111422132000',
    '-volume_date',
    'all_file_dates',
    '=1700000000',
    '-iso_nowtime',
    '=1700000000',
    '-boot_image',
    'any',
    'gpt_disk_guid=volume_date_uuid',
    '-commit',
  ]
  const owners = ['-chown_r', '0', '/', '--', '-chgrp_r', '0', '/', '--']
  const head = ['-pkt_output', 'on', '-abort_on', 'FAILURE', '-return_with', 'SORRY', '32']
  const cases: Array<[string, Parameters<typeof xorrisoWriteArgs>[0], string[]]> = [
    [
      'new ISO',
      { outFile: 'o.iso', volumeId: 'OEMDRV', epoch: 1700000000, maps: [{ from: 'ks.cfg', to: '/ks.cfg' }] },
      [
        ...head,
        '-outdev',
        'o.iso',
        '-volid',
        'OEMDRV',
        '-joliet',
        'on',
        '-rockridge',
        'on',
        '-compliance',
        'iso_9660_level=3',
        '-map',
        'ks.cfg',
        '/ks.cfg',
        ...owners,
        ...pinned,
      ],
    ],
    [
      'remaster keeps the volid and replays boot',
      { indev: 'in.iso', outFile: 'o.iso', epoch: 1700000000, bootReplay: true, maps: [{ from: 'p', to: '/appliance' }] },
      [
        ...head,
        '-indev',
        'in.iso',
        '-outdev',
        'o.iso',
        '-boot_image',
        'any',
        'replay',
        '-joliet',
        'on',
        '-rockridge',
        'on',
        '-compliance',
        'iso_9660_level=3',
        '-map',
        'p',
        '/appliance',
        ...owners,
        ...pinned,
      ],
    ],
    [
      'level 2, no packets',
      { outFile: 'o', volumeId: 'X', epoch: 1700000000, isoLevel: 2, pktOutput: false },
      [
        ...head.slice(2),
        '-outdev',
        'o',
        '-volid',
        'X',
        '-joliet',
        'on',
        '-rockridge',
        'on',
        '-compliance',
        'iso_9660_level=2',
        ...owners,
        ...pinned,
      ],
    ],
  ]
  for (const [name, o, argv] of cases) t.same(xorrisoWriteArgs(o), argv, name)
  t.same(xorrisoWriteArgs({ outFile: 'o', volumeId: 'X', epoch: 1700000000, pacifierInterval: 0.1 }).slice(0, 4), [
    '-pkt_output',
    'on',
    '-pacifier',
    'interval=0.1',
  ])
  t.throws(() => xorrisoWriteArgs({ outFile: 'o', epoch: 1 }), /volumeId/)
  t.same(
    xorrisoExtractArgs('i.iso', [
      ['/a', 'x'],
      ['/b', 'y'],
    ]),
    ['-abort_on', 'FAILURE', '-osirrox', 'on', '-indev', 'i.iso', '-extract', '/a', 'x', '-extract', '/b', 'y'],
  )
  t.same(xorrisoInspectArgs('i.iso').slice(0, 4), ['-abort_on', 'FAILURE', '-indev', 'i.iso'])
})

t.test('this xorriso takes -pacifier interval= (checked once, by asking it)', async (t) => {
  t.equal(await xorrisoPacifierInterval(), PACIFIER_INTERVAL, "Debian 12's xorriso 1.5.4 accepts it")
  const wrong = await run('xorriso', ['-abort_on', 'FAILURE', '-return_with', 'SORRY', '32', '-pacifier', 'nonsense=1', '-version'], {
    nothrow: true,
  })
  t.equal(wrong.code, 32, 'and an unknown pacifier code is refused the way the probe expects')
})

t.test('progress lines from a real xorriso write', async (t) => {
  const text = await readFile(join(EXP, 'xorriso-write-output.txt'), 'utf8')
  const ps = text
    .split('\n')
    .map(parseXorrisoProgress)
    .filter((p) => p !== null)
  t.same(ps, [
    { sectors: 18576, percent: 12.1 },
    { sectors: 109936, percent: 71.5 },
  ])
  t.equal(parseImageSectors(text), 153630)
  t.equal(parseXorrisoProgress('I:1: xorriso : UPDATE :       1 files added in 1 seconds'), null)
  let now = 1000
  const seen: unknown[] = []
  const meter = progressMeter(
    (p) => seen.push(p),
    () => now,
  )
  now = 3000
  meter({ sectors: 109936, percent: 71.5 })
  t.same(seen, [{ percent: 71.5, bytesWritten: 225148928, mbPerSec: 112.57 }], 'MB/s from sectors over time')
})

t.test('parseIsoInfo on real xorriso output', async (t) => {
  const info = parseIsoInfo(await readFile(join(EXP, 'inspect-output.txt'), 'utf8'))
  t.equal(info.volumeId, 'RHEL-8-10-0-BaseOS-x86_64')
  t.ok(info.bootCommands.includes("-boot_image any efi_path='/images/efiboot.img'"))
  t.ok(info.bootCommands.includes("-boot_image isolinux bin_path='/isolinux/isolinux.bin'"))
  t.same(
    info.files.find((f) => f.path === '/EFI/BOOT/grub.cfg'),
    { path: '/EFI/BOOT/grub.cfg', size: 1419 },
  )
  t.equal(info.files.length, 17)
  t.same(checkBaseIso(info, false).problems, [])
  t.same(checkBaseIso({ ...info, volumeId: 'RHEL-9-4-0-BaseOS-x86_64' }, false).problems, [
    "its volume id 'RHEL-9-4-0-BaseOS-x86_64' says RHEL 9; only RHEL 8 is supported (use force to try anyway)",
  ])
  t.same(checkBaseIso({ ...info, volumeId: 'RHEL-9-4-0-BaseOS-x86_64' }, true).problems, [], 'force')
  // xorriso on a file that is no ISO: exit 0, a blank image called ISOIMAGE
  const junk = parseIsoInfo(await readFile(join(EXP, 'xorriso-not-an-iso.txt'), 'utf8'))
  t.equal(junk.volumeId, 'ISOIMAGE')
  t.same(checkBaseIso(junk, false).problems, [
    'it does not have the RHEL installer layout: missing /isolinux/isolinux.cfg, /EFI/BOOT/grub.cfg, /images/efiboot.img',
    "cannot tell the RHEL release from its volume id 'ISOIMAGE' (use force to try anyway)",
  ])
  t.same(
    parseIsoInfo("-rw-r--r--    1 0        0              5 May 22  2024 '/it'\"'\"'s'\n").files,
    [{ path: "/it's", size: 5 }],
    'quoted names',
  )
})

t.test('mtools argv', async (t) => {
  t.same(mcopyArgs({ image: 'e.img', from: 'g.cfg', to: '::/EFI/BOOT/grub.cfg', overwrite: true, preserveTime: true }), [
    '-i',
    'e.img',
    '-o',
    '-m',
    '-n',
    '-Q',
    'g.cfg',
    '::/EFI/BOOT/grub.cfg',
  ])
  t.same(mcopyArgs({ image: 'e.img', from: '::/a', to: 'b' }), ['-i', 'e.img', '-n', '-Q', '::/a', 'b'])
  t.same(mtypeArgs('e.img', '/EFI/BOOT/grub.cfg'), ['-i', 'e.img', '::/EFI/BOOT/grub.cfg'])
  t.same(mdirArgs('e.img'), ['-i', 'e.img', '-/', '-b', '::/'])
})

t.test('qemu argv', async (t) => {
  t.equal(qemuEscape('a,b'), 'a,,b')
  const base = [
    '-accel',
    'tcg',
    '-m',
    '512',
    '-smp',
    '1',
    '-nographic',
    '-monitor',
    'none',
    '-serial',
    'file:s.log',
    '-nic',
    'none',
    '-no-reboot',
  ]
  t.same(
    qemuArgs({
      firmware: 'bios',
      drives: [
        { file: 'x,1.iso', kind: 'cdrom', readonly: true },
        { file: 'o.iso', kind: 'cdrom' },
      ],
      serialLog: 's.log',
    }),
    [
      ...base,
      '-drive',
      'if=none,id=cd0,media=cdrom,format=raw,file=x,,1.iso,readonly=on',
      '-device',
      'ide-cd,drive=cd0,bus=ide.0,unit=0,bootindex=0',
      '-drive',
      'if=none,id=cd1,media=cdrom,format=raw,file=o.iso',
      '-device',
      'ide-cd,drive=cd1,bus=ide.0,unit=1,bootindex=1',
    ],
  )
  t.same(qemuArgs({ firmware: 'uefi', ovmfVars: 'v.fd', drives: [{ file: 'x.iso', kind: 'usb', readonly: true }], serialLog: 's.log' }), [
    ...base,
    '-drive',
    'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
    '-drive',
    'if=pflash,format=raw,unit=1,file=v.fd',
    '-device',
    'qemu-xhci,id=xhci',
    '-drive',
    'if=none,id=usb0,format=raw,file=x.iso,readonly=on',
    '-device',
    'usb-storage,bus=xhci.0,drive=usb0,bootindex=0',
  ])
  t.throws(() => qemuArgs({ firmware: 'uefi', drives: [], serialLog: 's' }), /ovmfVars/)
})

const BUILDER = fileURLToPath(new URL('../builder/', import.meta.url))

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** Programs a module names literally in a call of the exec wrapper: run('xorriso', …), requireTool('qemu-img', …). */
function toolsRunIn(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/\b(?:run|requireTool|findTool|toolVersion)\(\s*'([^']+)'/g)].map((m) => m[1]!)
}

/** The builder/tools/ wrappers a module imports values from (type-only imports run nothing). */
function wrappersImportedBy(file: string): string[] {
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest)
  const out: string[] = []
  for (const st of src.statements) {
    if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier)) continue
    const clause = st.importClause
    const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : undefined
    if (clause?.isTypeOnly || (named && !clause?.name && named.every((e) => e.isTypeOnly))) continue
    const target = join(dirname(file), st.moduleSpecifier.text.replace(/\.js$/, '.ts'))
    if (target.startsWith(join(BUILDER, 'tools') + '/')) out.push(target)
  }
  return out
}

const isNeed = (v: unknown): v is ToolNeed =>
  typeof v === 'object' && v !== null && typeof (v as ToolNeed).tool === 'string' && typeof (v as ToolNeed).for === 'string'

t.test('every module that runs a tool declares it, and doctor lists each declaration', async (t) => {
  const listed = new Set(DOCTOR_TOOL_USES.flatMap((u) => u.needs))
  const runners = sources(BUILDER).filter((f) => !f.startsWith(join(BUILDER, 'tools') + '/') && f !== join(BUILDER, 'exec.ts'))
  let checked = 0
  for (const file of runners) {
    const runs = new Set([...toolsRunIn(file), ...wrappersImportedBy(file).flatMap(toolsRunIn)])
    if (!runs.size) continue
    checked++
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>
    const declared = Object.values(mod)
      .filter((v): v is unknown[] => Array.isArray(v) && v.length > 0 && v.every(isNeed))
      .flat() as ToolNeed[]
    const rel = relative(BUILDER, file)
    t.same(
      [...runs].filter((tool) => !declared.some((n) => n.tool === tool)),
      [],
      `${rel} runs ${[...runs].join(', ')}: each declared`,
    )
    t.same(
      declared.filter((n) => !listed.has(n)).map((n) => n.tool),
      [],
      `${rel}: doctor lists its declarations`,
    )
  }
  // media/oemdrv, iso, pxe, qcow2, qcow2-install, vm and payload/fetch at least
  t.ok(checked >= 7, `${checked} modules run tools`)
})

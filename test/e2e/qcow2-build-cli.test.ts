// build --qcow2 --base-image through the CLI: the plan's host files end up in
// the disk image, the base is untouched, and the VM definition names the
// final path (not the build's temp directory).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.js'
import { fixtureQcow2 } from '../helpers/fixture-qcow2.js'

const sha = (f: string) => spawnSync('sha256sum', [f], { encoding: 'utf8' }).stdout.split(' ')[0]

t.test('build --qcow2 --base-image', { timeout: 600_000 }, async (t) => {
  const base = await fixtureQcow2()
  const before = sha(base)
  const d = mkdtempSync(join(tmpdir(), 'ma-qcow2-'))
  const cfg = join(d, 'appliance.yaml')
  writeFileSync(
    cfg,
    'apiVersion: mirror-appliance/v1\nhost:\n  disk: {device: vda}\nregistry:\n  flavor: distribution\noutputs:\n  oemdrv: false\n  qcow2: {sizeGiB: 10}\n',
  )
  const env = {
    MIRROR_APPLIANCE_CACHE: join(d, 'cache'),
    SOURCE_DATE_EPOCH: '1700000000',
    LIBGUESTFS_BACKEND: 'direct',
    LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg',
  }

  const noBase = await runCli(['build', '-c', cfg, '-o', join(d, 'x'), '--qcow2', '--allow-missing'], { env })
  t.equal(noBase.code, 2)
  // a config diagnostic at the file's outputs.qcow2 (the --qcow2 flag adds nothing to a section the file has)
  t.match(noBase.stderr, /appliance\.yaml:8:10 outputs\.qcow2: a qcow2 needs either a RHEL 8 KVM guest image/)

  const out = join(d, 'dist')
  const r = await runCli(['build', '-c', cfg, '-o', out, '--qcow2', '--base-image', base, '--allow-missing'], { env })
  t.equal(r.code, 0, r.stderr)
  t.ok(existsSync(join(out, 'appliance.qcow2')))
  t.equal(sha(base), before, 'the base image is unchanged')
  const xml = readFileSync(join(out, 'appliance.xml'), 'utf8')
  t.match(xml, `<source file="${join(out, 'appliance.qcow2')}"/>`)
  const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { outputs: { path: string; sha256: string }[] }
  t.equal(m.outputs.find((o) => o.path === 'appliance.qcow2')?.sha256, sha(join(out, 'appliance.qcow2')))

  // The registry unit and the first-boot unit from the plan are in the image, enabled.
  const gf = spawnSync(
    'guestfish',
    [
      '--ro',
      '--format=qcow2',
      '-a',
      join(out, 'appliance.qcow2'),
      '-i',
      'cat',
      '/etc/containers/systemd/registry.container',
      ':',
      'readlink',
      '/etc/systemd/system/multi-user.target.wants/mirror-appliance-firstboot.service',
    ],
    { encoding: 'utf8', env: { ...process.env, ...env } },
  )
  t.equal(gf.status, 0, gf.stderr)
  const rendered = readFileSync(join(out, 'host/rootfs/etc/containers/systemd/registry.container'), 'utf8')
  t.ok(gf.stdout.startsWith(rendered), 'the unit in the image is the one rendered, byte for byte')
  t.match(gf.stdout, /\/etc\/systemd\/system\/mirror-appliance-firstboot\.service$/m, 'first boot is armed')
})

t.test('build --qcow2 --iso: installs in QEMU with a kickstart that powers off', { timeout: 600_000 }, async (t) => {
  const { fixtureIso } = await import('../helpers/fixture-iso.js')
  const iso = await fixtureIso()
  const d = mkdtempSync(join(tmpdir(), 'ma-qcow2i-'))
  const cfg = join(d, 'appliance.yaml')
  writeFileSync(cfg, 'apiVersion: mirror-appliance/v1\nhost:\n  disk: {device: vda}\noutputs:\n  oemdrv: false\n  qcow2: {sizeGiB: 10}\n')
  const out = join(d, 'dist')
  // The fixture's installer finds the kickstart, prints it and powers off: the
  // whole path runs, only Anaconda itself is a stand-in.
  const r = await runCli(['build', '-c', cfg, '-o', out, '--qcow2', '--iso', iso, '--allow-missing', '-v'], {
    env: { MIRROR_APPLIANCE_CACHE: join(d, 'cache'), SOURCE_DATE_EPOCH: '1700000000', MIRROR_APPLIANCE_INSTALL_TIMEOUT_MIN: '5' },
  })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, /install: .*KS-FOUND: # Kickstart for RHEL 8\.10/, 'the installer found our kickstart')
  t.match(r.stderr, /install: .*inst\.ks=hd:LABEL=RHEL-8-10-0-BaseOS-x86_64:\/ks\.cfg/)
  t.ok(existsSync(join(out, 'appliance.qcow2')))
  t.ok(existsSync(join(out, 'appliance.iso')), 'the remastered ISO is built too')
})

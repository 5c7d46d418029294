// A small bootable Linux qcow2 standing in for the RHEL 8 KVM guest image (no
// Red Hat content exists here): a GPT disk with one XFS root partition holding
// a busybox userland, a tiny /sbin/init that reports on the serial port, and
// the files our image editing reads from a real RHEL image: /etc/passwd and
// /etc/group (with a non-root user), /etc/fstab, /etc/cloud, firewalld's
// default public zone, a unit that is enabled (to disable) and one that is
// not (to enable). Built with guestfish itself in one session and cached
// (the key covers every input), like the fixture ISO.

import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { run } from '../../builder/exec.js'
import { GuestfishSession, gfLine } from '../../builder/tools/guestfish.js'
import { createImage } from '../../builder/tools/qemu-img.js'
import { FIXTURE_EPOCH, testCacheDir } from './fixture-iso.js'

/** Bump when the recipe changes. */
const RECIPE = 1
export const FIXTURE_QCOW2_BYTES = 512 * 1024 * 1024
export const FIXTURE_ROOT_LABEL = 'fixroot'
/** The init prints this on ttyS0 once the root file system is up. */
export const BOOT_MARKER = 'FIXTURE-QCOW2-BOOTED'

const APPLETS = ['sh', 'mount', 'cat', 'echo', 'ls', 'stat', 'readlink', 'poweroff', 'sleep', 'mkdir', 'head', 'sync']

const INIT = `#!/bin/sh
# Stand-in for systemd: report what the appliance build laid in, power off.
export PATH=/bin
mount -t proc proc /proc 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec >/dev/ttyS0 2>&1
echo "${BOOT_MARKER}"
for u in /etc/systemd/system/multi-user.target.wants/*; do echo "WANTS: \${u##*/} -> $(readlink "$u")"; done
[ -f /etc/cloud/cloud-init.disabled ] && echo "CLOUD-INIT: disabled"
[ -f /var/lib/cloud/seed/nocloud/user-data ] && echo "CLOUD-INIT: nocloud seed"
[ -e /.autorelabel ] && echo "AUTORELABEL: yes"
ls /var/lib/mirror-appliance/payload 2>/dev/null | while read -r f; do echo "PAYLOAD: $f"; done
echo "FIXTURE-QCOW2-DONE"
sync
poweroff -f
`

const FILES: Record<string, string> = {
  'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nregistry:x:1001:1002:registry:/var/lib/registry:/sbin/nologin\n',
  'etc/group': 'root:x:0:\nwheel:x:10:\nregistry:x:1002:\n',
  'etc/shadow': 'root:*:19000:0:99999:7:::\nregistry:!!:19000::::::\n',
  'etc/fstab': `LABEL=${FIXTURE_ROOT_LABEL} / xfs defaults 0 0\n`,
  'etc/os-release': 'NAME="Fixture Linux"\nID=fixture\nVERSION_ID=8.10\nPRETTY_NAME="Fixture Linux 8.10 (stand-in for RHEL)"\n',
  'etc/hostname': 'localhost\n',
  'etc/cloud/cloud.cfg': 'users:\n  - default\n',
  'etc/firewalld/firewalld.conf': 'DefaultZone=public\n',
  'usr/lib/firewalld/zones/public.xml':
    '<?xml version="1.0" encoding="utf-8"?>\n<zone>\n  <short>Public</short>\n  <description>For use in public areas.</description>\n  <service name="ssh"/>\n  <service name="dhcpv6-client"/>\n  <service name="cockpit"/>\n</zone>\n',
  'usr/lib/systemd/system/kdump.service':
    '[Unit]\nDescription=Crash recovery kernel arming\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n',
  'usr/lib/systemd/system/chronyd.service':
    '[Unit]\nDescription=NTP client/server\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\nAlias=ntpd.service\n',
}

async function buildTree(root: string): Promise<void> {
  for (const d of ['bin', 'sbin', 'proc', 'sys', 'dev', 'tmp', 'root', 'var/lib', 'etc/systemd/system/multi-user.target.wants'])
    await mkdir(join(root, d), { recursive: true })
  await copyFile('/bin/busybox', join(root, 'bin/busybox'))
  await chmod(join(root, 'bin/busybox'), 0o755)
  for (const a of APPLETS) await symlink('busybox', join(root, 'bin', a))
  await writeFile(join(root, 'sbin/init'), INIT, { mode: 0o755 })
  for (const [p, text] of Object.entries(FILES)) {
    await mkdir(dirname(join(root, p)), { recursive: true })
    await writeFile(join(root, p), text, { mode: p === 'etc/shadow' ? 0o000 : 0o644 })
  }
  await symlink('/usr/lib/systemd/system/kdump.service', join(root, 'etc/systemd/system/multi-user.target.wants/kdump.service'))
}

async function cacheKey(): Promise<string> {
  const h = createHash('sha256')
  h.update(JSON.stringify({ RECIPE, FILES, INIT, APPLETS, FIXTURE_QCOW2_BYTES }))
  h.update(await readFile('/bin/busybox'))
  return h.digest('hex').slice(0, 16)
}

/** Build the fixture image at outFile (not cached): one guestfish session. */
export async function buildFixtureQcow2(outFile: string): Promise<void> {
  const work = await mkdtemp(join(dirname(outFile), '.fixture-qcow2-'))
  try {
    const root = join(work, 'root')
    await buildTree(root)
    const tarball = join(work, 'root.tar')
    const names = (await readdir(root)).sort()
    await run('tar', [
      '-C',
      root,
      '--sort=name',
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      `--mtime=@${FIXTURE_EPOCH}`,
      '-cf',
      tarball,
      ...names,
    ])
    const img = join(work, 'fixture.qcow2')
    await createImage(img, 'qcow2', FIXTURE_QCOW2_BYTES)
    const gf = await GuestfishSession.start({ drives: [{ file: img, format: 'qcow2' }], workDir: work })
    try {
      await gf.batch([
        gfLine('part-init', ['/dev/sda', 'gpt']),
        gfLine('part-add', ['/dev/sda', 'p', '2048', '-34']),
        gfLine('mkfs', ['xfs', '/dev/sda1'], { label: FIXTURE_ROOT_LABEL }),
        gfLine('mount', ['/dev/sda1', '/']),
        gfLine('tar-in', [tarball, '/']),
        gfLine('chmod', ['0755', '/']),
      ])
      await gf.close()
    } catch (e) {
      await gf.kill()
      throw e
    }
    await rename(img, outFile)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** Path of the cached fixture image, building it first if needed. Treat it as read-only. */
export async function fixtureQcow2(): Promise<string> {
  const dir = testCacheDir()
  await mkdir(dir, { recursive: true })
  const file = join(dir, `guest-fixture-${await cacheKey()}.qcow2`)
  if (!existsSync(file)) await buildFixtureQcow2(file)
  return file
}

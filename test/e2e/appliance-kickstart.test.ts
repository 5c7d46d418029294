// The kickstart route on the same guest as test/e2e/appliance-boot.test.ts.
// `build --oemdrv` (distribution flavor, the same config as the qcow2 route
// but for its outputs), then our generated ks.cfg, read from the built
// oemdrv.iso, applied to the Debian trixie guest's root the way Anaconda
// does after installing the packages (test/helpers/kickstart-apply.ts):
// the Anaconda commands that matter for a booted host, emulated and named;
// %post --nochroot with the new root at /mnt/sysimage and the OEMDRV medium
// (oemdrv.iso extracted with xorriso) as /dev/disk/by-label/OEMDRV in a
// private mount namespace; then the chrooted %post. Anaconda itself is not
// available here (no RHEL installer, no Red Hat content), and the Debian
// guest stands in for RHEL 8.
//
// The resulting root becomes the guest's disk (no cloud-init: the kickstart
// route has no seed), placed in the build directory as appliance.qcow2 with
// its sha256 in manifest.json: the disk Anaconda would have produced. Then
// `mirror-appliance vm DIST --wait` boots it and it must pass the same
// first-boot checks as the qcow2 route.
//
// Outside CI the test skips when a tool it needs is missing or unshare -m is
// not permitted; under CI=true it fails instead.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, existsSync, linkSync, copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { findTool, run } from '../../builder/exec.js'
import type { BuildManifest } from '../../builder/manifest.js'
import {
  bootAndWait,
  buildAppliance,
  checkContentFromHost,
  checkFirstBootDone,
  checkKickstartScrubbed,
  checkRegistryUnit,
  checkSshd,
  guest,
  HOSTNAME,
  stopVm,
} from '../helpers/appliance-vm.js'
import { GUEST_SHIMS } from '../helpers/guest-image.js'
import {
  BASE_GUEST_IS,
  CHROOT_SHIMS,
  EMULATED,
  INSTALLER_SHIMS,
  KICKSTART_GUEST_EDITS,
  kickstartGuestImage,
} from '../helpers/kickstart-apply.js'

const CI = process.env.CI === 'true'

// Longer than tap's per-file limit (package.json, 600 s): the guest image is
// shared with test/e2e/appliance-boot.test.ts, and when both files start
// together on a fresh machine this one waits for the other to build it (its
// lock in test/helpers/guest-image.ts) before its own build and boot under
// software emulation: on a slow machine all of it can take more than 600 s.
t.setTimeout(60 * 60_000)

async function missingPrerequisite(): Promise<string | null> {
  for (const tool of ['debootstrap', 'guestfish', 'qemu-system-x86_64', 'qemu-img', 'xorriso', 'unshare', 'chroot', 'ssh', 'skopeo']) {
    if (!(await findTool(tool))) return `${tool} is not installed`
  }
  if (spawnSync('unshare', ['-m', 'true']).status !== 0)
    return 'unshare -m is not permitted here (the %post scripts run in a private mount namespace)'
  return null
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256')
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject)
  })
}

const missing = await missingPrerequisite()
const skip = missing && !CI ? missing : false

t.test(
  'kickstart route, distribution flavor: ks.cfg from oemdrv.iso applied to the Debian trixie stand-in for RHEL 8 (Anaconda not available: its commands emulated), ' +
    'the disk is the root Anaconda would have produced, booted with vm --wait',
  { timeout: 3 * 3600_000, skip },
  async (t) => {
    if (missing) t.fail(`CI=true: ${missing}`)
    t.comment(
      'Anaconda is not available here: test/helpers/kickstart-apply.ts applies our ks.cfg as Anaconda does after installing the packages',
    )
    for (const e of EMULATED) t.comment(`emulated Anaconda command ${e.command}: ${e.how}`)
    t.comment(`left to the base guest, which is already installed, partitioned and bootable: ${BASE_GUEST_IS.join(', ')}, %packages`)
    for (const s of INSTALLER_SHIMS) t.comment(`installer shim ${s.name}: ${s.why}`)
    for (const s of CHROOT_SHIMS) t.comment(`chroot shim ${s.name}: ${s.why}`)
    for (const e of KICKSTART_GUEST_EDITS) t.comment(`kickstart guest: ${e.path}: ${e.why}`)

    const a = await buildAppliance(t, 'oemdrv')
    const iso = join(a.dist, 'oemdrv.iso')
    t.ok(existsSync(iso), 'build --oemdrv wrote oemdrv.iso')

    // The OEMDRV medium's content, as Anaconda would read it from the disc.
    const medium = join(a.dir, 'oemdrv')
    await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', medium], { why: 'to read the OEMDRV medium' })
    const ks = readFileSync(join(medium, 'ks.cfg'), 'utf8')
    t.match(
      ks,
      /^mount -o ro \/dev\/disk\/by-label\/OEMDRV "\$medium"$/m,
      'the kickstart mounts the OEMDRV medium itself (Anaconda has unmounted it by %post)',
    )
    t.ok(existsSync(join(medium, 'appliance/SHA256SUMS')), 'the payload is on the medium under /appliance')

    const t0 = Date.now()
    let img: { file: string; notes: string }
    try {
      img = await kickstartGuestImage(ks, { OEMDRV: medium })
    } catch (e) {
      t.fail(`the kickstart could not be applied to the guest: ${(e as Error).message}`)
      return
    }
    t.comment(`guest root with the kickstart applied, and its disk: ${Math.round((Date.now() - t0) / 1000)} s (${img.file})`)
    for (const l of img.notes.split('\n')) if (l.trim()) t.comment(`  ${l}`)
    t.match(
      img.notes,
      /payload copied to \/mnt\/sysimage\/var\/lib\/mirror-registry\/\.payload and verified/,
      '%post --nochroot copied the payload from OEMDRV and verified it',
    )
    t.match(img.notes, /mirror-appliance: host spec laid down/, 'the chrooted %post laid down the host spec')

    // The disk Anaconda would have produced, where `vm` boots it: appliance.qcow2 listed in manifest.json with its sha256.
    const disk = join(a.dist, 'appliance.qcow2')
    try {
      linkSync(img.file, disk)
    } catch {
      copyFileSync(img.file, disk)
    }
    const manifestFile = join(a.dist, 'manifest.json')
    const m = JSON.parse(readFileSync(manifestFile, 'utf8')) as BuildManifest
    m.outputs = [
      ...m.outputs.filter((o) => o.path !== 'appliance.qcow2'),
      { path: 'appliance.qcow2', size: statSync(disk).size, sha256: await sha256File(disk) },
    ]
    writeFileSync(manifestFile, JSON.stringify(m, null, 2) + '\n')

    const vm = await bootAndWait(t, a, 'kickstart route, first boot')
    checkFirstBootDone(t, a, vm, 'kickstart route')
    checkSshd(t, a, vm, 'kickstart route')
    checkKickstartScrubbed(t, a, vm, 'kickstart route')
    checkRegistryUnit(t, a, vm, 'kickstart route')
    checkContentFromHost(t, a, vm, 'kickstart route')

    // What the kickstart (and not cloud-init) made of the host.
    const facts = guest(
      a,
      vm,
      [
        'hostname',
        // the payload link pointed at the data volume; first boot laid the
        // registry's storage tree from it with hard links (one filesystem), then removed it
        "journalctl --no-pager -o cat -u mirror-appliance-firstboot -u mirror-appliance-firstboot-finish | grep -o -e 'payload removed ([^)]*)' -e 'blob(s) hard-linked from the payload, nothing pushed'",
        'test -e /etc/cloud/cloud-init.disabled && test ! -e /var/lib/cloud/instance && echo no-cloud-init',
        'id -nG admin',
        'tail -n1 /root/ks-post.log',
        'tail -n1 /root/ks-post-nochroot.log',
      ].join('; '),
    )
    t.same(
      facts.out.trim().split('\n'),
      [
        HOSTNAME,
        'blob(s) hard-linked from the payload, nothing pushed',
        'payload removed (/var/lib/mirror-registry/.payload)',
        'no-cloud-init',
        'admin wheel',
        'mirror-appliance: host spec laid down',
        'mirror-appliance: payload copied to /mnt/sysimage/var/lib/mirror-registry/.payload and verified',
      ],
      `the host is what the kickstart made it (hostname, content laid from the payload on the data volume, then the payload removed, no cloud-init run, the user in wheel, both %post logs): ${facts.err}`,
    )
    for (const s of GUEST_SHIMS) t.comment(`shim in the guest: ${s.path}: ${s.why}`)
    await stopVm(a)
  },
)

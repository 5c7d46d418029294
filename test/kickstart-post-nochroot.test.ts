// Run the kickstart's %post --nochroot for real, the way Anaconda would: the
// install medium at /run/install/repo and the new system at /mnt/sysimage
// (both tmpfs in a private mount namespace, so nothing on this machine moves).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigText } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import { renderKickstart } from '../builder/render/kickstart.js'

const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0

function postNochroot(ks: string): string {
  const start = ks.indexOf('%post --nochroot')
  const body = ks.slice(ks.indexOf('\n', start) + 1)
  return body.slice(0, body.search(/^%end$/m))
}

t.test('the payload is copied from the medium onto the data volume, verified, and linked', { skip: canUnshare ? false : 'unshare -m is not permitted here' }, async (t) => {
  const loaded = loadConfigText('apiVersion: mirror-appliance/v1\nhost:\n  disk: {device: vda}\nregistry:\n  dataDir: /srv/registry\n', 'appliance.yaml', { baseDir: '/' })
  const { plan } = planAppliance(loaded, { epoch: 1700000000, seed: 'post' })
  const script = postNochroot(renderKickstart(plan, { source: 'cdrom' }))
  const d = mkdtempSync(join(tmpdir(), 'ma-post-'))
  const payload = join(d, 'appliance')
  mkdirSync(join(payload, 'oci', 'blobs'), { recursive: true })
  writeFileSync(join(payload, 'oci', 'blobs', 'b1'), 'layer bytes\n')
  writeFileSync(join(payload, 'images.tsv'), 'stack\tstack/registry\tsha256:x\tregistry\t-\n')
  const sums = spawnSync('sha256sum', ['oci/blobs/b1', 'images.tsv'], { cwd: payload, encoding: 'utf8' }).stdout
  writeFileSync(join(payload, 'SHA256SUMS'), sums)
  writeFileSync(join(d, 'post.sh'), script)

  const run = (corrupt: boolean) =>
    spawnSync(
      'unshare',
      [
        '-m',
        'bash',
        '-c',
        [
          'set -e',
          'mount -t tmpfs none /mnt && mkdir -p /mnt/sysimage/srv/registry',
          'mkdir -p /run/install && mount -t tmpfs none /run/install && mkdir -p /run/install/repo',
          `cp -a ${d}/appliance /run/install/repo/appliance`,
          corrupt ? 'echo tampered >> /run/install/repo/appliance/oci/blobs/b1' : 'true',
          'set +e',
          `bash ${d}/post.sh; rc=$?`,
          'echo "rc=$rc"',
          'echo "link=$(readlink /mnt/sysimage/var/lib/mirror-appliance/payload)"',
          'cat "/mnt/sysimage$(readlink /mnt/sysimage/var/lib/mirror-appliance/payload)/oci/blobs/b1" 2>/dev/null || true',
        ].join('\n'),
      ],
      { encoding: 'utf8' },
    )

  const ok = run(false)
  t.match(ok.stdout, /^rc=0$/m, ok.stdout + ok.stderr)
  t.match(ok.stdout, /^link=\/srv\/registry\/\.payload$/m, 'the payload path points at the data volume')
  t.match(ok.stdout, /^layer bytes$/m, 'the blob arrived where the link points (inside the new system)')
  t.match(ok.stdout, /payload copied to .* and verified/)

  const bad = run(true)
  t.notMatch(bad.stdout, /^rc=0$/m, 'a corrupted payload stops the install')
  t.match(bad.stdout + bad.stderr, /does not match SHA256SUMS/)
})

// Run the kickstart's %post --nochroot for real, the way Anaconda would: the
// install medium at /run/install/repo and the new system at /mnt/sysimage
// (both tmpfs in a private mount namespace, so nothing on this machine moves).
import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfigText } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import { renderKickstart } from '../builder/render/kickstart.js'

const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0
const execFileP = promisify(execFile)

function postNochroot(ks: string): string {
  const start = ks.indexOf('%post --nochroot')
  const body = ks.slice(ks.indexOf('\n', start) + 1)
  return body.slice(0, body.search(/^%end$/m))
}

t.test(
  'the payload is copied from the medium onto the data volume, verified, and linked',
  { skip: canUnshare ? false : 'unshare -m is not permitted here' },
  async (t) => {
    const loaded = loadConfigText(
      'apiVersion: mirror-appliance/v1\nhost:\n  disk: {device: vda}\nregistry:\n  dataDir: /srv/registry\n',
      'appliance.yaml',
      { baseDir: '/' },
    )
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
  },
)

// PXE: the payload comes over HTTP, file by file as the server's SHA256SUMS
// names them, downloaded with curl --create-dirs. A name that climbs out
// (../) or is absolute must stop the install before curl writes anything.
t.test(
  'PXE payload download: names from the server are checked before curl writes them',
  { skip: canUnshare ? false : 'unshare -m is not permitted here' },
  async (t) => {
    const { serveDir } = await import('../builder/media/serve.js')
    const d = mkdtempSync(join(tmpdir(), 'ma-post-url-'))
    t.teardown(() => rmSync(d, { recursive: true, force: true }))
    // The served tree: the payload under appliance/, plus what a hostile
    // SHA256SUMS would fetch (curl resolves appliance/../../../x to /x).
    const srv = join(d, 'srv')
    mkdirSync(join(srv, 'appliance', 'oci', 'blobs'), { recursive: true })
    writeFileSync(join(srv, 'appliance', 'oci', 'blobs', 'b1'), 'layer bytes\n')
    writeFileSync(join(srv, 'escaped'), 'written outside the payload\n')
    mkdirSync(join(srv, 'appliance', 'mnt'), { recursive: true })
    writeFileSync(join(srv, 'appliance', 'mnt', 'abs'), 'written at an absolute path\n')
    const good = spawnSync('sha256sum', ['oci/blobs/b1'], { cwd: join(srv, 'appliance'), encoding: 'utf8' }).stdout
    const server = await serveDir({ dir: srv, port: 0, host: '127.0.0.1' })
    t.teardown(() => new Promise<void>((ok) => server.close(() => ok())))
    const base = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`

    const loaded = loadConfigText(
      'apiVersion: mirror-appliance/v1\nhost:\n  disk: {device: vda}\nregistry:\n  dataDir: /srv/registry\n',
      'appliance.yaml',
      { baseDir: '/' },
    )
    const { plan } = planAppliance(loaded, { epoch: 1700000000, seed: 'post' })
    writeFileSync(
      join(d, 'post.sh'),
      postNochroot(renderKickstart(plan, { source: 'url', url: `${base}/repo`, payloadUrl: `${base}/appliance` })),
    )

    // Asynchronously: the HTTP server answering curl runs in this process.
    const run = async (sums: string) => {
      writeFileSync(join(srv, 'appliance', 'SHA256SUMS'), sums)
      // The new system at /mnt/sysimage on a tmpfs in a private mount namespace: nothing outside it moves.
      const script = [
        'mount -t tmpfs none /mnt && mkdir -p /mnt/sysimage/srv/registry',
        'set +e',
        `bash ${d}/post.sh; echo "rc=$?"`,
        'find /mnt -type f | sort',
      ].join('\n')
      const r = await execFileP('unshare', ['-m', 'bash', '-c', script], { encoding: 'utf8', timeout: 60_000 })
      return { stdout: r.stdout, stderr: r.stderr }
    }

    const ok = await run(good)
    t.match(ok.stdout, /^rc=0$/m, ok.stdout + ok.stderr)
    t.match(ok.stdout, /^\/mnt\/sysimage\/srv\/registry\/\.payload\/oci\/blobs\/b1$/m, 'a plain name is downloaded into the payload')

    const hostile: [string, string][] = [
      ['../../../escaped', 'climbs out of the payload'],
      ['oci/../../../../escaped', 'climbs out through a directory'],
      ['/mnt/abs', 'absolute'],
      ['oci/blobs/$(touch /mnt/pwned)', 'shell characters'],
      ['.', 'the payload directory itself'],
    ]
    for (const [name, why] of hostile) {
      const r = await run(`${good}${'0'.repeat(64)}  ${name}\n`)
      t.notMatch(r.stdout, /^rc=0$/m, `${why} (${name}): the install stops`)
      t.match(
        r.stderr,
        new RegExp(`SHA256SUMS line 2 names '${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}': not a plain relative path of the payload`),
        `${why}: the line and the name are said`,
      )
      const written = r.stdout.split('\n').filter((l) => l.startsWith('/mnt/'))
      t.same(
        written.filter((p) => !p.startsWith('/mnt/sysimage/srv/registry/.payload/')),
        [],
        `${why}: nothing written outside the payload`,
      )
    }
  },
)

// Day 2 on a booted appliance: `mirror-registryctl` run inside the guest over
// SSH (as root through sudo, as an administrator would), and what it must
// change as seen from the host: status, backup and restore after the data is
// wiped, an upgrade to another registry image and a broken one rolled back,
// and rotate-cert with a new CA.
import type { Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from './cli.js'
import { buildImage, writeLayout } from './oci-fixtures.js'
import { checkContentFromHost, guest, SSH_OPTS, INIT_PASSWORD, type Appliance, type VmInfo } from './appliance-vm.js'

const CTL = '/usr/local/bin/mirror-registryctl'

/** A bundle (build --bundle) of the appliance's config with another registry image, that image imported into the cache first. */
export async function bundleWithRegistryImage(
  t: Test,
  a: Appliance,
  name: string,
  img: { ref: string; digest: string; source: string; format?: string },
): Promise<string> {
  const env = { MIRROR_APPLIANCE_CACHE: join(a.dir, 'cache') }
  const imp = await runCli(['images', 'import', img.source, '--name', img.ref, ...(img.format ? ['--format', img.format] : [])], { env })
  t.equal(imp.code, 0, `${name}: image ${img.ref} imported: ${imp.stderr}`)
  const cfg = readFileSync(join(a.dir, 'appliance.yaml'), 'utf8')
  const line = /^(\s+registry: )\{ref: .*\}$/m
  if (!line.test(cfg)) throw new Error('the test config has no registry.images.registry line to replace')
  const cfg2 = join(a.dir, `appliance-${name}.yaml`)
  // the same config with the other image; only the bundle is built (no disk image)
  writeFileSync(
    cfg2,
    cfg.replace(line, `$1{ref: ${JSON.stringify(img.ref)}, digest: ${JSON.stringify(img.digest)}}`).replace(/^\s+qcow2: .*\n/m, ''),
  )
  const out = join(a.dir, `bundle-${name}`)
  const b = await runCli(['build', '-c', cfg2, '-o', out, '--bundle'], { env })
  t.equal(b.code, 0, `${name}: build --bundle: ${b.stderr.slice(-2000)}`)
  return join(out, 'mirror-appliance-bundle.tar.gz')
}

/** A registry image that cannot start: no /bin/registry, its command names a program it does not hold. As an OCI layout. */
export async function brokenRegistryImage(dir: string): Promise<{ source: string; ref: string; digest: string }> {
  const img = buildImage({ layers: [{ 'etc/mirror-appliance-broken': 'this image has no registry program: a broken upgrade\n' }] })
  const source = join(dir, 'broken-registry-oci')
  const ref = 'localhost/mirror-appliance/registry:broken'
  await writeLayout(source, [{ name: ref, root: img.manifest, images: [img] }])
  return { source, ref, digest: img.manifest.digest }
}

/** Copy a file from the host into the guest (scp with the config user's key). */
export function copyIn(t: Test, a: Appliance, vm: VmInfo, file: string, to: string): void {
  const r = spawnSync('scp', ['-q', '-i', a.key, '-P', String(vm.sshPort), ...SSH_OPTS, file, `admin@127.0.0.1:${to}`], {
    encoding: 'utf8',
    timeout: 300_000,
  })
  t.equal(r.status, 0, `copied ${file} into the guest: ${r.stderr}`)
}

/** The digest the registry container runs, as podman reports the image it was started from. */
export function runningImage(a: Appliance, vm: VmInfo): string {
  return guest(a, vm, "podman inspect registry --format '{{.ImageName}}'").out.trim()
}

/** status, backup, wipe, restore: the content comes back. */
export function statusBackupRestore(t: Test, a: Appliance, vm: VmInfo): void {
  const st = guest(a, vm, `${CTL} status`)
  t.equal(st.code, 0, `mirror-registryctl status: exit 0: ${st.err}`)
  t.match(st.out, /^health: +ok /m, 'status: healthy')
  t.match(st.out, /^unit: +registry\.service active$/m, 'status: the unit is active')

  const bk = guest(a, vm, `mkdir -p /root/backups && ${CTL} backup /root/backups && ls /root/backups`)
  t.equal(bk.code, 0, `backup: ${bk.err}`)
  const file = bk.out.split('\n').find((l) => /^mirror-registry-backup-.*\.tar\.gz$/.test(l))
  t.ok(file, `backup: archive written (${file})`)
  const mode = guest(a, vm, `stat -c %a /root/backups/${file}`)
  t.equal(mode.out.trim(), '600', 'backup: the archive (it holds keys and the htpasswd) is 0600')

  // Wipe the registry's storage: the content is gone.
  const wipe = guest(
    a,
    vm,
    'systemctl stop registry.service && rm -rf /var/lib/mirror-registry/registry/storage/docker && systemctl start registry.service',
  )
  t.equal(wipe.code, 0, `data wiped: ${wipe.err}`)
  const c0 = a.content[0]!
  let gone = ''
  for (let i = 0; i < 30; i++) {
    const r = spawnSync(
      'skopeo',
      [
        'inspect',
        '--raw',
        '--cert-dir',
        a.caDir,
        '--creds',
        `init:${INIT_PASSWORD}`,
        `docker://localhost:${vm.port}/${c0.target}@${c0.digest}`,
      ],
      { encoding: 'utf8' },
    )
    gone = r.stderr
    if (/manifest unknown|not found/i.test(gone)) break
    spawnSync('sleep', ['2'])
  }
  t.match(gone, /manifest unknown|not found/i, 'after the wipe the registry no longer has the content')

  const rs = guest(a, vm, `${CTL} restore /root/backups/${file} --yes`)
  t.equal(rs.code, 0, `restore: exit 0: ${rs.out}${rs.err}`)
  checkContentFromHost(t, a, vm, 'after restore')
}

/** upgrade to a bundle with another registry image; then a broken upgrade, rolled back. */
export async function upgradeAndRollback(
  t: Test,
  a: Appliance,
  vm: VmInfo,
  v2: { ref: string; digest: string; archive: string },
): Promise<void> {
  const good = await bundleWithRegistryImage(t, a, 'v2', { ref: v2.ref, digest: v2.digest, source: v2.archive })
  copyIn(t, a, vm, good, '/tmp/bundle-v2.tar.gz')
  const up = guest(a, vm, `${CTL} upgrade /tmp/bundle-v2.tar.gz`)
  t.equal(up.code, 0, `upgrade: exit 0: ${up.out.slice(-1500)}${up.err.slice(-1500)}`)
  const v2Ref = `${v2.ref.replace(/:[^/:]+$/, '')}@${v2.digest}`
  t.equal(runningImage(a, vm), v2Ref, 'upgrade: the registry unit now runs the new image by its digest')
  checkContentFromHost(t, a, vm, 'after upgrade')

  const brokenDir = join(a.dir, 'broken')
  mkdirSync(brokenDir, { recursive: true })
  const broken = await brokenRegistryImage(brokenDir)
  const bad = await bundleWithRegistryImage(t, a, 'broken', { ...broken, format: 'oci-dir' })
  copyIn(t, a, vm, bad, '/tmp/bundle-broken.tar.gz')
  const down = guest(a, vm, `MA_HEALTH_TIMEOUT=120 ${CTL} upgrade /tmp/bundle-broken.tar.gz`)
  t.equal(down.code, 1, 'broken upgrade: fails')
  t.match(down.out + down.err, /rolled back: the previous units and images run again and are healthy/, 'broken upgrade: rolled back')
  t.match(
    down.out + down.err,
    /restoring \S*config\.yml as it was before the upgrade/,
    'broken upgrade: the registry configuration saved before the new release started is put back',
  )
  t.equal(runningImage(a, vm), v2Ref, 'broken upgrade: the unit runs the previous image again')
  checkContentFromHost(t, a, vm, 'after the rolled-back upgrade')
}

/** rotate-cert with a new CA: the old CA is refused afterwards, the new one works. Returns the new CA's directory. */
export function rotateCert(t: Test, a: Appliance, vm: VmInfo): string {
  const r = guest(a, vm, `${CTL} rotate-cert`)
  t.equal(r.code, 0, `rotate-cert: exit 0: ${r.out.slice(-1500)}${r.err.slice(-1500)}`)
  const ca = guest(a, vm, 'cat /root/mirror-appliance/ca.crt').out
  const old = readFileSync(join(a.caDir, 'ca.crt'), 'utf8')
  t.match(ca, /BEGIN CERTIFICATE/, 'rotate-cert: the new CA is in /root/mirror-appliance/ca.crt')
  t.not(ca, old, 'rotate-cert: a new CA')
  const newDir = join(a.dir, 'rotated-ca')
  mkdirSync(newDir, { recursive: true })
  writeFileSync(join(newDir, 'ca.crt'), ca)
  const c0 = a.content[0]!
  const ref = `docker://localhost:${vm.port}/${c0.target}@${c0.digest}`
  const creds = `init:${INIT_PASSWORD}`
  const withOld = spawnSync('skopeo', ['inspect', '--raw', '--cert-dir', a.caDir, '--creds', creds, ref], { encoding: 'utf8' })
  t.equal(withOld.status, 1, 'rotate-cert: a client trusting only the old CA is refused')
  t.match(withOld.stderr, /x509|certificate/i, `rotate-cert: for the certificate: ${withOld.stderr.trim()}`)
  const withNew = spawnSync('skopeo', ['inspect', '--raw', '--cert-dir', newDir, '--creds', creds, ref], { encoding: 'utf8' })
  t.equal(withNew.status, 0, `rotate-cert: the new CA works: ${withNew.stderr}`)
  return newDir
}

/**
 * Install under another name into another storage directory (issue 19 point
 * 6, distribution flavor): the installed registry is uninstalled (data kept),
 * and the upgrade test's bundle is installed with `--quayHostname` (same
 * port: QEMU forwards only it), `--quayStorage` and `--caKey` (the bundle's
 * CA key, which no medium carries). From the host, curl trusting only that
 * bundle's CA and resolving the new name to the forwarded port gets every
 * content manifest by digest; the old name no longer matches the
 * certificate; the registry container mounts the new storage directory,
 * where the content tree was laid.
 */
export function renameAndMoveStorage(t: Test, a: Appliance, vm: VmInfo): void {
  const NEW = 'registry2.boot.example'
  const STORE = '/srv/registry-storage'
  const bundleDir = join(a.dir, 'bundle-v2')
  copyIn(t, a, vm, join(bundleDir, 'mirror-appliance-bundle.tar.gz'), '/home/admin/bundle-v2.tar.gz')
  copyIn(t, a, vm, join(bundleDir, 'secrets', 'ca.key'), '/home/admin/ca.key')
  const un = guest(a, vm, `${CTL} uninstall --yes`)
  t.equal(un.code, 0, `rename: uninstall (data kept): ${un.out.slice(-1500)}${un.err.slice(-1500)}`)
  const inst = guest(
    a,
    vm,
    [
      `echo '127.0.0.1 ${NEW}' >>/etc/hosts`,
      'rm -rf /root/b && mkdir /root/b && tar xzf /home/admin/bundle-v2.tar.gz -C /root/b',
      'install -m 0600 /home/admin/ca.key /root/ca.key && rm -f /home/admin/ca.key',
      // The stand-in: install's preflight refuses an OS that is not RHEL 8
      // (the guest is Debian); for this one command a RHEL 8.10 os-release is
      // bind-mounted over the guest's, in a mount namespace of its own.
      `printf '%s\\n' 'NAME="Red Hat Enterprise Linux"' 'ID="rhel"' 'VERSION_ID="8.10"' 'PRETTY_NAME="Red Hat Enterprise Linux 8.10 (stand-in os-release)"' >/root/os-release-rhel8`,
      `unshare -m sh -c 'mount --bind /root/os-release-rhel8 /etc/os-release && exec /root/b/mirror-appliance-bundle/mirror-registryctl install --quayHostname ${NEW} --quayStorage ${STORE} --caKey /root/ca.key'`,
    ].join(' && '),
  )
  t.comment('rename: the guest is Debian: install ran with a stand-in RHEL 8.10 /etc/os-release bind-mounted for that command only')
  t.equal(inst.code, 0, `rename: install --quayHostname ${NEW} --quayStorage ${STORE}: ${inst.out.slice(-2500)}${inst.err.slice(-2500)}`)
  const st = guest(a, vm, `${CTL} status`)
  t.equal(st.code, 0, `rename: status exit 0: ${st.out}${st.err}`)
  t.match(st.out, new RegExp(`${NEW.replace(/\./g, '\\.')}:8443`), 'rename: status names the new address')
  t.match(st.out, new RegExp(`^storage: .*${STORE}`, 'm'), 'rename: status names the moved storage')
  const mounts = guest(a, vm, `podman inspect registry --format '{{range .Mounts}}{{.Source}} {{end}}'; ls -A ${STORE}`)
  t.match(mounts.out, new RegExp(`${STORE}( |$)`, 'm'), 'rename: the registry container mounts the moved storage')
  t.match(mounts.out, /^docker$/m, 'rename: the content tree was laid in the moved storage')

  const bundleCa = join(bundleDir, 'secrets', 'ca.crt')
  const curl = (name: string, path: string) =>
    spawnSync(
      'curl',
      [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--cacert',
        bundleCa,
        '--resolve',
        `${name}:${vm.port}:127.0.0.1`,
        '-u',
        `init:${INIT_PASSWORD}`,
        '-H',
        'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json',
        `https://${name}:${vm.port}${path}`,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    )
  for (const c of a.content) {
    const r = curl(NEW, `/v2/${c.target}/manifests/${c.digest}`)
    t.equal(r.stdout, '200', `rename: ${c.target}@${c.digest.slice(0, 19)} served at ${NEW}, trusting only the bundle's CA: ${r.stderr}`)
  }
  const old = curl('mirror.boot.example', '/v2/')
  t.equal(old.status, 60, `rename: the old name no longer matches the certificate (curl exit 60): ${old.stderr.trim()}`)
}

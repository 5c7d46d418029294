// content.ocMirrorArchives through the real CLI: `images import` reports
// what it skipped; `build` imports the archives (or takes what an earlier
// import recorded once the archives are gone) and every image reaches the
// payload on the medium, by digest, under oc-mirror's repository and tag.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from './helpers/cli.js'
import { ocMirrorScenario } from './helpers/oc-mirror-fixture.js'

const work = await mkdtemp(join(tmpdir(), 'ma-build-ocm-'))
t.teardown(() => rm(work, { recursive: true, force: true }))
const s = await ocMirrorScenario(join(work, 'archives'))
const cache = join(work, 'cache')
const env = { SOURCE_DATE_EPOCH: '1700000000' }

const config = (archives: string[]) => {
  const p = join(work, 'appliance.yaml')
  writeFileSync(
    p,
    `apiVersion: mirror-appliance/v1
host: { hostname: registry.lab.example, disk: { device: vda } }
registry: { flavor: distribution, port: 8443 }
content:
  ocMirrorArchives:
${archives.map((a) => `    - ${a}`).join('\n')}
`,
  )
  return p
}

/** Files of the payload on the OEMDRV medium, as the installer copies them. */
function fromMedium(dist: string, files: string[]): Record<string, string> {
  const out = join(dist, '..', `x-${Math.random().toString(36).slice(2)}`)
  mkdirSync(out)
  const args = ['-indev', join(dist, 'oemdrv.iso'), '-osirrox', 'on']
  for (const f of files) args.push('-extract', `/appliance/${f}`, join(out, f.replaceAll('/', '_')))
  const x = spawnSync('xorriso', args, { encoding: 'utf8' })
  if (x.status !== 0) throw new Error(x.stderr)
  return Object.fromEntries(files.map((f) => [f, readFileSync(join(out, f.replaceAll('/', '_')), 'latin1')]))
}

t.test('images import: the runs, the signatures, and what was skipped', async (t) => {
  const r = await runCli(['images', 'import', s.run1.dir, '--cache', join(work, 'cli-cache')])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, new RegExp(`oc-mirror run ${s.run1.iscTime}: ${s.run1.chunks.length} chunk\\(s\\) in `))
  t.match(r.stdout, /^imported   openshift\/release-images:4\.15\.0-x86_64  sha256:/m)
  t.match(r.stdout, /^signature  openshift\/release:sha256-[a-f0-9]{64}\.sig  sha256:/m)
  t.match(r.stdout, /^release-signature  4\.15\.0-x86_64-sha256-[a-f0-9]{64}$/m)
  t.match(
    r.stdout,
    new RegExp(
      `^skipped   ubi8/ubi:8\\.9  ${s.expect1.skipped[0]!.digest}  \\(left in oc-mirror's cache by another ImageSetConfiguration`,
      'm',
    ),
  )
  const alone = await runCli(['images', 'import', s.run2.dir, '--cache', join(work, 'cli-cache-2')])
  t.equal(alone.code, 2, "an incremental run without the run before is the user's to fix")
  t.match(alone.stderr, new RegExp(`shipped by the oc-mirror run that ended at ${s.run1.historyTime}`))
})

t.test('build: every image of the archives on the medium, by digest; again once the archives are gone', async (t) => {
  const cfg = config(['archives/run1', 'archives/run2'])
  const dist = join(work, 'dist')
  const b = await runCli(['build', '-c', cfg, '-o', dist, '--cache', cache, '--allow-missing'], { env })
  t.equal(b.code, 0, b.stderr)
  t.match(b.stderr, /oc-mirror: skipped ubi8\/ubi:8\.9 .*another ImageSetConfiguration/)
  const sig = s.expect2.releaseSignatures[0]!
  const f = fromMedium(dist, ['images.tsv', 'payload.json', 'SHA256SUMS', `release-signatures/${sig.file}`])
  const rows = f['images.tsv']!.trim()
    .split('\n')
    .map((l) => l.split('\t'))
  for (const w of s.expect2.images.filter((i) => !i.absent)) {
    const role = w.kind === 'signature' ? 'signature' : 'content'
    t.ok(
      rows.some((x) => x[0] === role && x[2] === w.digest && x[3] === w.repo && x[4] === w.tag),
      `${role} ${w.repo}:${w.tag}@${w.digest.slice(0, 19)}`,
    )
  }
  // The sparse index: the stack's registries refuse it, so --allow-missing leaves it out and says so.
  t.notOk(
    rows.some((x) => x[3] === 'ubi9/ubi'),
    'the index with a platform left out is not in the payload',
  )
  t.match(b.stderr, /oc-mirror image left out: content ubi9\/ubi:latest \(sha256:[a-f0-9]{64}, 1 platform\(s\) left out\)/)
  t.equal(f[`release-signatures/${sig.file}`], sig.data.toString('latin1'), 'the release signature is on the medium')
  // distribution on the host's disk: the payload carries the registry storage tree's links, no blob twice (issue 21 point 5)
  const whole = join(dist, '..', 'medium-payload')
  const x = spawnSync('xorriso', ['-indev', join(dist, 'oemdrv.iso'), '-osirrox', 'on', '-extract', '/appliance', whole], {
    encoding: 'utf8',
  })
  t.equal(x.status, 0, x.stderr)
  const treeFiles = spawnSync('find', [join(whole, 'registry-tree'), '-type', 'f'], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
  t.ok(treeFiles.length > 10 && treeFiles.every((p) => p.endsWith('/link')), `only link files in registry-tree/ (${treeFiles.length})`)
  t.ok(
    rows
      .filter((x) => x[0] === 'content')
      .every((x) => treeFiles.some((p) => p.endsWith(`/_manifests/revisions/sha256/${x[2]!.slice(7)}/link`))),
    'a revision link for each content image',
  )
  const check = spawnSync('sha256sum', ['--strict', '--quiet', '-c', 'SHA256SUMS'], { cwd: whole, encoding: 'utf8' })
  t.equal(check.status, 0, `the payload on the medium verifies, links included: ${check.stdout}${check.stderr}`)
  t.match(b.stderr, /data volume \/var\/lib\/mirror-registry \(distribution, its storage tree moved into place, no push\): needs /)
  t.match(f['SHA256SUMS']!, new RegExp(`  release-signatures/${sig.file}$`, 'm'))
  const m = JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8')) as {
    images: { role: string; target: string; tag?: string; digest: string }[]
    missingImages: string[]
  }
  t.ok(
    m.missingImages.some((x) => x.startsWith('content ubi9/ubi:latest')),
    'the manifest records it as missing',
  )
  for (const w of s.expect2.images.filter((i) => i.kind === 'image' && !i.absent))
    t.ok(
      m.images.some((i) => i.role === 'content' && i.target === w.repo && i.digest === w.digest),
      `manifest lists ${w.repo}:${w.tag}`,
    )
  t.notOk(
    m.images.some((i) => i.tag?.endsWith('.sig')),
    'signatures are not content images',
  )

  // The archives deleted after the import: the cache's record of them serves.
  renameSync(join(work, 'archives'), join(work, 'archives-gone'))
  t.teardown(() => renameSync(join(work, 'archives-gone'), join(work, 'archives')))
  const dist2 = join(work, 'dist2')
  const again = await runCli(['build', '-c', cfg, '-o', dist2, '--cache', cache, '--allow-missing'], { env })
  t.equal(again.code, 0, again.stderr)
  t.equal(fromMedium(dist2, ['images.tsv'])['images.tsv'], f['images.tsv'], 'the same payload from what the cache recorded')
  t.equal(again.stderr.match(/oc-mirror run 2024-06-01T10:00:00Z/g)?.length, 1, 'each run once')

  const other = await runCli(['build', '-c', cfg, '-o', join(work, 'dist3'), '--cache', join(work, 'empty-cache')], { env })
  t.equal(other.code, 2, 'gone and never imported: a config error')
  t.match(
    other.stderr,
    /appliance\.yaml:6:7 content\.ocMirrorArchives\[0\]: .*archives\/run1 does not exist, and the image cache .*empty-cache holds no import of it/,
  )
})

t.test('build: a sparse index is refused before anything is written, naming it', async (t) => {
  const cfg = config(['archives/run1'])
  const dist = join(work, 'dist-sparse')
  const r = await runCli(['build', '-c', cfg, '-o', dist, '--cache', join(work, 'cache-sparse')], { env })
  t.equal(r.code, 2, r.stderr)
  t.match(
    r.stderr,
    /1 image\(s\) of the oc-mirror archives are indexes some platforms of which oc-mirror's platforms filter left out: ubi9\/ubi:latest \(sha256:[a-f0-9]{64}, 1 platform\(s\) left out\)/,
  )
  t.match(r.stderr, /mirror these images with every platform .*or build with --allow-missing to leave them out/)
  t.notOk(existsSync(dist), 'nothing written')
})

// A real registry for tests: Debian's docker-registry (distribution 2.8, the
// program inside registry:2) as a plain process on 127.0.0.1.
//  - startRegistry(): plain HTTP, storage in a temp dir or a given tree
//    (skopeo needs --*-tls-verify=false), for tests that need somewhere to
//    push, or a storage tree served as the registry reads it;
//  - spawnRegistry() + waitForRegistry() + pushAndPullBack(): for the e2e
//    tests that run OUR generated config.yml (TLS, htpasswd, s3 storage) and
//    check what a user relies on: push with the generated credentials
//    trusting only our CA, and every blob back bit for bit.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './net.js'
import { sampleImages, sha, writeLayout, type Blob } from './oci-fixtures.js'

export interface RegistryProcess {
  child: ChildProcess
  /** The last few KiB of its stdout and stderr */
  log(): string
  /** SIGTERM, then SIGKILL after 3 s */
  stop(): Promise<void>
}

/** Run `docker-registry serve CONFIG` with env (default: ours); not yet ready, see waitForRegistry. */
export function spawnRegistry(config: string, baseEnv: NodeJS.ProcessEnv = process.env): RegistryProcess {
  const env = { ...baseEnv }
  // AWS_CA_BUNDLE makes the registry's s3 driver panic at init, even unused.
  delete env.AWS_CA_BUNDLE
  const child = spawn('docker-registry', ['serve', config], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  const keep = (d: Buffer) => (log = (log + d.toString()).slice(-6000))
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  return {
    child,
    log: () => log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
  }
}

/** Poll `ready` every 100 ms until it says yes, the registry exits, or the time is up. */
export async function waitForRegistry(p: RegistryProcess, ready: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && p.child.exitCode === null) {
    try {
      if (await ready()) return true
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

/** HTTP status of a GET with curl trusting only caPem ('000' when nothing answers). */
export function curlStatus(url: string, caPem: string, extra: string[] = []): string {
  return spawnSync('curl', ['-sS', '--cacert', caPem, '-o', '/dev/null', '-w', '%{http_code}', ...extra, url], { encoding: 'utf8' }).stdout
}

export const skopeo = (args: string[]) => spawnSync('skopeo', ['--insecure-policy', ...args], { encoding: 'utf8' })

/** The asserting subset of a tap Test that pushAndPullBack needs. */
interface Asserts {
  equal(found: unknown, wanted: unknown, message: string): unknown
  ok(value: unknown, message: string): unknown
}

/**
 * Push a two-arch image to addr as first boot does (skopeo --all
 * --preserve-digests, trusting only the CA in caDir, with creds), check the
 * digest the registry reports, pull everything back and compare every blob
 * byte for byte. Returns the pushed reference, the local layout and the
 * blobs, for further checks.
 */
export async function pushAndPullBack(
  t: Asserts,
  o: { addr: string; caDir: string; creds: string; workDir: string; log?: () => string },
): Promise<{ dest: string; layout: string; src: string; blobs: Blob[] }> {
  const layout = join(o.workDir, 'oci')
  const imgs = sampleImages()
  const name = 'content/ocp/release:4.14.1'
  await writeLayout(layout, [{ name, root: imgs.multi, images: [imgs.amd, imgs.arm] }])
  const src = `oci:${layout}:${name}`
  const dest = `docker://${o.addr}/ocp/release:4.14.1`
  const push = skopeo(['copy', '--all', '--preserve-digests', '--dest-cert-dir', o.caDir, '--dest-creds', o.creds, src, dest])
  t.equal(push.status, 0, push.status === 0 ? 'push' : `push: ${push.stderr} ${o.log?.().slice(-2000) ?? ''}`)

  // the digest check first boot makes: sha256 of `skopeo inspect --raw`
  const raw = spawnSync('skopeo', ['inspect', '--raw', '--cert-dir', o.caDir, '--creds', o.creds, dest])
  t.equal(raw.status, 0, String(raw.stderr))
  t.equal(sha(raw.stdout), imgs.multi.digest, 'digest preserved (index pushed as is)')

  const back = join(o.workDir, 'back')
  const pull = skopeo(['copy', '--all', '--src-cert-dir', o.caDir, '--src-creds', o.creds, dest, `oci:${back}:x`])
  t.equal(pull.status, 0, `pull: ${pull.stderr}`)
  const blobs = [imgs.multi, imgs.amd.manifest, imgs.amd.config, ...imgs.amd.layers, imgs.arm.manifest, imgs.arm.config, ...imgs.arm.layers]
  const got = new Set(readdirSync(join(back, 'blobs/sha256')))
  for (const b of blobs) {
    const hex = b.digest.slice(7)
    t.ok(
      got.has(hex) && readFileSync(join(back, 'blobs/sha256', hex)).equals(b.data),
      `blob ${b.digest.slice(0, 19)} pulled back, same bytes`,
    )
  }
  return { dest, layout, src, blobs }
}

export interface TestRegistry {
  /** host:port, e.g. 127.0.0.1:41234 */
  host: string
  dir: string
  /** Everything it wrote since it started (with logLevel 'info': every request) */
  fullLog(): string
  stop(): Promise<void>
}

export interface StartRegistryOptions {
  /** Serve this storage tree, read-write, and leave it at stop (default: an empty one in the temp dir) */
  rootdirectory?: string
  /** 'info' logs every request (the access log), 'warn' (default) only trouble */
  logLevel?: 'warn' | 'info'
}

/** Start a registry; call stop() in t.teardown. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'ma-registry-'))
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const host = `127.0.0.1:${port}`
    const config = join(dir, 'config.yml')
    await writeFile(
      config,
      [
        'version: 0.1',
        'log:',
        `  level: ${opts.logLevel ?? 'warn'}`,
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${opts.rootdirectory ?? join(dir, 'data')}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: ${host}`,
        '',
      ].join('\n'),
    )
    const p = spawnRegistry(config)
    let all = ''
    const keep = (d: Buffer) => (all += d.toString())
    p.child.stdout!.on('data', keep)
    p.child.stderr!.on('data', keep)
    if (!(await waitForRegistry(p, async () => (await fetch(`http://${host}/v2/`)).status === 200, 20_000))) {
      p.child.kill('SIGKILL')
      if (attempt < 2 && /address already in use/.test(p.log())) continue
      await rm(dir, { recursive: true, force: true })
      throw new Error(`docker-registry did not answer on ${host} (exit ${p.child.exitCode}):\n${p.log()}`)
    }
    return {
      host,
      dir,
      fullLog: () => all,
      async stop() {
        await p.stop()
        await rm(dir, { recursive: true, force: true })
      },
    }
  }
}

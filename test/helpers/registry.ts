// A real registry for tests: Debian's docker-registry (distribution 2.8, the
// program inside registry:2) as a plain process on 127.0.0.1, storage in a
// temp dir. Plain HTTP, so skopeo needs --*-tls-verify=false.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './net.js'

export interface TestRegistry {
  /** host:port, e.g. 127.0.0.1:41234 */
  host: string
  dir: string
  stop(): Promise<void>
}


async function waitReady(host: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}:\n${log()}`)
    try {
      const r = await fetch(`http://${host}/v2/`)
      if (r.status === 200) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`docker-registry did not answer on ${host}:\n${log()}`)
}

/** Start a registry; call stop() in t.teardown. */
export async function startRegistry(): Promise<TestRegistry> {
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
        '  level: warn',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${join(dir, 'data')}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: ${host}`,
        '',
      ].join('\n'),
    )
    const env = { ...process.env }
    // AWS_CA_BUNDLE makes the registry's s3 driver panic at init, even unused.
    delete env.AWS_CA_BUNDLE
    const child = spawn('docker-registry', ['serve', config], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)))
    try {
      await waitReady(host, child, () => stderr)
    } catch (e) {
      child.kill('SIGKILL')
      if (attempt < 2 && /address already in use/.test(stderr)) continue
      await rm(dir, { recursive: true, force: true })
      throw e
    }
    return {
      host,
      dir,
      async stop() {
        if (child.exitCode === null) {
          const exited = new Promise((r) => child.once('exit', r))
          child.kill('SIGTERM')
          await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
          if (child.exitCode === null) child.kill('SIGKILL')
        }
        await rm(dir, { recursive: true, force: true })
      },
    }
  }
}

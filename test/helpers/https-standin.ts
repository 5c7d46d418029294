// An HTTPS stand-in for a distribution registry, in a child process on
// 127.0.0.1:PORT: /v2/ answers 401 without credentials and 200 with any,
// everything else 404. It reads the certificate and key at every handshake,
// from where the test (or the install under test) puts them, so a test can
// replace them while it runs.
import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Start the stand-in; it answers once this resolves and is stopped in t's teardown. */
export async function httpsStandIn(t: Test, cert: string, key: string, port: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'https-standin-'))
  const js = join(dir, 'standin.mjs')
  writeFileSync(
    js,
    `import { createServer } from 'node:https'
import { createSecureContext } from 'node:tls'
import { readFileSync } from 'node:fs'
const ctx = () => createSecureContext({ cert: readFileSync(${JSON.stringify(cert)}), key: readFileSync(${JSON.stringify(key)}) })
createServer({ SNICallback: (_name, cb) => { try { cb(null, ctx()) } catch (e) { cb(e) } } }, (req, res) => {
  res.writeHead(req.url.startsWith('/v2/') ? (req.headers.authorization ? 200 : 401) : 404).end()
}).listen(${port}, '127.0.0.1', () => console.log('ready'))
`,
  )
  const p = spawn(process.execPath, [js], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    p.kill()
    rmSync(dir, { recursive: true, force: true })
  })
  await new Promise<void>((res, rej) => {
    p.stdout.on('data', (d) => String(d).includes('ready') && res())
    p.on('exit', (c) => rej(new Error(`stand-in exited ${c}`)))
  })
}

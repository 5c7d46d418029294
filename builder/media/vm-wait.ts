// Is the registry up? One HTTPS GET through QEMU's forwarded port, trusting
// ONLY the appliance's own CA and checking the certificate against the
// registry's real host name (SNI + SAN), the way a client in the site will.
// distribution answers /v2/ with 401 (auth) or 200; Quay is ready when
// /health/instance answers 200.

import { request } from 'node:https'
import { isIP } from 'node:net'
import { checkServerIdentity } from 'node:tls'

export interface RegistryTarget {
  /** Where to connect (QEMU's forwarded port listens on 127.0.0.1) */
  address: string
  port: number
  /** The registry's host name: the name the certificate must cover */
  hostname: string
  /** PEM of the CA to trust (nothing else is trusted) */
  ca: string
  /** Registry flavor from manifest.json: decides the path and the answer that means "ready" */
  flavor: string
}

export interface ProbeResult {
  ok: boolean
  status?: number
  /** Why not ready: connection refused, a TLS verification error, an unexpected status */
  error?: string
}

/** The health path of a flavor and the statuses that mean "up". */
export function healthCheck(flavor: string): { path: string; ready: number[] } {
  return flavor === 'quay' ? { path: '/health/instance', ready: [200] } : { path: '/v2/', ready: [200, 401] }
}

/** The URL a client in the site uses (host name, not the forwarded address). */
export function registryUrl(hostname: string, port: number): string {
  return `https://${isIP(hostname) === 6 ? `[${hostname}]` : hostname}:${port}`
}

/** One attempt. Never throws. */
export function probeRegistry(t: RegistryTarget, timeoutMs = 5000, signal?: AbortSignal): Promise<ProbeResult> {
  const { path, ready } = healthCheck(t.flavor)
  const ip = isIP(t.hostname) !== 0
  return new Promise((resolve) => {
    let settled = false
    const done = (r: ProbeResult) => {
      if (settled) return
      settled = true
      resolve(r)
    }
    const req = request(
      {
        host: t.address,
        port: t.port,
        path,
        method: 'GET',
        ca: t.ca,
        // SNI cannot carry an IP address; then the identity is checked against it explicitly.
        ...(ip
          ? { checkServerIdentity: (_h: string, cert: Parameters<typeof checkServerIdentity>[1]) => checkServerIdentity(t.hostname, cert) }
          : { servername: t.hostname }),
        headers: {
          Host: `${ip && isIP(t.hostname) === 6 ? `[${t.hostname}]` : t.hostname}:${t.port}`,
          'User-Agent': 'mirror-appliance-vm',
        },
        agent: false,
        timeout: timeoutMs,
        ...(signal ? { signal } : {}),
      },
      (res) => {
        res.resume()
        const status = res.statusCode ?? 0
        done(ready.includes(status) ? { ok: true, status } : { ok: false, status, error: `${path} answered HTTP ${status}` })
      },
    )
    req.on('timeout', () => {
      req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`))
    })
    req.on('error', (e: NodeJS.ErrnoException) =>
      done({ ok: false, error: e.code && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : e.message }),
    )
    req.end()
  })
}

export interface WaitOptions {
  target: RegistryTarget
  timeoutMs: number
  /** Pause between attempts (default 2000 ms) */
  intervalMs?: number
  signal?: AbortSignal
  /** Checked between attempts: false ends the wait (the VM is gone) */
  alive?: () => boolean
  /** Each failed attempt whose error differs from the one before */
  onAttempt?: (r: ProbeResult) => void
}

export type WaitResult =
  { ok: true; status: number; seconds: number } | { ok: false; reason: 'timeout' | 'exited'; lastError?: string; seconds: number }

/** Poll until the registry answers, the VM is gone or the time is up. Throws the signal's reason when aborted. */
export async function waitForRegistry(o: WaitOptions): Promise<WaitResult> {
  const start = Date.now()
  const deadline = start + o.timeoutMs
  const interval = o.intervalMs ?? 2000
  const seconds = () => Math.round((Date.now() - start) / 100) / 10
  let lastError: string | undefined
  for (;;) {
    if (o.signal?.aborted) throw o.signal.reason
    if (o.alive && !o.alive()) return { ok: false, reason: 'exited', lastError, seconds: seconds() }
    const r = await probeRegistry(o.target, Math.max(1000, Math.min(5000, deadline - Date.now())), o.signal)
    if (o.signal?.aborted) throw o.signal.reason
    if (r.ok) return { ok: true, status: r.status!, seconds: seconds() }
    if (r.error !== lastError) o.onAttempt?.(r)
    lastError = r.error
    if (Date.now() + interval > deadline) {
      // One last look: a VM that died in the last interval is "exited", not "timeout".
      if (o.alive && !o.alive()) return { ok: false, reason: 'exited', lastError, seconds: seconds() }
      return { ok: false, reason: 'timeout', lastError, seconds: seconds() }
    }
    await sleep(interval, o.signal)
  }
}

/** setTimeout as a promise that ends early (resolving) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const onAbort = () => {
      clearTimeout(timer)
      resolve()
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

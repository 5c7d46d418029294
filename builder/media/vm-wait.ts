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

interface HttpsAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One HTTPS GET to the target trusting only its CA, the certificate checked against its host name. Never throws: an error is returned. */
function httpsGet(
  t: RegistryTarget,
  path: string,
  headers: Record<string, string>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<HttpsAnswer | { error: string }> {
  const ip = isIP(t.hostname) !== 0
  return new Promise((resolve) => {
    let settled = false
    const done = (r: HttpsAnswer | { error: string }) => {
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
          ...headers,
        },
        agent: false,
        timeout: timeoutMs,
        ...(signal ? { signal } : {}),
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => {
          if (body.length < 65536) body += d
        })
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body }))
        res.on('error', (e) => done({ error: e.message }))
      },
    )
    req.on('timeout', () => {
      req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`))
    })
    req.on('error', (e: NodeJS.ErrnoException) =>
      done({ error: e.code && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : e.message }),
    )
    req.end()
  })
}

/** One attempt. Never throws. */
export async function probeRegistry(t: RegistryTarget, timeoutMs = 5000, signal?: AbortSignal): Promise<ProbeResult> {
  const { path, ready } = healthCheck(t.flavor)
  const r = await httpsGet(t, path, {}, timeoutMs, signal)
  if ('error' in r) return { ok: false, error: r.error }
  return ready.includes(r.status)
    ? { ok: true, status: r.status }
    : { ok: false, status: r.status, error: `${path} answered HTTP ${r.status}` }
}

/** An image the build put in the payload, as the registry must serve it once first boot has pushed it. */
export interface ContentImage {
  /** Repository in the registry (manifest.json's target) */
  repo: string
  digest: string
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ')

/** The Bearer challenge of a registry that hands out tokens (Quay; distribution with token auth). */
export function parseBearerChallenge(header: string | string[] | undefined): { realm: string; params: Record<string, string> } | undefined {
  const h = Array.isArray(header) ? header.find((x) => /^bearer\s/i.test(x)) : header
  if (!h || !/^bearer\s/i.test(h)) return undefined
  const params: Record<string, string> = {}
  for (const m of h.slice(7).matchAll(/([A-Za-z]+)="([^"]*)"/g)) params[m[1]!.toLowerCase()] = m[2]!
  const realm = params.realm
  if (!realm) return undefined
  delete params.realm
  return { realm, params }
}

/**
 * Does the registry serve this image by digest to the init user? GET of the
 * manifest with Basic credentials, or, when the registry answers with a
 * Bearer challenge (Quay), with a token fetched from its realm on the same
 * host. Never throws.
 */
export async function probeContent(
  t: RegistryTarget,
  auth: string,
  img: ContentImage,
  timeoutMs = 5000,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  const path = `/v2/${img.repo}/manifests/${img.digest}`
  const basic = { Authorization: `Basic ${auth}`, Accept: MANIFEST_TYPES }
  const first = await httpsGet(t, path, basic, timeoutMs, signal)
  if ('error' in first) return { ok: false, error: first.error }
  let status = first.status
  if (status === 401) {
    const ch = parseBearerChallenge(first.headers['www-authenticate'])
    if (ch) {
      let realm: URL
      try {
        realm = new URL(ch.realm)
      } catch {
        return { ok: false, status, error: `the registry names a token realm that is not a URL: ${ch.realm}` }
      }
      if (realm.hostname !== t.hostname) return { ok: false, status, error: `the token realm ${ch.realm} is not on the registry's host` }
      const q = new URLSearchParams({ ...ch.params, scope: `repository:${img.repo}:pull` })
      const tok = await httpsGet(t, `${realm.pathname}?${q}`, { Authorization: `Basic ${auth}` }, timeoutMs, signal)
      if ('error' in tok) return { ok: false, error: tok.error }
      if (tok.status !== 200) return { ok: false, status: tok.status, error: `the token realm answered HTTP ${tok.status}` }
      let token: string | undefined
      try {
        const j = JSON.parse(tok.body) as { token?: string; access_token?: string }
        token = j.token ?? j.access_token
      } catch {
        // not JSON: no token
      }
      if (!token) return { ok: false, status: tok.status, error: 'the token realm answered without a token' }
      const second = await httpsGet(t, path, { Authorization: `Bearer ${token}`, Accept: MANIFEST_TYPES }, timeoutMs, signal)
      if ('error' in second) return { ok: false, error: second.error }
      status = second.status
    }
  }
  return status === 200
    ? { ok: true, status }
    : { ok: false, status, error: `${img.repo}@${img.digest.slice(0, 19)}… answered HTTP ${status}` }
}

export interface WaitOptions {
  target: RegistryTarget
  /**
   * Also wait until every one of these images is served by digest with these
   * credentials (base64 user:password): the registry is "ready" only once
   * first boot has pushed the content, not when it first answers.
   */
  content?: { auth: string; images: ContentImage[] }
  /** Checked between attempts: a message ends the wait as failed (first boot reported a failure) */
  failed?: () => string | undefined
  /** Checked once the registry is ready: a message means "not yet" (first boot is still finishing) */
  pending?: () => string | undefined
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
  | { ok: true; status: number; seconds: number }
  | { ok: false; reason: 'timeout' | 'exited' | 'failed'; lastError?: string; seconds: number }

/** Health first, then each content image in turn. */
async function probeReady(o: WaitOptions, timeoutMs: number): Promise<ProbeResult> {
  const r = await probeRegistry(o.target, timeoutMs, o.signal)
  if (!r.ok || !o.content) return r
  for (const img of o.content.images) {
    const c = await probeContent(o.target, o.content.auth, img, timeoutMs, o.signal)
    if (!c.ok) return { ...c, error: `the registry answers, but not yet with its content: ${c.error}` }
  }
  return r
}

/** Poll until the registry answers (and serves its content), the VM is gone, first boot failed or the time is up. Throws the signal's reason when aborted. */
export async function waitForRegistry(o: WaitOptions): Promise<WaitResult> {
  const start = Date.now()
  const deadline = start + o.timeoutMs
  const interval = o.intervalMs ?? 2000
  const seconds = () => Math.round((Date.now() - start) / 100) / 10
  let lastError: string | undefined
  for (;;) {
    if (o.signal?.aborted) throw o.signal.reason
    if (o.alive && !o.alive()) return { ok: false, reason: 'exited', lastError, seconds: seconds() }
    const failure = o.failed?.()
    if (failure) return { ok: false, reason: 'failed', lastError: failure, seconds: seconds() }
    let r = await probeReady(o, Math.max(1000, Math.min(5000, deadline - Date.now())))
    if (o.signal?.aborted) throw o.signal.reason
    const pending = r.ok ? o.pending?.() : undefined
    if (pending) r = { ok: false, status: r.status!, error: pending }
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

// skopeo: copies images between registries, archives and OCI layouts. The
// argv is built by pure functions (table-tested in test/payload-skopeo.test.ts)
// and run through builder/exec.ts.

import { run, type RunResult } from '../exec.js'
import { ToolError } from '../errors.js'

export interface SkopeoCopyOptions {
  /** e.g. docker://quay.io/projectquay/quay@sha256:… */
  src: string
  /** e.g. oci:/cache/oci:stack/quay */
  dest: string
  /** Copy every image of a manifest list (--all) */
  all?: boolean
  /** Fail instead of converting a manifest when the digest would change */
  preserveDigests?: boolean
  /** Pick one architecture from a list (--override-arch) */
  overrideArch?: string
  overrideOs?: string
  authfile?: string
  /** false for a plain-HTTP or self-signed registry (tests, local mirrors) */
  srcTlsVerify?: boolean
  destTlsVerify?: boolean
  /** skopeo's own retries; we retry around it too, with backoff */
  retryTimes?: number
}

export function skopeoCopyArgs(o: SkopeoCopyOptions): string[] {
  const args: string[] = []
  // Global options go before the subcommand.
  if (o.overrideArch) args.push('--override-arch', o.overrideArch)
  if (o.overrideOs) args.push('--override-os', o.overrideOs)
  args.push('copy')
  if (o.all) args.push('--all')
  if (o.preserveDigests) args.push('--preserve-digests')
  if (o.authfile) args.push('--authfile', o.authfile)
  if (o.srcTlsVerify === false) args.push('--src-tls-verify=false')
  if (o.destTlsVerify === false) args.push('--dest-tls-verify=false')
  if (o.retryTimes !== undefined) args.push('--retry-times', String(o.retryTimes))
  args.push(o.src, o.dest)
  return args
}

export interface SkopeoInspectOptions {
  ref: string
  raw?: boolean
  authfile?: string
  tlsVerify?: boolean
}

export function skopeoInspectArgs(o: SkopeoInspectOptions): string[] {
  const args = ['inspect']
  if (o.raw) args.push('--raw')
  if (o.authfile) args.push('--authfile', o.authfile)
  if (o.tlsVerify === false) args.push('--tls-verify=false')
  args.push(o.ref)
  return args
}

export async function skopeoCopy(
  o: SkopeoCopyOptions,
  extra: { signal?: AbortSignal; onStdout?: (s: string) => void; onStderr?: (s: string) => void } = {},
): Promise<RunResult> {
  return run('skopeo', skopeoCopyArgs(o), {
    why: 'to copy container images',
    signal: extra.signal,
    onStdout: extra.onStdout,
    onStderr: extra.onStderr,
  })
}

/** The raw manifest bytes (as a string) of an image. */
export async function skopeoInspectRaw(o: Omit<SkopeoInspectOptions, 'raw'>, signal?: AbortSignal): Promise<string> {
  const r = await run('skopeo', skopeoInspectArgs({ ...o, raw: true }), { why: 'to read image manifests', signal })
  return r.stdout
}

/**
 * Whether a skopeo failure is worth retrying. Authentication, authorization
 * and "no such image" answers will not change by waiting; network errors,
 * timeouts and 5xx answers may.
 */
export function isPermanentSkopeoError(stderr: string): boolean {
  return /\b(401|403|404)\b|unauthorized|authentication required|denied|manifest unknown|name unknown|not found|no such (image|file)|invalid reference|Error parsing image name|does not match|digest mismatch|Invalid image name|unsupported/i.test(
    stderr,
  )
}

export function isPermanentError(e: unknown): boolean {
  if (e instanceof ToolError) return e.code === null ? false : isPermanentSkopeoError(e.stderr)
  return true
}

// `images fetch`: copy images from registries into the cache layout with
// skopeo. Resumable (an image already whole in the cache is skipped, and
// skopeo reuses blobs already present), verified (the stored digest must be
// the pinned one), and patient with flaky networks (retries with backoff,
// but not for answers that waiting will not change: 401, 404, unknown
// manifest).

import { stat } from 'node:fs/promises'
import { FailureError, UserError } from '../errors.js'
import { needTool, type ToolNeed } from '../tool-needs.js'
import { isPermanentError, skopeoCopy, skopeoInspectRaw } from '../tools/skopeo.js'
import { sha256Bytes } from './digest.js'
import { withDirLock } from './lockfile.js'
import { isIndexType, OciLayout, REF_NAME, SOURCE_DIGEST, SOURCE_REF, type ImageIndex } from './oci.js'
import { parseRef, sourceRef } from './ref.js'

/** The programs `images fetch` runs: `doctor` lists them (tool-needs.ts), with the oldest skopeo that will do. */
export const FETCH_TOOLS: readonly ToolNeed[] = [needTool('skopeo', 'to copy images from registries (images fetch)')]

export interface FetchImage {
  /** registry/repo:tag (the tag is informative when a digest is given) */
  ref: string
  /** Pinned manifest (list) digest; without it the tag is copied as it is now */
  digest?: string
  ociName: string
  /** false: the digest is not known to match the tag; check before copying */
  verified?: boolean
  /**
   * The pinned digest must stay pullable from the appliance's registry (a
   * content image: clusters pull it by that digest). When it is an image
   * index, the whole index is kept whatever the architecture: see fetchOne.
   */
  keepPinnedIndex?: boolean
}

export type FetchProgress =
  | { phase: 'start'; image: string; index: number; total: number; source: string }
  | { phase: 'skip'; image: string; index: number; total: number; reason: string }
  | { phase: 'blob'; image: string; index: number; total: number; blobs: number; bytes: number }
  | { phase: 'retry'; image: string; index: number; total: number; attempt: number; delayMs: number; error: string }
  | { phase: 'note'; image: string; index: number; total: number; message: string }
  | { phase: 'done'; image: string; index: number; total: number; digest: string; bytes: number }

export interface FetchOptions {
  cacheDir: string
  images: FetchImage[]
  /** --authfile; defaults to $REGISTRY_AUTH_FILE, then skopeo's own default */
  authfile?: string
  architecture: 'all' | string
  onProgress?: (p: FetchProgress) => void
  signal?: AbortSignal
  /** false for plain-HTTP registries (tests, lab mirrors) */
  tlsVerify?: boolean
  /** Attempts after the first (default 4) */
  retries?: number
  /** First backoff delay; doubles each attempt (default 2000 ms) */
  backoffMs?: number
}

export interface FetchResult {
  ociName: string
  ref: string
  digest: string
  skipped: boolean
}

/** Go architecture names as used in image indexes. */
const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64' }

export async function fetchImages(opts: FetchOptions): Promise<FetchResult[]> {
  const authfile = opts.authfile ?? process.env.REGISTRY_AUTH_FILE ?? undefined
  if (authfile && !(await stat(authfile).catch(() => null))) {
    throw new UserError(
      `authfile ${authfile} does not exist`,
      'log in with `podman login --authfile FILE REGISTRY`, or point --authfile at your pull secret',
    )
  }
  const layout = await OciLayout.open(opts.cacheDir)
  const results: FetchResult[] = []
  const total = opts.images.length
  for (const [i, img] of opts.images.entries()) {
    opts.signal?.throwIfAborted()
    const ctx = { image: img.ociName, index: i + 1, total }
    const result = await withDirLock(opts.cacheDir, () => fetchOne(layout, img, { ...opts, authfile }, ctx), {
      signal: opts.signal,
    })
    results.push(result)
  }
  await layout.syncIndex()
  return results
}

async function fetchOne(
  layout: OciLayout,
  img: FetchImage,
  opts: FetchOptions,
  ctx: { image: string; index: number; total: number },
): Promise<FetchResult> {
  const parsed = parseRef(img.ref)
  const pinned = img.digest ?? parsed.digest
  const arch = opts.architecture === 'all' ? 'all' : (ARCH_ALIASES[opts.architecture] ?? opts.architecture)

  const done = await alreadyComplete(layout, img, pinned, arch)
  if (done) {
    opts.onProgress?.({ phase: 'skip', ...ctx, reason: 'already in the cache' })
    return { ociName: img.ociName, ref: img.ref, digest: done, skipped: true }
  }

  const inspect = (ref: string) =>
    withRetry(
      () => skopeoInspectRaw({ ref: `docker://${ref}`, authfile: opts.authfile, tlsVerify: opts.tlsVerify }, opts.signal),
      opts,
      ctx,
    )

  if (img.verified === false && pinned && parsed.tag) {
    const raw = await inspect(`${parsed.repo}:${parsed.tag}`)
    const now = sha256Bytes(raw)
    if (now !== pinned) {
      throw new UserError(
        `${img.ref} now points at ${now}, but the lock pins ${pinned} (marked unverified)`,
        'refresh the lock on a connected machine: npx tsx images/refresh.ts',
      )
    }
  }

  let src = sourceRef(img.ref, pinned)
  let expect = pinned
  // Copy every image of an index (skopeo --all) or only the one resolved below.
  let whole = arch === 'all'
  if (arch !== 'all') {
    // Resolve the one manifest for this architecture ourselves, so that the
    // pinned index digest is checked before anything is copied.
    const raw = await inspect(src)
    if (pinned && sha256Bytes(raw) !== pinned) {
      throw new FailureError(`${img.ref}: the registry served a manifest whose sha256 is ${sha256Bytes(raw)}, not the pinned ${pinned}`)
    }
    const doc = JSON.parse(raw) as ImageIndex & { mediaType?: string }
    if (isIndexType(doc.mediaType) || Array.isArray(doc.manifests)) {
      const m = doc.manifests.find((d) => d.platform?.architecture === arch && (d.platform.os ?? 'linux') === 'linux')
      if (!m) {
        const have = doc.manifests.map((d) => d.platform?.architecture).filter((a) => a && a !== 'unknown')
        throw new UserError(
          `${img.ref} has no linux/${arch} image (it has: ${have.join(', ') || 'none'})`,
          'set content.architecture to one it has, or "all"',
        )
      }
      if (pinned && img.keepPinnedIndex) {
        // Clusters pull this image by the index digest the config pins: keeping
        // only linux/<arch> would change the digest the mirror serves. Nor can
        // the index be pushed without its other images: distribution 2.8 checks
        // every manifest an index names (registry/storage/manifestlisthandler.go
        // at v2.8.3; validation.manifests.indexes came in v3.0.0), Quay before
        // 3.17 fails on a missing child (image/shared/schemautil.py;
        // FEATURE_SPARSE_INDEX came in v3.17.0), and images/*.lock.json pins
        // registry 2.8.3 and Quay 3.15.0. So the whole index is kept.
        whole = true
        opts.onProgress?.({
          phase: 'note',
          ...ctx,
          message:
            `pinned by its index digest: keeping all ${doc.manifests.length} manifests of the index, not only linux/${arch} ` +
            `(${m.digest}), so that ${parsed.repo}@${pinned} stays pullable from the mirror; pin ${m.digest} instead to store linux/${arch} only`,
        })
      } else {
        src = `${parsed.repo}@${m.digest}`
        expect = m.digest
      }
    } else {
      expect = sha256Bytes(raw)
      src = `${parsed.repo}@${expect}`
    }
  }

  opts.onProgress?.({ phase: 'start', ...ctx, source: src })
  const announced: string[] = []
  const counted = new Map<string, number>()
  const report = async () => {
    for (const d of announced) {
      if (counted.has(d)) continue
      const st = await stat(layout.blobPath(d)).catch(() => null)
      if (st) counted.set(d, st.size)
    }
    let bytes = 0
    for (const n of counted.values()) bytes += n
    opts.onProgress?.({ phase: 'blob', ...ctx, blobs: announced.length, bytes })
  }
  const onStdout = (chunk: string) => {
    for (const m of chunk.matchAll(/Copying (?:blob|config) (sha256:[a-f0-9]{64})/g)) {
      announced.push(m[1]!)
      void report()
    }
  }

  await withRetry(
    () =>
      skopeoCopy(
        {
          src: `docker://${src}`,
          dest: `oci:${layout.dir}:${img.ociName}`,
          all: whole,
          preserveDigests: true,
          authfile: opts.authfile,
          srcTlsVerify: opts.tlsVerify,
        },
        { signal: opts.signal, onStdout },
      ),
    opts,
    ctx,
  )

  const entry = await layout.findByName(img.ociName)
  if (!entry) throw new FailureError(`skopeo finished but ${img.ociName} is not in ${layout.dir}/index.json`)
  if (expect && entry.digest !== expect) {
    throw new FailureError(`${img.ref}: copied image has digest ${entry.digest}, expected ${expect}`)
  }
  await layout.annotate(img.ociName, {
    [SOURCE_REF]: img.ref,
    ...(pinned ? { [SOURCE_DIGEST]: pinned } : {}),
    'io.mirror-appliance.architecture': whole ? 'all' : arch,
  })
  const problems = await layout.verifyImage(entry)
  if (problems.length) {
    throw new FailureError(
      `${img.ociName} is incomplete after copying:\n` + problems.map((p) => `  blob ${p.digest}: ${p.problem}`).join('\n'),
    )
  }
  await report()
  const bytes = (await layout.walk(entry)).reduce((n, d) => n + d.size, 0)
  opts.onProgress?.({ phase: 'done', ...ctx, digest: entry.digest, bytes })
  return { ociName: img.ociName, ref: img.ref, digest: entry.digest, skipped: false }
}

/** The stored digest when this image is already whole in the cache. */
async function alreadyComplete(layout: OciLayout, img: FetchImage, pinned: string | undefined, arch: string): Promise<string | undefined> {
  const entry = await layout.findByName(img.ociName)
  if (!entry) return undefined
  const a = entry.annotations ?? {}
  if (pinned && img.keepPinnedIndex) {
    // Only the pinned manifest (list) itself will do, whatever architecture
    // an older fetch narrowed it to.
    if (entry.digest !== pinned) return undefined
  } else if (pinned) {
    if (a[SOURCE_DIGEST] !== pinned && entry.digest !== pinned) return undefined
  } else if (a[SOURCE_REF] !== img.ref) return undefined
  if (!(pinned && img.keepPinnedIndex) && (a['io.mirror-appliance.architecture'] ?? 'all') !== arch) return undefined
  const problems = await layout.verifyImage(entry)
  return problems.length ? undefined : entry.digest
}

async function withRetry<T>(fn: () => Promise<T>, opts: FetchOptions, ctx: { image: string; index: number; total: number }): Promise<T> {
  const retries = opts.retries ?? 4
  const base = opts.backoffMs ?? 2000
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn()
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? e
      if (attempt >= retries || isPermanentError(e)) throw e
      const delayMs = base * 2 ** attempt
      opts.onProgress?.({ phase: 'retry', ...ctx, attempt: attempt + 1, delayMs, error: (e as Error).message.split('\n')[0] ?? '' })
      await new Promise((r) => setTimeout(r, delayMs))
    }
  }
}

export { REF_NAME }

// Work the benchmark runs in a child process, so that the peak RSS sampled
// for it is its own (the bench process has other work in its heap):
//   child.ts payload            benchPayload() rows as JSON on stdout
//   child.ts remaster IN OUT KS [HASHCACHE]
//                               remasterIso() of IN with KS into OUT, the base's
//                               sha256 remembered in HASHCACHE when given; prints
//                               the result and the call's own time (ms, without
//                               node's start-up)
import { readFile } from 'node:fs/promises'
import { remasterIso } from '../../builder/media/iso.js'
import { benchPayload } from './payload.js'

const [mode, ...args] = process.argv.slice(2)
if (mode === 'payload') {
  const gib = Number(process.env.BENCH_PAYLOAD_GIB ?? 2)
  process.stdout.write(JSON.stringify(await benchPayload({ totalBytes: Math.round(gib * 1024 ** 3) })) + '\n')
} else if (mode === 'remaster') {
  const [baseIso, outFile, ks, hashCacheDir] = args as [string, string, string, string | undefined]
  const ksText = await readFile(ks, 'utf8')
  const t0 = process.hrtime.bigint()
  const r = await remasterIso({
    baseIso,
    outFile,
    ksText,
    epoch: 1700000000,
    force: true,
    hashOutput: false,
    ...(hashCacheDir ? { hashCacheDir } : {}),
  })
  process.stdout.write(JSON.stringify({ ...r, ms: Number(process.hrtime.bigint() - t0) / 1e6 }) + '\n')
} else {
  process.stderr.write('usage: child.ts payload | remaster IN OUT KS [HASHCACHE]\n')
  process.exit(2)
}

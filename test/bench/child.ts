// Work the benchmark runs in a child process, so that the peak RSS sampled
// for it is its own (the bench process has other work in its heap):
//   child.ts payload            benchPayload() rows as JSON on stdout
//   child.ts remaster IN OUT KS remasterIso() of IN with KS into OUT
import { readFile } from 'node:fs/promises'
import { remasterIso } from '../../builder/media/iso.js'
import { benchPayload } from './payload.js'

const [mode, ...args] = process.argv.slice(2)
if (mode === 'payload') {
  const gib = Number(process.env.BENCH_PAYLOAD_GIB ?? 2)
  process.stdout.write(JSON.stringify(await benchPayload({ totalBytes: Math.round(gib * 1024 ** 3) })) + '\n')
} else if (mode === 'remaster') {
  const [baseIso, outFile, ks] = args as [string, string, string]
  const r = await remasterIso({ baseIso, outFile, ksText: await readFile(ks, 'utf8'), epoch: 1700000000, force: true, hashOutput: false })
  process.stdout.write(JSON.stringify(r) + '\n')
} else {
  process.stderr.write('usage: child.ts payload | remaster IN OUT KS\n')
  process.exit(2)
}

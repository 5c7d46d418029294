// Big base ISOs for fault tests and the benchmark: the RHEL-shaped fixture
// ISO plus one large padding file, written by the same bare xorriso replay
// the benchmark compares against, so the result still boots like the
// fixture. The padding is sparse (zeros, cheap to make; fault tests) or
// random-ish (a 1 MiB random block varied per MiB; the benchmark, so that
// nothing along the way can shortcut zeros).

import { randomBytes } from 'node:crypto'
import { createWriteStream, existsSync } from 'node:fs'
import { mkdir, rename, rm, truncate, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { run } from '../../builder/exec.js'
import { fixtureIso, testCacheDir } from '../helpers/fixture-iso.js'

/** argv of the bare remaster the benchmark measures us against. */
export function bareRemasterArgs(inIso: string, outIso: string, ksFile: string): string[] {
  return ['-indev', inIso, '-outdev', outIso, '-boot_image', 'any', 'replay', '-map', ksFile, '/ks.cfg']
}

/** A stream of `bytes` random-ish bytes: one random MiB, its first word varied per MiB. */
export function noiseStream(bytes: number): Readable {
  let left = bytes
  const block = randomBytes(1 << 20)
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null)
      const n = Math.min(left, block.length)
      left -= n
      block.writeUInt32LE(left >>> 0, 0)
      this.push(Buffer.from(block.subarray(0, n)))
    },
  })
}

/** Write `bytes` of padding to file: sparse zeros or random-ish data. */
export async function writePadding(file: string, bytes: number, random: boolean): Promise<void> {
  if (random) await pipeline(noiseStream(bytes), createWriteStream(file))
  else {
    await writeFile(file, '')
    await truncate(file, bytes)
  }
}

/**
 * The fixture ISO with a /pad.bin of padBytes, at outFile (or cached in the
 * test cache when outFile is omitted). Built to a temp name and renamed.
 */
export async function paddedFixtureIso(padBytes: number, opts: { random?: boolean; outFile?: string } = {}): Promise<string> {
  const base = await fixtureIso()
  const random = opts.random ?? false
  const out =
    opts.outFile ?? join(testCacheDir(), `${base.replace(/^.*\//, '').replace(/\.iso$/, '')}-pad${padBytes}${random ? 'r' : 's'}.iso`)
  if (!opts.outFile && existsSync(out)) return out
  await mkdir(dirname(out), { recursive: true })
  const tmp = `${out}.tmp-${process.pid}`
  const pad = `${out}.pad-${process.pid}`
  try {
    await writePadding(pad, padBytes, random)
    await rm(tmp, { force: true })
    await run('xorriso', ['-indev', base, '-outdev', tmp, '-boot_image', 'any', 'replay', '-map', pad, '/pad.bin'], {
      why: 'to make a big base ISO',
    })
    await rename(tmp, out)
  } finally {
    await rm(pad, { force: true })
    await rm(tmp, { force: true })
  }
  return out
}

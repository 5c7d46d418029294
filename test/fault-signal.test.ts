// Ctrl-C and SIGTERM at random and at chosen points of a real `build` (the
// CLI as a child process, remastering the fixture ISO with 64 MiB of padding
// so that xorriso writes for a while). After every run:
//  - the output directory is either the earlier build, untouched (same
//    inodes, same bytes), or a complete new build (SHA256SUMS all match);
//  - nothing else is beside it: no .tmp-*, .old-* or .lock;
//  - the build's TMPDIR holds nothing of ours: no scratch directories;
//  - no process of the build's tree (xorriso, mtools) is still running;
//  - an interrupted build exits 128+signal (130 for SIGINT, 143 for SIGTERM)
//    and says "interrupted".
// The random delays come from a seeded generator: FAULT_SEED=n replays a run.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { paddedFixtureIso } from './bench/iso.js'
import {
  cmdline,
  diffSnapshots,
  findUnder,
  ls,
  snapshot,
  spawnCli,
  verifyOutput,
  waitFor,
  type Proc,
  type ProcResult,
} from './helpers/proc.js'

const work = mkdtempSync(join(tmpdir(), 'fault-signal-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const parent = join(work, 'parent')
const out = join(parent, 'out')
const cache = join(work, 'cache')
mkdirSync(parent)
mkdirSync(cache)

const SIGNUM: Record<string, number> = { SIGINT: 2, SIGTERM: 15 }
const seed = Number(process.env.FAULT_SEED ?? Date.now() % 100000)
let state = seed >>> 0
const rnd = (n: number) => {
  state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
  return state % n
}

let baseIso = ''
let runNo = 0
function startBuild(): { proc: Proc; tmp: string } {
  // One TMPDIR for all runs so that tsx's compile cache (tsx-<uid>) is kept;
  // our scratch directories in it must be gone after every run.
  const tmp = join(work, 'tmp')
  mkdirSync(tmp, { recursive: true })
  runNo++
  const proc = spawnCli(['build', '-o', out, '--iso', baseIso, '--seed', 'fault'], {
    env: { TMPDIR: tmp, SOURCE_DATE_EPOCH: '1700000000', MIRROR_APPLIANCE_CACHE: cache },
    detached: true,
  })
  return { proc, tmp }
}

type Outcome = 'interrupted' | 'completed' | 'killed-before-start'

/** The invariants every run must keep, whatever the moment of the signal. */
async function checkAfter(
  t: Test,
  what: string,
  proc: Proc,
  r: ProcResult,
  sig: string,
  tmp: string,
  before: ReturnType<typeof snapshot>,
): Promise<Outcome> {
  t.same(ls(parent), ['out'], `${what}: nothing beside the output (no .tmp-*, .old-*, .lock)`)
  // tsx-<uid> is tsx's compile cache (the CLI runs through tsx), not ours
  t.same(
    ls(tmp).filter((n) => !/^tsx-\d+$/.test(n)),
    [],
    `${what}: no scratch directories left in TMPDIR`,
  )
  // Give the kernel a moment to reap; then nothing of the tree may live on.
  await new Promise((r) => setTimeout(r, 50))
  const alive = [...proc.seen]
    .map((p) => cmdline(p))
    .filter((c): c is string => c !== null && /xorriso|mtools|mcopy|mtype|mirror-appliance/.test(c))
  t.same(alive, [], `${what}: no process of the build left running`)

  let outcome: Outcome
  if (r.code === 128 + SIGNUM[sig]!) outcome = 'interrupted'
  else if (r.code === 0) outcome = 'completed'
  else if (r.code === null && r.signal === sig) outcome = 'killed-before-start'
  else {
    t.fail(`${what}: unexpected exit code ${r.code} signal ${r.signal}\n${r.stderr}`)
    return 'interrupted'
  }
  if (outcome === 'interrupted') t.match(r.stderr, /interrupted/, `${what}: says it was interrupted`)
  if (outcome === 'completed') {
    t.same(verifyOutput(out), [], `${what}: completed before the signal took effect, and the output is whole`)
  } else {
    t.same(
      diffSnapshots(before, snap()),
      [],
      `${what}: the earlier output is untouched (same directory inode, same inodes and bytes inside)`,
    )
  }
  return outcome
}

// A snapshot's '' key is not set by snapshot(); keep the dir's inode beside it.
const snap = () => {
  const s = snapshot(out)
  s.set('', { kind: 'dir', mode: 0, size: 0, ino: statSync(out).ino })
  return s
}

let before = new Map() as ReturnType<typeof snapshot>
let fullMs = 0

t.before(async () => {
  baseIso = await paddedFixtureIso(64 * 1024 * 1024)
  const { proc, tmp } = startBuild()
  const t0 = Date.now()
  const r = await proc.done
  fullMs = Date.now() - t0
  if (r.code !== 0) throw new Error(`the first build failed: ${r.stderr}`)
  t.same(
    ls(tmp).filter((n) => !/^tsx-\d+$/.test(n)),
    [],
  )
  before = snap()
})

const points: { name: string; sig: 'SIGINT' | 'SIGTERM'; group: boolean; twice?: boolean; at: (tmpOut: string) => boolean }[] = [
  {
    name: 'SIGINT to the builder while xorriso writes the ISO',
    sig: 'SIGINT',
    group: false,
    at: (d) => !!findUnder(d, /^\.appliance\.iso\.tmp-/),
  },
  {
    name: 'SIGTERM to the builder while xorriso writes the ISO',
    sig: 'SIGTERM',
    group: false,
    at: (d) => !!findUnder(d, /^\.appliance\.iso\.tmp-/),
  },
  {
    name: 'Ctrl-C (SIGINT to the process group) while xorriso writes the ISO',
    sig: 'SIGINT',
    group: true,
    at: (d) => !!findUnder(d, /^\.appliance\.iso\.tmp-/),
  },
  {
    name: 'Ctrl-C twice (impatient user) while xorriso writes the ISO',
    sig: 'SIGINT',
    group: true,
    twice: true,
    at: (d) => !!findUnder(d, /^\.appliance\.iso\.tmp-/),
  },
  { name: 'SIGTERM right after the output was locked', sig: 'SIGTERM', group: false, at: (d) => ls(d).length >= 0 },
]

for (const p of points) {
  t.test(p.name, async (t) => {
    before = snap()
    const { proc, tmp } = startBuild()
    const tmpOut = join(parent, `.out.tmp-${proc.pid}`)
    await waitFor(() => ls(parent).includes(`.out.tmp-${proc.pid}`) && p.at(tmpOut), 'the chosen point of the build')
    const target = p.group ? -proc.pid : proc.pid
    process.kill(target, p.sig)
    if (p.twice) {
      await new Promise((r) => setTimeout(r, 5))
      try {
        process.kill(target, p.sig)
      } catch {
        // already gone
      }
    }
    const r = await proc.done
    const outcome = await checkAfter(t, p.name, proc, r, p.sig, tmp, before)
    t.equal(outcome, 'interrupted', 'a signal in the middle of the build interrupts it')
    if (p.twice) t.match(r.stderr, /interrupted again by SIGINT: stopping now/, 'the second Ctrl-C took the hard way out')
  })
}

t.test(`signals after random delays (FAULT_SEED=${seed})`, async (t) => {
  const runs = Number(process.env.FAULT_RUNS ?? 4)
  const tally: Record<string, number> = {}
  for (let i = 0; i < runs; i++) {
    before = snap()
    const sig = i % 2 ? 'SIGTERM' : 'SIGINT'
    const group = rnd(2) === 1
    const delay = rnd(Math.max(1, Math.round(fullMs * 0.9)))
    const { proc, tmp } = startBuild()
    await new Promise((r) => setTimeout(r, delay))
    try {
      process.kill(group ? -proc.pid : proc.pid, sig)
    } catch {
      // already exited
    }
    const r = await proc.done
    const what = `run ${i}: ${sig}${group ? ' to the group' : ''} after ${delay} ms`
    const outcome = await checkAfter(t, what, proc, r, sig, tmp, before)
    tally[outcome] = (tally[outcome] ?? 0) + 1
  }
  t.comment(`outcomes: ${JSON.stringify(tally)} (full build ${fullMs} ms)`)
})

// A tool that is there but too old is named with what we need and what it
// said: when run, by the up-front check of the tools a stage declares, and
// by `doctor`.
import t from 'tap'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseVersion, run, versionAtLeast } from '../builder/exec.js'
import { MissingToolError } from '../builder/errors.js'
import { toolProblems } from '../builder/commands/tool-check.js'
import { FETCH_TOOLS } from '../builder/payload/fetch.js'
import { runCli } from './helpers/cli.js'

t.test('version parsing and comparison', async (t) => {
  t.same(parseVersion('skopeo version 1.9.3'), [1, 9, 3])
  t.same(parseVersion('xorriso 1.5.4 : RockRidge'), [1, 5, 4])
  t.same(parseVersion('tool 2.10'), [2, 10, 0])
  t.equal(parseVersion('no digits here'), null)
  t.ok(versionAtLeast([1, 6, 0], '1.6.0'))
  t.ok(versionAtLeast([1, 10, 0], '1.6.0'), '1.10 is newer than 1.6')
  t.notOk(versionAtLeast([1, 5, 9], '1.6.0'))
  t.ok(versionAtLeast([2, 0, 0], '1.6.0'))
})

t.test('an old skopeo is refused by name, with its version and the minimum', async (t) => {
  const bin = mkdtempSync(join(tmpdir(), 'ma-oldtool-'))
  writeFileSync(join(bin, 'skopeo'), '#!/bin/sh\necho "skopeo version 1.5.0"\n')
  chmodSync(join(bin, 'skopeo'), 0o755)
  const saved = process.env.PATH
  process.env.PATH = `${bin}:${saved}`
  t.teardown(() => void (process.env.PATH = saved))
  const err = await run('skopeo', ['inspect', 'oci:/nonexistent'], { why: 'to copy images' }).then(
    () => null,
    (e: unknown) => e,
  )
  t.type(err, MissingToolError)
  t.match((err as Error).message, /skopeo 1\.6\.0 or newer is needed; .*skopeo says "skopeo version 1\.5\.0" \(needed to copy images\)/)
  t.match((err as MissingToolError).hint, /apt-get install skopeo/)

  // The minimum comes from the declaration `images fetch` makes, and the up-front check says it too.
  t.same(
    FETCH_TOOLS.map((n) => [n.tool, n.minVersion]),
    [['skopeo', '1.6.0']],
  )
  const problems = await toolProblems(FETCH_TOOLS)
  t.equal(problems.length, 1)
  t.match(
    problems[0],
    /^skopeo 1\.6\.0 or newer is needed; .*skopeo says "skopeo version 1\.5\.0" .*: install a newer one, apt-get install skopeo or dnf install skopeo$/,
  )

  const doc = await runCli(['doctor', '--json'], { env: { PATH: process.env.PATH } })
  const row = (JSON.parse(doc.stdout) as { tool: string; found: boolean; ok: boolean; tooOld: string | null }[]).find(
    (r) => r.tool === 'skopeo',
  )
  t.same(row && { found: row.found, ok: row.ok }, { found: true, ok: false }, 'doctor: found, but not ok')
  t.match(row?.tooOld, /skopeo 1\.6\.0 or newer is needed; .*says "skopeo version 1\.5\.0"/)
  const text = await runCli(['doctor'], { env: { PATH: process.env.PATH } })
  t.match(text.stdout, /^too old\s+skopeo\s+1\.6\.0 or newer needed: apt-get install skopeo or dnf install skopeo\s+images fetch$/m)
})

// A tool that is there but too old is named with what we need and what it said.
import t from 'tap'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseVersion, run, versionAtLeast } from '../builder/exec.js'
import { MissingToolError } from '../builder/errors.js'

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
})

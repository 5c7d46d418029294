// `npm run format:check` as part of the suite: the code in builder/ and test/
// is as prettier (.prettierrc.json) writes it, so a change shows only what it
// changes. A failure names the files; `npm run format` fixes them.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

t.test('prettier --check builder test', async (t) => {
  const r = spawnSync(process.execPath, ['node_modules/prettier/bin/prettier.cjs', '--check', 'builder', 'test'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  const unformatted = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('[warn] ') && !l.includes('Code style issues'))
    .map((l) => l.slice(7))
  t.same(unformatted, [], 'no file needs formatting (run: npm run format)')
  t.equal(r.status, 0, r.stdout + r.stderr)
})

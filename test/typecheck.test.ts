// `npm test` must type-check the whole project (tsc --noEmit, strict).
import t from 'tap'
import { spawnSync } from 'node:child_process'

t.test('tsc --noEmit passes on the whole project', async (t) => {
  const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.'], {
    encoding: 'utf8',
  })
  t.equal(r.status, 0, r.stdout + r.stderr)
})

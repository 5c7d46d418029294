// builder/atomic.ts: a file or directory appears whole or not at all, with the
// mode asked for, and no temp is left beside it after a failure or a hard exit.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempBeside, withTemp, writeFileAtomic } from '../builder/atomic.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const ls = async (d: string) => (await readdir(d)).sort()

t.test('the temp name is hidden, beside the destination, with the pid, and unique', async (t) => {
  const a = tempBeside('/x/y/out.iso')
  t.equal(dirname(a), '/x/y')
  t.match(basename(a), new RegExp(`^\\.out\\.iso\\.tmp-${process.pid}-[0-9a-f]{8}$`))
  t.not(a, tempBeside('/x/y/out.iso'))
})

t.test('writeFileAtomic writes the whole data, replaces an old file, keeps the mode', async (t) => {
  const dir = t.testdir()
  const p = join(dir, 'secret.json')
  await writeFile(p, 'old content that is longer than the new one')
  const prev = process.umask(0o077) // the mode is set exactly, not narrowed by the umask
  try {
    await writeFileAtomic(p, Buffer.from('{"a":1}\n'), { mode: 0o640, fsync: true })
  } finally {
    process.umask(prev)
  }
  t.equal(await readFile(p, 'utf8'), '{"a":1}\n')
  t.equal((await stat(p)).mode & 0o777, 0o640)
  await writeFileAtomic(p, 'x')
  t.equal((await stat(p)).mode & 0o777, 0o644, 'default mode 0644')
  t.same(await ls(dir), ['secret.json'], 'no temp left')

  await writeFileAtomic(join(dir, 'a', 'b', 'c.txt'), 'deep', { mkdir: true })
  t.equal(await readFile(join(dir, 'a', 'b', 'c.txt'), 'utf8'), 'deep')
})

t.test('a thrown error leaves the destination untouched and no temp', async (t) => {
  const dir = t.testdir({ 'out.img': 'previous' })
  const dest = join(dir, 'out.img')
  let seen = ''
  await t.rejects(
    withTemp(dest, async (tmp) => {
      seen = tmp
      await writeFile(tmp, 'half')
      throw new Error('tool failed')
    }),
    /tool failed/,
  )
  t.equal(dirname(seen), dir, 'the temp was beside the destination')
  t.equal(await readFile(dest, 'utf8'), 'previous')
  t.same(await ls(dir), ['out.img'])

  // a temp directory with files in it is removed too
  await t.rejects(
    withTemp(join(dir, 'tree'), async (tmp) => {
      await mkdir(join(tmp, 'sub'), { recursive: true })
      await writeFile(join(tmp, 'sub', 'f'), 'x')
      throw new Error('aborted')
    }),
  )
  t.same(await ls(dir), ['out.img'])
})

t.test('directory swap: replace puts the new tree in place of the old one', async (t) => {
  const dir = t.testdir({ tree: { 'old.txt': 'old', sub: { x: 'x' } } })
  const dest = join(dir, 'tree')
  // without replace a non-empty directory cannot be renamed over: refused, old kept
  await t.rejects(withTemp(dest, (tmp) => mkdir(tmp).then(() => writeFile(join(tmp, 'new.txt'), 'new'))))
  t.same(await ls(dest), ['old.txt', 'sub'])
  const r = await withTemp(
    dest,
    async (tmp) => {
      await mkdir(tmp)
      await writeFile(join(tmp, 'new.txt'), 'new')
      return 42
    },
    { replace: true },
  )
  t.equal(r, 42, 'the work result is returned')
  t.same(await ls(dest), ['new.txt'])
  t.same(await ls(dir), ['tree'], 'neither temp nor the old tree left beside it')
  // a first write (no old tree) works the same way
  await withTemp(join(dir, 'fresh'), (tmp) => mkdir(tmp), { replace: true })
  t.same(await ls(dir), ['fresh', 'tree'])
})

t.test('a hard exit while writing (process.exit skips catch/finally) removes the temp', async (t) => {
  const dir = t.testdir()
  const script = `
    import { withTemp } from ${JSON.stringify(join(ROOT, 'builder/atomic.ts'))}
    import { writeFileSync } from 'node:fs'
    await withTemp(${JSON.stringify(join(dir, 'out.iso'))}, async (tmp) => {
      writeFileSync(tmp, 'half written')
      process.exit(3)
    })`
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' })
  t.equal(r.status, 3, r.stderr)
  t.same(await ls(dir), [], 'no temp and no output')
})

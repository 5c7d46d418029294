// Golden files: compare generated text with a reviewed copy under a
// fixture's expected/ directory; `UPDATE_GOLDEN=1` rewrites the copies
// instead (review the diff before committing it). An update run is not a
// test run: every golden() call in it fails, saying whether it rewrote the
// file, and the process ends with how many files were rewritten, so an
// update can never pass for a green run.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1'

interface Asserts {
  ok(value: unknown, message: string): unknown
  equal(found: unknown, wanted: unknown, message: string): unknown
  fail(message: string): unknown
}

const updated = { rewritten: 0, unchanged: 0 }
let reporting = false

/** Assert that text equals the golden file at path (or write it, when updating). */
export function golden(t: Asserts, path: string, text: string, label: string): void {
  if (UPDATE_GOLDEN) {
    const same = existsSync(path) && readFileSync(path, 'utf8') === text
    if (!same) {
      mkdirSync(dirname(path), { recursive: true })
      writeFileSync(path, text)
    }
    updated[same ? 'unchanged' : 'rewritten']++
    if (!reporting) {
      reporting = true
      process.on('exit', () => {
        process.stderr.write(
          `UPDATE_GOLDEN=1: ${updated.rewritten} golden file(s) rewritten, ${updated.unchanged} unchanged; not a test run: review the diff, then run the tests\n`,
        )
        process.exitCode = 1
      })
    }
    t.fail(`UPDATE_GOLDEN=1: ${same ? 'unchanged' : 'rewrote'} ${label} (${path}); not a test run`)
    return
  }
  t.ok(existsSync(path), `${label} golden exists (UPDATE_GOLDEN=1 to create)`)
  if (existsSync(path)) t.equal(text, readFileSync(path, 'utf8'), label)
}

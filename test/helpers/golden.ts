// Golden files: compare generated text with a reviewed copy under a
// fixture's expected/ directory; `UPDATE_GOLDEN=1` rewrites the copies
// instead (review the diff before committing it).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1'

interface Asserts {
  ok(value: unknown, message: string): unknown
  equal(found: unknown, wanted: unknown, message: string): unknown
}

/** Assert that text equals the golden file at path (or write it, when updating). */
export function golden(t: Asserts, path: string, text: string, label: string): void {
  if (UPDATE_GOLDEN) {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text)
    return
  }
  t.ok(existsSync(path), `${label} golden exists (UPDATE_GOLDEN=1 to create)`)
  if (existsSync(path)) t.equal(text, readFileSync(path, 'utf8'), label)
}

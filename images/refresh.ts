// Refresh the stack image lock on a connected machine:
//   npx tsx images/refresh.ts [quay|distribution …] [--authfile F] [--check]
// For each image, reads the manifest (list) its tag points at now with
// `skopeo inspect --raw`, takes its sha256 (the same bytes the registry
// serves, so the same digest a pull by digest verifies) and writes it into
// images/<flavor>.lock.json with verified=true. --check only reports drift
// and exits 1 when a pinned digest is no longer what the tag points at.

import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import type { Flavor } from '../builder/config/types.js'
import { sha256Bytes } from '../builder/payload/digest.js'
import { IMAGES_DIR, type StackLock } from '../builder/payload/lock.js'
import { skopeoInspectRaw } from '../builder/tools/skopeo.js'

const { values, positionals } = parseArgs({
  options: { authfile: { type: 'string' }, check: { type: 'boolean' } },
  allowPositionals: true,
  strict: true,
})
const flavors = (positionals.length ? positionals : ['quay', 'distribution']) as Flavor[]
let drift = 0
for (const flavor of flavors) {
  const file = `${IMAGES_DIR}${flavor}.lock.json`
  const lock = JSON.parse(readFileSync(file, 'utf8')) as StackLock
  for (const img of lock.images) {
    const raw = await skopeoInspectRaw({ ref: `docker://${img.ref}`, authfile: values.authfile ?? process.env.REGISTRY_AUTH_FILE })
    const digest = sha256Bytes(raw)
    const same = digest === img.digest
    console.log(`${same ? 'same   ' : 'CHANGED'} ${img.ref} ${digest}${same ? '' : ` (was ${img.digest})`}`)
    if (!same) drift++
    img.digest = digest
    img.verified = true
    img.source = `skopeo inspect --raw docker://${img.ref} | sha256sum, ${new Date().toISOString().slice(0, 10)}`
  }
  if (!values.check) {
    writeFileSync(`${file}.tmp`, JSON.stringify(lock, null, 2) + '\n')
    renameSync(`${file}.tmp`, file)
  }
}
process.exit(values.check && drift ? 1 : 0)

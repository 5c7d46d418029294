// The RHEL 8 minors the builder knows are listed once, in builder/rhel.ts
// (RHEL_MINORS). The RhelMinor type comes from that list, and the podman table
// (builder/registry/quadlet-keys.ts) and the cloud-init table
// (builder/media/cloud-init-forms.ts) are Record<RhelMinor, …>: tsc refuses
// a missing or extra row. The config schema's enum for host.rhel stays in
// schema.json (the file is handed to editors as it is), so this test ties it
// to the list, in order: a minor added to one and not the other fails here
// with the minor named, and every minor loads.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { loadConfigText, SCHEMA_PATH } from '../builder/config/load.js'
import { DEFAULTS } from '../builder/config/normalize.js'
import { RHEL_CLOUD_INIT } from '../builder/media/cloud-init-forms.js'
import { RHEL_PODMAN } from '../builder/registry/quadlet-keys.js'
import { RHEL_MINORS } from '../builder/rhel.js'

const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as { definitions: { host: { properties: { rhel: { enum: string[] } } } } }
const minors = schema.definitions.host.properties.rhel.enum

t.test('schema enum, RHEL_MINORS and the tables list the same minors, in the same order', async (t) => {
  t.ok(minors.length >= 7, `${minors.length} minors in schema.json`)
  t.same(minors, [...RHEL_MINORS], 'schema.json host.rhel enum is RHEL_MINORS (builder/rhel.ts), in order')
  t.same(Object.keys(RHEL_PODMAN), [...RHEL_MINORS], 'RHEL_PODMAN (quadlet-keys.ts) has a row for each minor, no other')
  t.same(Object.keys(RHEL_CLOUD_INIT), [...RHEL_MINORS], 'RHEL_CLOUD_INIT (cloud-init-forms.ts) too')
  t.ok(minors.includes(DEFAULTS.rhel), `the default (${DEFAULTS.rhel}) is one of them`)
})

t.test('every minor loads; one the tables do not know is refused at host.rhel', async (t) => {
  for (const m of minors) {
    const loaded = loadConfigText(`apiVersion: mirror-appliance/v1\nhost:\n  rhel: "${m}"\n  disk: { device: vda }\n`, 'a.yaml', {
      baseDir: '/',
    })
    t.equal(loaded.config.host.rhel, m)
  }
  t.throws(
    () => loadConfigText('apiVersion: mirror-appliance/v1\nhost:\n  rhel: "8.11"\n  disk: { device: vda }\n', 'a.yaml', { baseDir: '/' }),
    /a\.yaml:3:9 host\.rhel: must be one of 8\.4, /,
  )
})

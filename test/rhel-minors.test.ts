// The RHEL 8 minors the builder knows are listed in three places that must
// agree: the config schema's enum for host.rhel (what a config may say), the
// podman table (builder/registry/quadlet-keys.ts: which quadlet keys a host
// gets) and the cloud-init table (builder/media/cloud-init-forms.ts). The
// RhelMinor type ties the two tables to each other (Record<RhelMinor, …>:
// tsc refuses a missing or extra row); test/config-schema.test.ts ties the
// type to the schema. This test ties the schema to the tables directly, in
// order, so a minor added to the schema without its podman version fails here
// with the minor named, and every minor loads.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { loadConfigText, SCHEMA_PATH } from '../builder/config/load.js'
import { DEFAULTS } from '../builder/config/normalize.js'
import { RHEL_CLOUD_INIT } from '../builder/media/cloud-init-forms.js'
import { RHEL_PODMAN } from '../builder/registry/quadlet-keys.js'

const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as { definitions: { host: { properties: { rhel: { enum: string[] } } } } }
const minors = schema.definitions.host.properties.rhel.enum

t.test('schema enum, podman table and cloud-init table list the same minors, in the same order', async (t) => {
  t.ok(minors.length >= 7, `${minors.length} minors in schema.json`)
  t.same(Object.keys(RHEL_PODMAN), minors, 'RHEL_PODMAN (quadlet-keys.ts) has a row for each minor the schema allows, no other')
  t.same(Object.keys(RHEL_CLOUD_INIT), minors, 'RHEL_CLOUD_INIT (cloud-init-forms.ts) too')
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

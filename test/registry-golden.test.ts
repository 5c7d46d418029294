// Golden files for the registry host: every generated text file of the host
// spec (units, configs, first-boot script, motd), for three cases, plus a
// listing of every file with its mode and owner. Secret and key material is
// listed but not stored. Refresh after a reviewed change:
//   UPDATE_GOLDEN=1 npx tap test/registry-golden.test.ts
import t from 'tap'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import { golden } from './helpers/golden.js'

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))

for (const name of ['registry-quay', 'registry-quay-rhel88', 'registry-distribution-rhel86']) {
  t.test(name, async (t) => {
    const loaded = loadConfig(join(FIXTURES, name, 'appliance.yaml'))
    const host = planAppliance(loaded, { epoch: 1_700_000_000, seed: 'golden' }).plan.host
    const expected = join(FIXTURES, name, 'expected')
    const listing = [
      ...host.dirs.map((d) => `d ${d.mode.toString(8).padStart(4, '0')} ${d.owner}:${d.group} ${d.path}`),
      ...host.files.map((f) => `f ${f.mode.toString(8).padStart(4, '0')} ${f.owner}:${f.group} ${f.path}${f.secret ? ' (secret)' : ''}`),
      `enable ${host.enableUnits.join(' ')}`,
      `firewall ${host.firewallPorts.join(' ')}`,
    ].join('\n') + '\n'
    const outputs: [string, string][] = [['LISTING', listing]]
    for (const f of host.files) {
      if (f.secret || /\.(crt|cert|key)$/.test(f.path)) continue
      outputs.push([`rootfs${f.path}`, String(f.contents)])
    }
    for (const [rel, text] of outputs) golden(t, join(expected, rel), text, rel)
  })
}

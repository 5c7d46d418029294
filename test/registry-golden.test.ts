// Golden files for the registry host: every generated text file of the host
// spec (units, configs, first-boot script, motd), for three cases, plus a
// listing of every file with its mode and owner. Secret and key material is
// listed but not stored; the static host scripts (templates/host/: first boot,
// the library, mirror-registryctl) are checked to be installed verbatim, not
// copied into every fixture. Refresh after a reviewed change:
//   UPDATE_GOLDEN=1 npx tap test/registry-golden.test.ts
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../builder/config/load.js'
import { planAppliance } from '../builder/plan/plan.js'
import { golden } from './helpers/golden.js'

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))
const HOST_SCRIPTS = fileURLToPath(new URL('../templates/host/', import.meta.url))
const STATIC = new Map(readdirSync(HOST_SCRIPTS).map((n) => [readFileSync(join(HOST_SCRIPTS, n), 'utf8'), n]))

for (const name of ['registry-quay', 'registry-quay-rhel88', 'registry-distribution-rhel86']) {
  t.test(name, async (t) => {
    const loaded = loadConfig(join(FIXTURES, name, 'appliance.yaml'))
    const host = planAppliance(loaded, { epoch: 1_700_000_000, seed: 'golden' }).plan.host
    const expected = join(FIXTURES, name, 'expected')
    const listing =
      [
        ...host.dirs.map((d) => `d ${d.mode.toString(8).padStart(4, '0')} ${d.owner}:${d.group} ${d.path}`),
        ...host.files.map((f) => `f ${f.mode.toString(8).padStart(4, '0')} ${f.owner}:${f.group} ${f.path}${f.secret ? ' (secret)' : ''}`),
        `enable ${host.enableUnits.join(' ')}`,
        `firewall ${host.firewallPorts.join(' ')}`,
      ].join('\n') + '\n'
    const outputs: [string, string][] = [['LISTING', listing]]
    const verbatim: string[] = []
    for (const f of host.files) {
      if (f.secret || /\.(crt|cert|key)$/.test(f.path)) continue
      const source = STATIC.get(String(f.contents))
      if (source) verbatim.push(`${f.path} <- templates/host/${source}`)
      else outputs.push([`rootfs${f.path}`, String(f.contents)])
    }
    t.same(
      verbatim.map((v) => v.replace(/ <- .*/, '')).sort(),
      ['/usr/local/bin/mirror-registryctl', '/usr/local/libexec/mirror-appliance/firstboot', '/usr/local/libexec/mirror-appliance/lib.sh'],
      `the static host scripts are installed verbatim: ${verbatim.join(', ')}`,
    )
    for (const [rel, text] of outputs) golden(t, join(expected, rel), text, rel)
  })
}

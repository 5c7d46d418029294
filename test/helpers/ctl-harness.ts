// mirror-registryctl run for real (bash) from an extracted bundle against a
// scratch root (MA_ROOT), with recording fakes on PATH for the host tools
// (test/helpers/ctl-fakebin/fake, which hands first boot's tools to
// test/helpers/fakebin/fake). openssl, tar, sha256sum, df, du, htpasswd,
// chown and friends are the real ones.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Plan } from '../../builder/plan/types.js'
import { extractedBundle } from './bundle-fixture.js'

const CTL_FAKE = fileURLToPath(new URL('./ctl-fakebin/fake', import.meta.url))
const BASE_FAKE = fileURLToPath(new URL('./fakebin/fake', import.meta.url))
export const FAKED = [
  'podman',
  'skopeo',
  'systemctl',
  'curl',
  'update-ca-trust',
  'restorecon',
  'getent',
  'ss',
  'getenforce',
  'timedatectl',
  'firewall-cmd',
  'ssh',
  'scp',
  'useradd',
  'groupadd',
]

export interface CtlHarness {
  base: string
  root: string
  bundleDir: string
  tarball: string
  log: string
  /** Run the bundle's mirror-registryctl (or `script`) with MA_ROOT and the fakes */
  run(args: string[], env?: Record<string, string>, script?: string, input?: string): { status: number | null; out: string }
  calls(): string[]
  /** path -> "mode size sha256" of every entry under the root */
  snapshot(): Map<string, string>
  read(p: string): string
}

export const RHEL_OS_RELEASE =
  'NAME="Red Hat Enterprise Linux"\nVERSION="8.10 (Ootpa)"\nID="rhel"\nVERSION_ID="8.10"\nPRETTY_NAME="Red Hat Enterprise Linux 8.10 (Ootpa)"\n'

export async function ctlHarness(plan: Plan, opts: { content?: number; teardown: (fn: () => void) => void }): Promise<CtlHarness> {
  const base = mkdtempSync(join(tmpdir(), 'registryctl-'))
  opts.teardown(() => rmSync(base, { recursive: true, force: true }))
  const root = join(base, 'root')
  const bin = join(base, 'bin')
  const fbase = join(base, 'fbase')
  const log = join(base, 'calls.log')
  for (const d of [bin, fbase, join(root, 'etc'), join(root, 'var/tmp')]) mkdirSync(d, { recursive: true })
  for (const tool of FAKED) {
    symlinkSync(CTL_FAKE, join(bin, tool))
    symlinkSync(BASE_FAKE, join(fbase, tool))
  }
  writeFileSync(join(root, 'etc/os-release'), RHEL_OS_RELEASE)
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n')
  // what the fake skopeo answers for each pushed tag: the manifest whose sha256 images.tsv lists
  const manifests = join(base, 'manifests')
  mkdirSync(manifests)
  const content = opts.content ?? 1
  for (let i = 1; i <= content; i++) writeFileSync(join(manifests, `4.14.${i}`), `{"manifest": ${i}}`)
  const { tarball, bundleDir } = await extractedBundle(base, plan, content)
  const env0 = {
    PATH: `${bin}:${process.env.PATH}`,
    MA_ROOT: root,
    FAKE_LOG: log,
    FAKE_BASE: fbase,
    FAKE_MANIFESTS: manifests,
    MA_HEALTH_TIMEOUT: '0',
    MA_POLL_INTERVAL: '0',
    MA_MIN_FREE_KB: '1024',
    TMPDIR: join(base),
  }
  const h: CtlHarness = {
    base,
    root,
    bundleDir,
    tarball,
    log,
    run(args, env = {}, script = join(bundleDir, 'mirror-registryctl'), input = '') {
      const r = spawnSync('bash', [script, ...args], { encoding: 'utf8', env: { ...env0, ...env }, stdio: ['pipe', 'pipe', 'pipe'], input })
      return { status: r.status, out: r.stdout + r.stderr }
    },
    calls: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((c) => c.replaceAll(root, 'ROOT'))
        : [],
    snapshot() {
      const out = new Map<string, string>()
      const walk = (rel: string) => {
        for (const n of readdirSync(join(root, rel)).sort()) {
          const r = rel ? `${rel}/${n}` : n
          const st = lstatSync(join(root, r))
          if (st.isDirectory()) {
            out.set(r + '/', `${(st.mode & 0o7777).toString(8)} dir ${st.uid}:${st.gid}`)
            walk(r)
          } else if (st.isSymbolicLink()) out.set(r, `link ${readlinkSync(join(root, r))}`)
          else
            out.set(
              r,
              `${(st.mode & 0o7777).toString(8)} ${st.size} ${st.uid}:${st.gid} ${createHash('sha256')
                .update(readFileSync(join(root, r)))
                .digest('hex')}`,
            )
        }
      }
      walk('')
      return out
    },
    read: (p) => readFileSync(join(root, p), 'utf8'),
  }
  return h
}

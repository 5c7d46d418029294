// mirror-registryctl against a REAL registry: Debian's docker-registry run
// from the generated config.yml, htpasswd, certificate and key that
// mirror-registryctl installed under a scratch root. systemctl here REALLY
// stops and starts that process, with the unit's Volume= host paths put where
// podman would mount them; skopeo is the real one except for loading into
// containers-storage (podman cannot run here); the preflight probes stay
// recording fakes (test/helpers/ctl-fakebin/fake).
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CtlHarness } from './ctl-harness.js'
import { FAKED } from './ctl-harness.js'
import { freePort } from './net.js'
export { freePort }

const CTL_FAKE = fileURLToPath(new URL('./ctl-fakebin/fake', import.meta.url))

// systemctl that runs registry.service as a plain docker-registry process
export const SYSTEMCTL = `#!/bin/bash
set -u
printf 'systemctl %s\\n' "$*" >>"$FAKE_LOG"
unit=$ROOT/etc/containers/systemd/registry.container
pidf=$E2E_STATE/registry.pid
running() { [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }
stop() {
  if running; then
    pid=$(cat "$pidf"); kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidf"
}
start() {
  running && return 0
  cfg=$E2E_STATE/config.yml
  src=
  sedargs=()
  while IFS= read -r line; do
    v=\${line#Volume=}; host=\${v%%:*}; rest=\${v#*:}; ctr=\${rest%%:*}
    if [ "$ctr" = /etc/docker/registry/config.yml ]; then src=$ROOT$host; continue; fi
    sedargs+=(-e "s#: $ctr\\(/\\|\$\\)#: $ROOT$host\\1#")
  done < <(grep '^Volume=' "$unit")
  # values unquoted first (the generated YAML quotes them with JSON strings)
  sed -e 's#: "\\(.*\\)"$#: \\1#' "$src" | sed "\${sedargs[@]}" -e "s#^\\(  *addr:\\).*#\\1 127.0.0.1:$E2E_PORT#" >"$cfg"
  env -u AWS_CA_BUNDLE setsid docker-registry serve "$cfg" >>"$E2E_STATE/registry.log" 2>&1 &
  echo $! >"$pidf"
  # like a unit that is up once its process listens (or gone once it died)
  for _ in $(seq 100); do
    running || return 0
    (exec 3<>"/dev/tcp/127.0.0.1/$E2E_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
}
case "$1" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  is-active) running && echo active || { echo inactive; exit 3; } ;;
esac
exit 0
`
// skopeo: real, except loading into containers-storage (podman cannot run here)
export const SKOPEO = `#!/bin/bash
for a in "$@"; do case "$a" in containers-storage:*) printf 'skopeo %s\\n' "$*" >>"$FAKE_LOG"; exit 0 ;; esac; done
exec /usr/bin/skopeo --insecure-policy "$@"
`

export interface RealRegistry {
  /** environment for h.run(args, env, ctl): real curl/openssl/skopeo, systemctl running the registry */
  env: Record<string, string>
  bin: string
  state: string
  /** the installed script */
  ctl: string
  addr: string
  sysctl(args: string[]): void
  log(): string
}

/** Day-2 tools for an installed harness: call after h.run(['install']). Stops the registry at teardown. */
export function realRegistry(h: CtlHarness, port: number, teardown: (fn: () => void) => void, skopeo = SKOPEO): RealRegistry {
  const bin = join(h.base, 'e2e-bin')
  const state = join(h.base, 'e2e-state')
  mkdirSync(bin)
  mkdirSync(state)
  for (const tool of FAKED.filter((x) => !['systemctl', 'skopeo', 'curl'].includes(x))) symlinkSync(CTL_FAKE, join(bin, tool))
  writeFileSync(join(bin, 'systemctl'), SYSTEMCTL)
  writeFileSync(join(bin, 'skopeo'), skopeo)
  chmodSync(join(bin, 'systemctl'), 0o755)
  chmodSync(join(bin, 'skopeo'), 0o755)
  const env = {
    PATH: `${bin}:${process.env.PATH}`,
    ROOT: h.root,
    E2E_STATE: state,
    E2E_PORT: String(port),
    MA_REGISTRY: `127.0.0.1:${port}`,
    MA_HEALTH_TIMEOUT: '30',
    MA_POLL_INTERVAL: '0.2',
  }
  const sysctl = (args: string[]) => {
    spawnSync(join(bin, 'systemctl'), args, { env: { ...process.env, ...env, FAKE_LOG: h.log } })
  }
  teardown(() => sysctl(['stop']))
  const log = () => (existsSync(join(state, 'registry.log')) ? readFileSync(join(state, 'registry.log'), 'utf8') : '')
  return { env, bin, state, ctl: join(h.root, 'usr/local/bin/mirror-registryctl'), addr: `127.0.0.1:${port}`, sysctl, log }
}

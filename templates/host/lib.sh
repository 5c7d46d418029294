# shellcheck shell=bash
# mirror-appliance's host library: what first boot (firstboot) and
# mirror-registryctl both do on a registry host, written once. A static file
# (templates/host/lib.sh in the builder), installed at
# /usr/local/libexec/mirror-appliance/lib.sh. Sourced after the host's facts
# (/etc/mirror-appliance/host.env, written by builder/registry/facts.ts),
# whose names it reads: REGISTRY_HOST, PORT, REGISTRY_ADDRESS, CA_ANCHOR,
# HEALTH_PATH, HEALTH_CODE, UNITS, OUT_DIR, BUILT_DATA_DIR, OPEN_UNITS …
# Sourcing it defines functions and changes no shell option.
#
# The caller sets PROG (its name in messages), HEALTH_TIMEOUT and
# POLL_INTERVAL (seconds). MA_ROOT prefixes every host path: tests run the
# scripts against a scratch tree; on a host it is empty.

ROOT=${MA_ROOT:-}

log() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
# die MESSAGE: say what is wrong and end the script (exit 1). First boot's
# EXIT trap turns that into a failed step, recorded and tried again.
die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

# registry: the host:port of this host's registry (MA_REGISTRY: a test's
# stand-in address)
registry() { printf '%s' "${MA_REGISTRY:-$REGISTRY_ADDRESS}"; }

# hp PATH: a host path under ROOT, with the built data directory moved to
# DATA_DIR (mirror-registryctl install --quayRoot keeps it elsewhere), and
# the registry's blob storage and Quay's database directory (BUILT_STORAGE_DIR,
# BUILT_SQLITE_DIR, inside the data directory as built) moved to STORAGE_DIR
# and SQLITE_DIR when install set them (--quayStorage, --sqliteStorage; empty:
# they stay in the data directory).
hp() {
  local p=$1
  if [ -n "${STORAGE_DIR:-}" ] && [ -n "${BUILT_STORAGE_DIR:-}" ] && in_dir "$p" "$BUILT_STORAGE_DIR"; then
    p=$STORAGE_DIR${p#"$BUILT_STORAGE_DIR"}
  elif [ -n "${SQLITE_DIR:-}" ] && [ -n "${BUILT_SQLITE_DIR:-}" ] && in_dir "$p" "$BUILT_SQLITE_DIR"; then
    p=$SQLITE_DIR${p#"$BUILT_SQLITE_DIR"}
  else
    case "$p" in
      "$BUILT_DATA_DIR" | "$BUILT_DATA_DIR"/*) p=${DATA_DIR:-$BUILT_DATA_DIR}${p#"$BUILT_DATA_DIR"} ;;
    esac
  fi
  printf '%s%s' "$ROOT" "$p"
}
# in_dir PATH DIR: PATH is DIR or a path under it (by name: nothing is resolved)
in_dir() { [ "$1" = "$2" ] || [ "${1#"$2"/}" != "$1" ]; }

# put_file SRC DEST [MODE OWNER GROUP]: DEST gets SRC's bytes atomically (a
# temp file beside it, renamed), with MODE/OWNER/GROUP, or with DEST's current
# ones when not given. A new file made in DEST's directory gets that
# directory's SELinux label, as a file written in place would.
put_file() {
  local src=$1 dest=$2 mode=${3:-} owner=${4:-} group=${5:-}
  if [ -z "$mode" ] && [ -e "$dest" ]; then
    mode=$(stat -c %a "$dest")
    owner=$(stat -c %u "$dest")
    group=$(stat -c %g "$dest")
  fi
  mkdir -p "$(dirname "$dest")"
  local tmp
  tmp=$(mktemp "$dest.XXXXXX")
  cat "$src" >"$tmp"
  chmod "${mode:-0644}" "$tmp"
  chown "${owner:-0}:${group:-0}" "$tmp"
  mv -f "$tmp" "$dest"
}

# http_code [CURL-OPTION…] URL: curl against this host's registry, trusting
# only its CA; prints the HTTP code (000: nothing answered). The registry's
# name is pinned to this host's loopback, so the checks do not depend on name
# resolution and reach a port published on 127.0.0.1 only (Quay's, until the
# init user exists); the certificate is still checked for that name.
# BODY=FILE keeps the answer.
http_code() {
  curl --silent --show-error --cacert "$ROOT$CA_ANCHOR" --max-time 30 --resolve "$REGISTRY_HOST:$PORT:127.0.0.1" \
    --output "${BODY:-/dev/null}" --write-out '%{http_code}' "$@" || true
}

# wait_health: poll https://REGISTRY/HEALTH_PATH until it answers
# HEALTH_CODE; after HEALTH_TIMEOUT seconds a warning with the last answer,
# and status 1.
wait_health() {
  local deadline=$((SECONDS + HEALTH_TIMEOUT)) code
  while :; do
    code=$(http_code "https://$(registry)$HEALTH_PATH")
    if [ "$code" = "$HEALTH_CODE" ]; then
      log "healthy: https://$(registry)$HEALTH_PATH answered $code"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      warn "https://$(registry)$HEALTH_PATH did not answer $HEALTH_CODE within ${HEALTH_TIMEOUT}s (last: $code); see: systemctl status ${UNITS[*]}"
      return 1
    fi
    sleep "$POLL_INTERVAL"
  done
}

# verify_payload DIR: every file DIR/SHA256SUMS lists is there with its
# checksum (sha256sum names the ones that are not); status 1 otherwise.
verify_payload() {
  if [ ! -f "$1/SHA256SUMS" ]; then
    warn "no payload at $1 (SHA256SUMS missing)"
    return 1
  fi
  (cd "$1" && sha256sum --quiet --strict -c SHA256SUMS)
}

# load_stack_images PAYLOAD: the payload's stack images (images.tsv rows of
# role stack) into podman's storage, named repository@digest as the units
# name them (they never pull).
load_stack_images() {
  local role name digest repo
  while IFS=$'\t' read -r role name digest repo _; do
    [ "$role" = stack ] || continue
    log "loading $repo@$digest"
    skopeo copy --quiet "oci:$1/oci:$name" "containers-storage:$repo@$digest"
  done <"$1/images.tsv"
}

# What this skopeo's copy can do, asked once: keep digests on a push
# (--preserve-digests; clusters pull by digest) and push an index alone
# (--multi-arch).
SKOPEO_PRESERVE=()
SKOPEO_MULTI_ARCH=no
SKOPEO_PROBED=no
# shellcheck disable=SC2034 # SKOPEO_MULTI_ARCH: read by first boot's push of sparse indexes
probe_skopeo() {
  [ "$SKOPEO_PROBED" = no ] || return 0
  SKOPEO_PROBED=yes
  local help
  help=$(skopeo copy --help 2>/dev/null || true)
  case "$help" in *--preserve-digests*) SKOPEO_PRESERVE=(--preserve-digests) ;; esac
  case "$help" in *--multi-arch*) SKOPEO_MULTI_ARCH=yes ;; esac
}

# push_image SRC DEST [COPY-OPTION…]: skopeo copy SRC (any transport) to
# DEST (docker://…) as the registry's init user (its pull secret, never a
# password on the command line), digests kept where this skopeo can.
push_image() {
  local src=$1 dest=$2
  shift 2
  probe_skopeo
  skopeo copy --quiet "$@" "${SKOPEO_PRESERVE[@]}" --dest-authfile "$ROOT$OUT_DIR/pull-secret.json" "$src" "$dest"
}

# raw_digest [SKOPEO-OPTION…] REF: sha256:… of the manifest (or index) REF
# names, as served.
raw_digest() {
  local out
  out=$(skopeo inspect --raw "$@" </dev/null | sha256sum) || return 1
  printf 'sha256:%s' "${out%% *}"
}

# trust_ca: the CA anchors (ours among them) into the system trust store.
trust_ca() {
  update-ca-trust extract
  if command -v restorecon >/dev/null; then
    restorecon -R "$ROOT/etc/pki/ca-trust/source/anchors" "$ROOT/etc/containers" || true
  fi
}

# same_bytes A B: both are files holding the same bytes (sha256sum, not cmp:
# coreutils is on every RHEL 8, diffutils not on every minimal one).
same_bytes() { [ -f "$1" ] && [ -f "$2" ] && [ "$(sha256sum <"$1")" = "$(sha256sum <"$2")" ]; }

# install_open_units: every unit of OPEN_UNITS as it runs once the init user
# exists, publishing its port on every address (OPEN_UNIT_SOURCES), in place
# of its live file (OPEN_UNIT_FILES), which publishes on 127.0.0.1 only until
# then. Podman's published ports are DNAT rules of its own, ahead of
# firewalld's zones: the loopback publish, not the firewall, is what keeps the
# superuser's name from being claimed from the network before first boot has
# made it. A file already in place is left alone; REPLACED_UNITS lists the units
# whose file changed. The caller reloads systemd and restarts them.
REPLACED_UNITS=()
install_open_units() {
  local i src dst
  REPLACED_UNITS=()
  for i in "${!OPEN_UNIT_FILES[@]}"; do
    src=$(hp "${OPEN_UNIT_SOURCES[$i]}")
    dst=$(hp "${OPEN_UNIT_FILES[$i]}")
    if same_bytes "$src" "$dst"; then continue; fi
    log "${OPEN_UNITS[$i]}: publishing the registry port on every address ($dst)"
    put_file "$src" "$dst" 0644 0 0
    REPLACED_UNITS+=("${OPEN_UNITS[$i]}")
  done
}

# place_registry_tree PAYLOAD STORAGE: the registry storage tree the payload
# carries (PAYLOAD/PAYLOAD_TREE_DIR: its link files only, written by the
# builder's payload/assemble.ts) made whole and moved into STORAGE, the
# directory the registry serves as its rootdirectory (distribution's
# filesystem driver). In a staging directory inside STORAGE (one filesystem,
# so the last move is a rename): the link files copied (the registry rewrites
# a tag's link in place; the payload's stay as its SHA256SUMS says), each
# blob a link names hard-linked from PAYLOAD/oci/blobs (copied when the
# payload is on another filesystem), then docker/ renamed into STORAGE. The
# time grows with the number of blobs, not their bytes: the links are made by
# one python process (platform-python, which every RHEL 8 has: dnf needs it),
# as a process per blob costs milliseconds each. STORAGE holding
# docker/ already: in place, nothing to do; a staging directory an
# interrupted run left is laid again. Status 1 (said why) on failure.
# A subshell: its umask (the registry reads 0644/0755, as a push makes them)
# stays here.
place_registry_tree() (
  umask 022
  local storage=$2 v2=docker/registry/v2 how=link hex n py
  local tree=$1/$PAYLOAD_TREE_DIR stage=$2/.mirror-appliance-tree blobs=$1/oci/blobs/sha256
  local hexes=()
  if [ -d "$storage/docker" ]; then
    rm -rf -- "$stage"
    log "the registry storage $storage holds content already: left as it is"
    return 0
  fi
  if [ ! -d "$tree/$v2/repositories" ]; then
    warn "the payload's registry tree $tree is incomplete ($v2/repositories missing)"
    return 1
  fi
  rm -rf -- "$stage" && mkdir -p -- "$stage" && cp -R -- "$tree/docker" "$stage/" || return 1
  # the blobs the registry reads: those of layer links (configs, layers) and revisions (manifests)
  mapfile -t hexes < <(find "$stage/$v2/repositories" -type f -name link \
    \( -path '*/_layers/sha256/*' -o -path '*/_manifests/revisions/sha256/*' \) -printf '%h\n' | sed 's|.*/||' | sort -u)
  for hex in "${hexes[@]}"; do
    if [[ ! $hex =~ ^[0-9a-f]{64}$ ]]; then
      warn "the payload's registry tree has a link under '$hex', not a sha256 digest"
      return 1
    fi
    if [ ! -f "$blobs/$hex" ]; then
      warn "the payload lacks blob sha256:$hex, which its registry tree names"
      return 1
    fi
  done
  [ "$(stat -c %d "$blobs/.")" = "$(stat -c %d "$stage")" ] || how=copy
  if [ "$how" = link ]; then
    for py in /usr/libexec/platform-python python3 ''; do
      if [ -n "$py" ] && command -v "$py" >/dev/null; then break; fi
    done
    if [ -z "$py" ]; then
      warn "no python (/usr/libexec/platform-python or python3) to link the blobs with"
      return 1
    fi
    # stdin: one hex a line; argv: the payload's blobs, the tree's blobs/sha256
    printf '%s\n' "${hexes[@]}" | "$py" -c '
import os, sys
src, dst = sys.argv[1], sys.argv[2]
for hex in sys.stdin.read().split():
    d = os.path.join(dst, hex[:2], hex)
    os.makedirs(d, 0o755, exist_ok=True)
    os.link(os.path.join(src, hex), os.path.join(d, "data"))
' "$blobs" "$stage/$v2/blobs/sha256" || return 1
  else
    for hex in "${hexes[@]}"; do
      mkdir -p -- "$stage/$v2/blobs/sha256/${hex:0:2}/$hex" &&
        cp --reflink=auto -- "$blobs/$hex" "$stage/$v2/blobs/sha256/${hex:0:2}/$hex/data" || return 1
    done
  fi
  # the files reach the disk before the rename that makes them the registry's
  sync
  mv -T -- "$stage/docker" "$storage/docker" || return 1
  rmdir -- "$stage"
  sync
  n=${#hexes[@]}
  if [ "$how" = link ]; then
    log "registry storage tree in $storage: $n blob(s) hard-linked from the payload, nothing pushed"
  else
    log "registry storage tree in $storage: $n blob(s) copied (the payload is on another filesystem), nothing pushed"
  fi
)

// Where the registry host keeps things. One place, so the host spec, the
// first-boot script and the tests agree.

import type { Config } from '../config/types.js'

export const STATE_DIR = '/var/lib/mirror-appliance'
export const PAYLOAD_DIR = `${STATE_DIR}/payload`
export const FIRSTBOOT_STATE_DIR = `${STATE_DIR}/firstboot`
/** ConditionPathExists=! of the first-boot units */
export const FIRSTBOOT_DONE = `${FIRSTBOOT_STATE_DIR}/done`
export const FIRSTBOOT_SCRIPT = '/usr/local/libexec/mirror-appliance/firstboot'
export const FIRSTBOOT_UNIT = 'mirror-appliance-firstboot.service'
export const FIRSTBOOT_FINISH_UNIT = 'mirror-appliance-firstboot-finish.service'
export const CONF_DIR = '/etc/mirror-appliance'
/**
 * The host's facts (builder/registry/facts.ts): a bash file first boot and
 * mirror-registryctl source. Its path is the one thing those scripts know
 * before reading it (templates/host/firstboot and mirror-registryctl name it;
 * test/host-scripts.test.ts keeps them equal to this).
 */
export const HOST_FACTS = `${CONF_DIR}/host.env`
/** The shell library both scripts source (templates/host/lib.sh), beside the first-boot script. */
export const HOST_LIB = '/usr/local/libexec/mirror-appliance/lib.sh'
/** mirror-registryctl on a host (appliance or bundle install). */
export const REGISTRYCTL_PATH = '/usr/local/bin/mirror-registryctl'
/** What a bundle-installed host records about itself (data dir, version, install state), read by day-2 commands. */
export const REGISTRYCTL_STATE = `${CONF_DIR}/registryctl.conf`
/**
 * Where the registry units that open the port to the network wait until
 * first boot has made the init user (Quay: until then the live unit publishes
 * on loopback only; see builder/registry/hostspec.ts).
 */
export const OPEN_UNITS_DIR = `${CONF_DIR}/open-units`
export const ROOT_OUT_DIR = '/root/mirror-appliance'
/** The OpenShift hand-off on the host (builder/openshift.ts), installed by first boot */
export const OPENSHIFT_OUT_DIR = `${ROOT_OUT_DIR}/openshift`
/** Where the payload carries each host's hand-off: PAYLOAD_HANDOFF_DIR/<hostname>/ */
export const PAYLOAD_HANDOFF_DIR = 'openshift'
/**
 * Where the payload carries the registry storage tree's link files
 * (payload/registry-tree.ts, distribution on the host's disk), relative to
 * the payload: first boot links the payload's blobs into a copy of it and
 * moves that into the registry's storage directory.
 */
export const PAYLOAD_TREE_DIR = 'registry-tree'
export const CA_ANCHOR = '/etc/pki/ca-trust/source/anchors/mirror-appliance-ca.crt'
export const QUADLET_DIR = '/etc/containers/systemd'
export const SYSTEMD_DIR = '/etc/systemd/system'
export const MOTD_FILE = '/etc/motd.d/mirror-appliance'
export const MOTD_READY = '/usr/local/share/mirror-appliance/motd'
/** The SSH server settings of the config (host.ssh), applied once: by the kickstart's %post, else by its unit before sshd */
export const SSHD_SETTINGS_SCRIPT = '/usr/local/libexec/mirror-appliance/sshd-settings'
export const SSHD_SETTINGS_UNIT = 'mirror-appliance-sshd-settings.service'
export const SSHD_SETTINGS_DONE = `${STATE_DIR}/sshd-settings.done`

/** host:port clients use (":443" is still written: podman and skopeo key certs.d by it) */
export function registryAddress(config: Config): string {
  return `${config.host.hostname}:${config.registry.port}`
}

/** Quay's SERVER_HOSTNAME: host, with the port unless it is 443 */
export function serverHostname(config: Config): string {
  return config.registry.port === 443 ? config.host.hostname : registryAddress(config)
}

/** Marker comments around the host-spec part of the kickstart's %post (builder/render/kickstart.ts). */
export const HOSTSPEC_BEGIN = '# >>> mirror-appliance host spec'
export const HOSTSPEC_END = '# <<< mirror-appliance host spec'
/** The kickstart copies Anaconda leaves in the installed system's /root (rewritten by first boot, step scrub-kickstart). */
export const ANACONDA_KS_COPIES = ['/root/anaconda-ks.cfg', '/root/original-ks.cfg']

/**
 * The registry watchdog (issue 19 point 7): a timer that probes the health
 * URL from the host every minute and restarts the registry units after
 * HEALTH_RESTART_AFTER failures in a row. Its state (the failure count and
 * one line per restart, which `mirror-registryctl status` reports) lives here.
 */
export const HEALTH_UNIT = 'mirror-appliance-health.service'
export const HEALTH_TIMER = 'mirror-appliance-health.timer'
export const HEALTH_STATE_DIR = `${STATE_DIR}/health`
/**
 * Certificate renewal (issue 19 point 8): a daily timer. It renews only with
 * the CA key at CA_KEY_ON_HOST, which no build ever puts there (the key stays
 * in the build's secrets/): the administrator copies it there to opt in.
 * Otherwise it warns in the journal and in CERT_MOTD.
 */
export const RENEW_UNIT = 'mirror-appliance-renew-cert.service'
export const RENEW_TIMER = 'mirror-appliance-renew-cert.timer'
export const CA_KEY_ON_HOST = `${CONF_DIR}/ca.key`
export const CERT_MOTD = '/etc/motd.d/mirror-appliance-cert'

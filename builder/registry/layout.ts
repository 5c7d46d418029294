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
export const ROOT_OUT_DIR = '/root/mirror-appliance'
/** The OpenShift hand-off on the host (builder/openshift.ts), installed by first boot */
export const OPENSHIFT_OUT_DIR = `${ROOT_OUT_DIR}/openshift`
/** Where the payload carries each host's hand-off: PAYLOAD_HANDOFF_DIR/<hostname>/ */
export const PAYLOAD_HANDOFF_DIR = 'openshift'
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

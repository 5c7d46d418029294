// The RHEL 8 minors the builder knows, listed once. The RhelMinor type comes
// from this list, and the per-minor tables (podman in
// builder/registry/quadlet-keys.ts, cloud-init in
// builder/media/cloud-init-forms.ts) are Record<RhelMinor, …>, so tsc refuses
// a table that misses a minor. The config schema's enum for host.rhel
// (builder/config/schema.json) stays a plain list in that file, because the
// file is handed to editors as it is (`init`, `mirror-appliance schema`);
// test/rhel-minors.test.ts fails when it and this list differ.
// Ground floor: imports nothing from builder/.

export const RHEL_MINORS = ['8.4', '8.5', '8.6', '8.7', '8.8', '8.9', '8.10'] as const

export type RhelMinor = (typeof RHEL_MINORS)[number]

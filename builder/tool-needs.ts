// The external programs the builder runs, and how a stage declares the ones
// it needs (osbuild/images' `getBuildPackages()`). Each media writer and
// stage exports a `ToolNeed[]` made with needTool(); the build's up-front
// check takes the declarations of the outputs a config asks for, and
// `doctor` lists every declaration (commands/tool-check.ts). What a program
// *is* (its packages, the oldest release we can use) is said once, in
// TOOL_FACTS; what it is *for*, by each stage that runs it.
// Ground floor: imports nothing, so exec.ts and every stage may import it.

/** What a program is, wherever it is needed. */
export interface ToolFacts {
  /** Debian (and Ubuntu) package that installs it: what `apt-get install` takes */
  debian: string
  /** Fedora/RHEL package that installs it, for `dnf install`; absent where none ships this program */
  rpm?: string
  /** Oldest release we can work with, when older ones lack an option we pass (checked with `--version`) */
  minVersion?: string
}

// Package names: Debian 12 as `dpkg -S` reports them (libguestfs-tools is
// the package libguestfs' docs name; it depends on the `guestfish` package
// that holds the binary); Fedora/RHEL from the spec files: libguestfs 1.59's
// libguestfs.spec (guestfish in the main package) and guestfs-tools 1.55's
// guestfs-tools.spec (`Provides: libguestfs-tools-c`, the package that held
// guestfish on RHEL 8, so one name works on both), qemu.spec
// (`%files system-x86-core` holds qemu-system-x86_64; RHEL itself ships QEMU
// only as /usr/libexec/qemu-kvm).
const FACTS = {
  xorriso: { debian: 'xorriso', rpm: 'xorriso' },
  mcopy: { debian: 'mtools', rpm: 'mtools' },
  mtype: { debian: 'mtools', rpm: 'mtools' },
  mdir: { debian: 'mtools', rpm: 'mtools' },
  mmd: { debian: 'mtools', rpm: 'mtools' },
  mlabel: { debian: 'mtools', rpm: 'mtools' },
  'qemu-img': { debian: 'qemu-utils', rpm: 'qemu-img' },
  'qemu-system-x86_64': { debian: 'qemu-system-x86', rpm: 'qemu-system-x86-core' },
  guestfish: { debian: 'libguestfs-tools', rpm: 'libguestfs-tools-c' },
  'virt-customize': { debian: 'libguestfs-tools', rpm: 'libguestfs-tools-c' },
  'mkfs.xfs': { debian: 'xfsprogs', rpm: 'xfsprogs' },
  // --preserve-digests came in skopeo 1.6.0 (skopeo issue 1761).
  skopeo: { debian: 'skopeo', rpm: 'skopeo', minVersion: '1.6.0' },
  tar: { debian: 'tar', rpm: 'tar' },
  mkfifo: { debian: 'coreutils', rpm: 'coreutils' },
  // Run by the test suite only: its fixtures and the checks of what we write.
  'grub-mkimage': { debian: 'grub-common' },
  'grub-mkstandalone': { debian: 'grub-common' },
  'mkfs.fat': { debian: 'dosfstools', rpm: 'dosfstools' },
  cpio: { debian: 'cpio', rpm: 'cpio' },
  busybox: { debian: 'busybox-static' },
  htpasswd: { debian: 'apache2-utils', rpm: 'httpd-tools' },
  'ignition-validate': { debian: 'ignition' },
  shellcheck: { debian: 'shellcheck', rpm: 'ShellCheck' },
  'docker-registry': { debian: 'docker-registry' },
} as const satisfies Record<string, ToolFacts>

/** A program the builder knows how to install: a key of TOOL_FACTS. */
export type ToolName = keyof typeof FACTS

export const TOOL_FACTS: Readonly<Record<ToolName, ToolFacts>> = FACTS

/** One stage's need of one program: what the program is, and what the stage runs it for. */
export interface ToolNeed extends ToolFacts {
  tool: ToolName
  /** Why, completing "xorriso is needed …": e.g. "to write oemdrv.iso" */
  for: string
}

/** A stage's declaration of one program it runs. */
export function needTool(tool: ToolName, purpose: string): ToolNeed {
  return { tool, for: purpose, ...TOOL_FACTS[tool] }
}

/** The command that installs a tool, on Debian and on Fedora/RHEL when it ships there. */
export function installCommand(f: ToolFacts): string {
  return `apt-get install ${f.debian}${f.rpm ? ` or dnf install ${f.rpm}` : ''}`
}

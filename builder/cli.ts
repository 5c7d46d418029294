// mirror-appliance: the command line. One table of commands; each parses its
// own flags strictly (node:util parseArgs) and returns an exit code. The
// build's flags, their help and the config keys they set are one table
// (config/flags.ts), which the config loader merges with. At the entry, the
// user's mistakes (UserError: exit 2) are told apart from the world's
// failures (exit 1) and from our bugs (stack trace + report hint).

import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UserError, FailureError } from './errors.js'
import { ConfigError, formatDiagnostic } from './config/diagnostics.js'
import { createLogger, logOptionsFromEnv, type Logger } from './log.js'
import { VERSION, type Ctx } from './context.js'
import { buildFlagsHelp, buildOptsFrom, buildParseOptions } from './config/flags.js'

interface Command {
  summary: string
  usage: string
  help: string
  options: NonNullable<ParseArgsConfig['options']>
  allowPositionals?: boolean
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[], ctx: Ctx): Promise<number>
}

const common = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  verbose: { type: 'boolean', short: 'v' },
  'no-color': { type: 'boolean' },
} as const

const configOpt = { config: { type: 'string', short: 'c' } } as const

const COMMON_HELP = `
Common options:
  -h, --help        show this help
      --json        machine-readable output on stdout
  -q, --quiet       only warnings and errors
  -v, --verbose     more detail, including the external commands run
      --no-color    no colors (also when NO_COLOR is set)`

const commands: Record<string, Command> = {
  init: {
    summary: 'write a commented example config',
    usage: 'mirror-appliance init [-o appliance.yaml] [--force]',
    help: `Writes a commented example config (the embedded default) to a file.
Never overwrites an existing file unless --force is given.

Beside it goes mirror-appliance.schema.json, the schema of this version (always
replaced), which the config's first line points editors at (see "schema").

Options:
  -o, --output FILE  where to write (default: appliance.yaml)
      --force        overwrite an existing file`,
    options: { output: { type: 'string', short: 'o' }, force: { type: 'boolean' } },
    run: async (v, _p, ctx) =>
      (await import('./commands/init.js')).init({ output: str(v.output) ?? 'appliance.yaml', force: !!v.force }, ctx),
  },
  schema: {
    summary: 'print the JSON schema of the config format, for editors',
    usage: 'mirror-appliance schema',
    help: `Prints the JSON schema (draft-07) of the config format this version reads:
the same schema "validate" checks with. "init" writes it beside the config as
mirror-appliance.schema.json, which the config's first line
  # yaml-language-server: $schema=./mirror-appliance.schema.json
points editors at. After upgrading mirror-appliance, refresh that copy:
  mirror-appliance schema > mirror-appliance.schema.json`,
    options: {},
    run: async (_v, _p, ctx) => (await import('./commands/schema.js')).schema(ctx),
  },
  validate: {
    summary: 'check a config file and report every problem',
    usage: 'mirror-appliance validate [-c appliance.yaml]',
    help: `Checks a config against the schema and the cross-field rules and reports
every problem at once as FILE:LINE:COL field: message. Exit code 2 when invalid.
Without -c the embedded default config is checked.

Options:
  -c, --config FILE  the config (default: the embedded demo config)`,
    options: { ...configOpt },
    run: async (v, _p, ctx) => (await import('./commands/validate.js')).validate({ config: str(v.config) }, ctx),
  },
  render: {
    summary: 'write the generated text files (kickstart, Butane, Ignition, host files)',
    usage: 'mirror-appliance render [-c appliance.yaml] -o DIR',
    help: `Writes every generated text file into DIR: ks.cfg, appliance.bu (Butane),
appliance.ign (Ignition), and rootfs/ with each file the host gets at its host
path, plus secrets/ (0600). Deterministic for the same config, secrets and
SOURCE_DATE_EPOCH.

Options:
  -c, --config FILE  the config (default: the embedded demo config)
  -o, --output DIR   where to write (required)
      --seed TEXT    derive generated secrets from TEXT (tests and demos only)`,
    options: { ...configOpt, output: { type: 'string', short: 'o' }, seed: { type: 'string' } },
    run: async (v, _p, ctx) =>
      (await import('./commands/render.js')).render({ config: str(v.config), output: req(v.output, '-o DIR'), seed: str(v.seed) }, ctx),
  },
  build: {
    summary: 'build the appliance media into an output directory',
    usage: 'mirror-appliance build [-c appliance.yaml] -o DIR [--iso BASE.iso] [--oemdrv] [--pxe] [--qcow2 [--base-image IMG]] [--bundle]',
    help: `Builds the media the config asks for (plus those named by flags) into DIR,
atomically: everything is written to a temp directory and renamed at the end.
Without -c the embedded demo config is used: it builds what needs no Red Hat
content and prints what a production build still needs. A flag that sets a
config key (shown after it) wins over the key in the file.

Options:
${buildFlagsHelp()}`,
    // One table for the flags, their help and the config keys they set (config/flags.ts).
    options: buildParseOptions(),
    run: async (v, _p, ctx) => (await import('./commands/build.js')).build(buildOptsFrom(v), ctx),
  },
  images: {
    summary: 'fetch, import, list and verify images in the image cache',
    usage: 'mirror-appliance images fetch|import|list|verify …',
    help: `Manages the OCI image cache that payloads are assembled from.
Run "mirror-appliance images SUBCOMMAND --help" for each subcommand.`,
    options: {},
    allowPositionals: true,
    run: async () => 0, // replaced below: images parses its own arguments
  },
  inspect: {
    summary: 'print the manifest of a built output',
    usage: 'mirror-appliance inspect PATH',
    help: `Reads a build output directory (or its manifest.json, or an ISO built by
mirror-appliance) and prints what went in: config digest, images, outputs and
their checksums. With --json the manifest itself.`,
    options: {},
    allowPositionals: true,
    run: async (_v, p, ctx) => (await import('./commands/inspect.js')).inspect({ path: req(p[0], 'PATH') }, ctx),
  },
  serve: {
    summary: 'serve a PXE/HTTP install tree',
    usage: 'mirror-appliance serve DIR [--port N] [--bind ADDR] [--prefix /PATH]',
    help: `Serves DIR (a pxe/ tree from "build --pxe") over plain HTTP, with range
requests, until Ctrl-C. Every request is logged to stderr: time, client
address, method and path, status, bytes.

The tree's ks.cfg carries the registry's TLS key and passwords: anyone who can
fetch it has them. Listen on the install network only (--bind), and stop serve
as soon as the hosts are installed.

Options:
  -p, --port N       port (default 8080)
      --bind ADDR    the address to listen on: this machine's address on the
                     install network (default 0.0.0.0, every address)
      --host ADDR    older name of --bind
      --prefix /PATH serve the tree under this URL path, for a --pxe-url that
                     has one (http://host:8080/pxe → --prefix /pxe)`,
    options: { port: { type: 'string', short: 'p' }, bind: { type: 'string' }, host: { type: 'string' }, prefix: { type: 'string' } },
    allowPositionals: true,
    run: async (v, p, ctx) =>
      (await import('./commands/serve.js')).serve(
        {
          dir: req(p[0], 'DIR'),
          port: port(v.port),
          bind: bindAddress(v.bind, v.host),
          ...(str(v.prefix) !== undefined ? { prefix: str(v.prefix)! } : {}),
        },
        ctx,
      ),
  },
  vm: {
    summary: 'boot a build in QEMU to try the appliance before burning it',
    usage: 'mirror-appliance vm DIR [--install] [--port N] [--ssh-port N] [--wait [--timeout S]] [--stop] [--print]',
    help: `Boots what "build -o DIR" wrote in QEMU: DIR/appliance.qcow2 (and
appliance-data.qcow2 when the build wrote one), always on a persistent overlay
DIR/vm/appliance.qcow2, so the built disk stays pristine while the VM's state
(first boot done, pushed images) survives from one run to the next. --fresh
throws the VM's disks away and starts from the build again.

With --install the VM installs first, from DIR/appliance.iso (build --iso) or
from a stock RHEL ISO given with --iso plus DIR/oemdrv.iso (build --oemdrv),
onto a blank sparse DIR/vm/install.qcow2, then boots the installed disk.

Networking is QEMU's user mode: the registry port (from manifest.json) is
forwarded to 127.0.0.1:PORT and SSH to 127.0.0.1:SSHPORT (free ports unless
given). No display: the serial console goes to DIR/vm/console.log. KVM is used
only when a tiny probe guest really runs under it, else software emulation
(said once; a boot then takes minutes). MIRROR_APPLIANCE_ACCEL=kvm|tcg forces
one.

Without --wait QEMU runs in the foreground, the console shown, until the guest
powers off or Ctrl-C (which stops it). With --wait QEMU runs detached and the
command returns once the registry is ready: it answers HTTPS through its own
certificate (trusting only DIR/secrets/ca.crt, checked against the registry's
host name) and serves every content image of the build by digest to the init
user (first boot has pushed them). It prints the URL, the CA file, the
credentials file and the SSH command. If QEMU stops first, first boot reports
a failure on the console, or the time runs out, it fails (exit 1) with the
console's last lines, and leaves nothing running. Stop a detached VM with --stop.

Options:
      --install         install from the installer medium first, then boot
      --iso FILE        with --install: the stock RHEL ISO, used with DIR/oemdrv.iso
      --disk-size GiB   with --install: size of the blank disk (default 64, sparse)
      --fresh           start over: discard the VM's disks in DIR/vm/
  -p, --port N          host port for the registry on 127.0.0.1 (default: a free one)
      --ssh-port N      host port for SSH on 127.0.0.1 (default: a free one)
      --wait            run detached; return once the registry is ready
      --timeout S       seconds for --wait (default 1800) or for --stop's power-off (default 60)
      --stop            stop the detached VM: ACPI power-off, killed after --timeout
      --memory MiB      guest RAM (default 4096)
      --cpus N          guest CPUs (default 2)
      --uefi            boot with OVMF (UEFI) instead of SeaBIOS
      --log FILE        serial console log (default DIR/vm/console.log)
  -n, --print           print the QEMU command line(s) and run nothing
      --kernel FILE     boot this kernel directly (debugging, guests without a boot loader)
      --initrd FILE     with --kernel: its initrd
      --append TEXT     with --kernel: its command line

With --json (and --wait) one JSON document: url, port, sshPort, caFile,
credentialsFile, pid, log, accel, hostname, pidFile, ssh.`,
    options: {
      install: { type: 'boolean' },
      iso: { type: 'string' },
      'disk-size': { type: 'string' },
      fresh: { type: 'boolean' },
      port: { type: 'string', short: 'p' },
      'ssh-port': { type: 'string' },
      wait: { type: 'boolean' },
      timeout: { type: 'string' },
      stop: { type: 'boolean' },
      memory: { type: 'string' },
      cpus: { type: 'string' },
      uefi: { type: 'boolean' },
      log: { type: 'string' },
      print: { type: 'boolean', short: 'n' },
      kernel: { type: 'string' },
      initrd: { type: 'string' },
      append: { type: 'string' },
    },
    allowPositionals: true,
    run: async (v, p, ctx) => {
      if (p.length > 1) throw new UserError(`vm: one DIR only, got ${p.length} arguments (${p.join(' ')})`)
      return (await import('./commands/vm.js')).vm(
        {
          dir: req(p[0], 'DIR (the output directory of "mirror-appliance build")'),
          install: !!v.install,
          iso: str(v.iso),
          fresh: !!v.fresh,
          port: str(v.port),
          sshPort: str(v['ssh-port']),
          wait: !!v.wait,
          timeout: str(v.timeout),
          memory: str(v.memory),
          cpus: str(v.cpus),
          uefi: !!v.uefi,
          log: str(v.log),
          print: !!v.print,
          stop: !!v.stop,
          diskSize: str(v['disk-size']),
          kernel: str(v.kernel),
          initrd: str(v.initrd),
          append: str(v.append),
        },
        ctx,
      )
    },
  },
  doctor: {
    summary: 'report the host tools present and the outputs they enable',
    usage: 'mirror-appliance doctor',
    help: `Lists the external tools mirror-appliance uses, whether each is installed
(with its version), and which outputs it enables.`,
    options: {},
    run: async (_v, _p, ctx) => (await import('./commands/doctor.js')).doctor(ctx),
  },
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
function req(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') throw new UserError(`missing ${what}`)
  return v
}
/** --bind, or its older name --host; both only when they agree. Default: every address, as serve always did. */
function bindAddress(bind: unknown, host: unknown): string {
  const b = str(bind)
  const h = str(host)
  if (b !== undefined && h !== undefined && b !== h)
    throw new UserError(`--bind ${b} and --host ${h} disagree: --host is the older name of --bind, give one`)
  return b ?? h ?? '0.0.0.0'
}
function port(v: unknown): number {
  if (v === undefined) return 8080
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UserError(`--port: must be a whole number from 1 to 65535, not ${String(v)}`)
  return n
}

function mainHelp(): string {
  const rows = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`)
  return `mirror-appliance ${VERSION}: one YAML file to boot media for a disconnected mirror registry host

Usage: mirror-appliance COMMAND [options]

Commands:
${rows.join('\n')}

Run "mirror-appliance COMMAND --help" for a command's options.
Exit codes: 0 ok, 1 failure, 2 invalid config or usage.
${COMMON_HELP}`
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(mainHelp() + '\n')
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(VERSION + '\n')
    return 0
  }
  const cmd = commands[name]
  if (!cmd) {
    const { didYouMean } = await import('./config/load.js')
    const guess = didYouMean(name, Object.keys(commands))
    process.stderr.write(
      `error: unknown command "${name}"${guess ? `; did you mean "${guess}"?` : ''}\nRun "mirror-appliance --help" for the list.\n`,
    )
    return 2
  }
  const controller = new AbortController()
  // Exit 128+signal number when interrupted, as a shell reports it (130 for
  // Ctrl-C, 143 for SIGTERM), so scripts can tell an interruption apart.
  let interruptedCode = 0
  const onSignal = (sig: NodeJS.Signals) => {
    const code = 128 + (sig === 'SIGTERM' ? 15 : 2)
    if (controller.signal.aborted) {
      // Second signal: stop now. The 'exit' handlers kill the running tools
      // (exec.ts) and remove the output's temp dir and its lock (output.ts).
      process.stderr.write(`\ninterrupted again by ${sig}: stopping now\n`)
      process.exit(code)
    }
    interruptedCode = code
    controller.abort(new FailureError(`interrupted by ${sig}`))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  let log = createLogger(logOptionsFromEnv({}))
  try {
    if (name === 'images') {
      const flags = rest.filter((a) => ['--json', '--quiet', '-q', '--verbose', '-v', '--no-color'].includes(a))
      log = createLogger(
        logOptionsFromEnv({
          json: flags.includes('--json'),
          quiet: flags.includes('--quiet') || flags.includes('-q'),
          verbose: flags.includes('--verbose') || flags.includes('-v'),
          noColor: flags.includes('--no-color'),
        }),
      )
      if (rest.length === 0 || rest[0] === '--help' || rest[0] === '-h') {
        process.stdout.write(`Usage: ${cmd.usage}\n\n${cmd.help}\n`)
        return rest.length === 0 ? 2 : 0
      }
      const { imagesCommand } = await import('./payload/cli.js')
      return await imagesCommand(rest, {
        json: flags.includes('--json'),
        quiet: log.opts.quiet,
        verbose: log.opts.verbose,
        log,
        signal: controller.signal,
      })
    }
    let parsed
    try {
      parsed = parseArgs({
        args: rest,
        options: { ...common, ...cmd.options },
        allowPositionals: cmd.allowPositionals ?? false,
        strict: true,
      })
    } catch (e) {
      throw new UserError(`${name}: ${(e as Error).message}`, `run "mirror-appliance ${name} --help"`)
    }
    const v = parsed.values as Record<string, string | boolean | string[] | undefined>
    if (v.help) {
      process.stdout.write(`Usage: ${cmd.usage}\n\n${cmd.help}\n${COMMON_HELP}\n`)
      return 0
    }
    log = createLogger(logOptionsFromEnv({ json: !!v.json, quiet: !!v.quiet, verbose: !!v.verbose, noColor: !!v['no-color'] }))
    const ctx: Ctx = { log, json: !!v.json, signal: controller.signal, out: (t) => process.stdout.write(t.endsWith('\n') ? t : t + '\n') }
    return await cmd.run(v, parsed.positionals, ctx)
  } catch (e) {
    const code = reportError(e, log)
    return interruptedCode && code !== 0 ? interruptedCode : code
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

export function reportError(e: unknown, log: Logger): number {
  if (e instanceof ConfigError) {
    if (log.opts.json) {
      process.stdout.write(
        JSON.stringify(
          { valid: false, errors: e.diagnostics.map((d) => ({ ...d, text: formatDiagnostic(d, { caret: false }) })) },
          null,
          2,
        ) + '\n',
      )
    }
    process.stderr.write(e.message + '\n')
    return 2
  }
  if (e instanceof UserError || e instanceof FailureError) {
    log.error(e.message + (e.hint ? `\n  hint: ${e.hint}` : ''))
    return e.exitCode
  }
  if ((e as Error)?.name === 'AbortError') {
    log.error('interrupted')
    return 130
  }
  process.stderr.write(
    `internal error: this is a bug in mirror-appliance ${VERSION}; please report it with the output below\n${(e as Error)?.stack ?? String(e)}\n`,
  )
  return 1
}

// Two kinds of failure reach the CLI entry: the user's (a bad config, a bad
// flag, a missing input: exit 2 with a clear message) and the world's (a tool
// failed, the disk is full: exit 1). Anything else is a bug in this program
// and is shown with its stack and a hint to report it.

/** The user did something wrong: bad config, bad flag, bad input file. Exit code 2. */
export class UserError extends Error {
  readonly exitCode = 2
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message)
    this.name = 'UserError'
  }
}

/** Something outside us failed (a tool, the disk, the network). Exit code 1. */
export class FailureError extends Error {
  readonly exitCode = 1
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message)
    this.name = 'FailureError'
  }
}

/** An external tool exited non-zero or could not be started. */
export class ToolError extends FailureError {
  constructor(
    readonly tool: string,
    readonly command: string,
    readonly code: number | null,
    readonly stderr: string,
    meaning?: string,
  ) {
    const tail = stderr.trim().split('\n').slice(-15).join('\n')
    super(
      `${tool} failed` +
        (code === null ? ' (killed by a signal)' : ` with exit code ${code}`) +
        (meaning ? ` (${meaning})` : '') +
        `\n  command: ${command}` +
        (tail ? `\n  stderr:\n    ${tail.replace(/\n/g, '\n    ')}` : ''),
    )
    this.name = 'ToolError'
  }
}

/** A required host tool is missing or too old. */
export class MissingToolError extends FailureError {
  constructor(
    readonly tool: string,
    readonly debianPackage: string,
    why: string,
    /** Set when the tool is there but too old */
    tooOld?: string,
  ) {
    super(
      tooOld ? `${tooOld} (needed ${why})` : `${tool} is needed ${why} but was not found`,
      tooOld
        ? `install a newer one: apt-get install ${debianPackage} (Debian 12 has a new enough one)`
        : `install it: apt-get install ${debianPackage}`,
    )
    this.name = 'MissingToolError'
  }
}

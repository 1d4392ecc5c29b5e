import {Command, Errors, Flags, Interfaces} from '@oclif/core'

import {EXIT, EXIT_FAILURE} from './exit-codes.js'
import {finishAll} from './progress.js'
import {ImageError, resolveDataDir} from './storage/index.js'
import {type VolumeTarget, VolumeTargetError, volumeTarget} from './storage/open.js'

/** `--meta URL`: the command works on the volume in PostgreSQL at the URL instead of the data dir's image. */
export function metaFlag(description: string) {
  return Flags.string({description, exclusive: ['data-dir'], helpValue: '<url>'})
}

export type RazorFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof RazorCommand)['baseFlags'] & T['flags']>
export type RazorArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/** What a thrown value may carry; anything else in it is ignored. */
type Failure = Error & {code?: unknown; exitCode?: unknown; oclif?: {exit?: unknown}; parse?: unknown}

/**
 * The base of every razorfs command. It declares `--data-dir`, parses the command line before
 * `run()` (into `this.flags` and `this.args`), and turns every failure into one line on stderr
 * (`razorfs: <message>`), or `{"error": {"code", "message"}}` on stdout under `--json`, with an
 * exit code (see `exitCodeOf`). A stack trace is printed only when `DEBUG` is set.
 */
export abstract class RazorCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    'data-dir': Flags.string({
      description:
        'The first of these that is set wins: this flag; the environment variable RAZORFS_DATA_DIR; ' +
        '/var/lib/razorfs when run as root; $XDG_DATA_HOME/razorfs; ~/.local/share/razorfs.',
      helpGroup: 'GLOBAL',
      helpValue: '<dir>',
      summary: 'Directory that holds the image files.',
    }),
  }

  protected args!: RazorArgs<T>
  protected flags!: RazorFlags<T>
  /** The exit code of a failure that carries none of its own; fsck sets `EXIT.OPERATIONAL`. */
  protected failureExitCode: number = EXIT_FAILURE

  public override async init(): Promise<void> {
    await super.init()
    // Parses with the statics of the concrete command: its args and flags, baseFlags, --json.
    const {args, flags} = await this.parse()
    this.flags = flags as RazorFlags<T>
    this.args = args as RazorArgs<T>
  }

  /** The absolute path of the data dir, from `--data-dir` and the environment. Creates nothing. */
  protected dataDir(): string {
    return resolveDataDir(this.flags['data-dir'])
  }

  /**
   * The volume the command names: `meta` (a --meta URL) if given, else the data dir. A --meta that
   * is not a PostgreSQL URL is a usage error (16).
   */
  protected volumeTarget(meta: string | undefined): VolumeTarget {
    try {
      return volumeTarget(meta, () => this.dataDir())
    } catch (error) {
      if (error instanceof VolumeTargetError) this.error(`${error.message} (see 'razorfs ${this.id} --help')`, {exit: EXIT.USAGE})
      throw error
    }
  }

  /** Whatever happened, no progress bar stays on the terminal (nor its redraw timer in the process). */
  protected override async finally(error: Error | undefined): Promise<unknown> {
    finishAll()
    return super.finally(error)
  }

  protected override async catch(thrown: Interfaces.CommandError): Promise<never> {
    // this.exit(n) (and oclif internals) throw ExitError: nothing to print, oclif exits with n.
    if (thrown instanceof Errors.ExitError) throw thrown
    finishAll() // the error line must not land on a half-drawn bar
    const err: Failure = thrown instanceof Error ? thrown : new Error(String(thrown))
    const exitCode = this.exitCodeOf(err)
    const code = typeof err.code === 'string' ? err.code : exitCode === EXIT.USAGE ? 'USAGE' : 'ERROR'
    const message = this.messageOf(err)

    process.exitCode = exitCode
    if (this.jsonEnabled()) {
      this.logJson({error: {code, message}})
    } else {
      process.stderr.write(`razorfs: ${message}\n`)
    }

    if (process.env.DEBUG && err.stack) process.stderr.write(`${err.stack}\n`)
    // Core's handler exits with ExitError's code and prints nothing for it.
    throw new Errors.ExitError(exitCode)
  }

  /**
   * The exit code of a failure: the error's own numeric `exitCode` if it has one; `EXIT.USAGE`
   * for a command-line error from oclif's parser; the `oclif.exit` of an `Errors.CLIError` (as
   * `this.error(msg, {exit})` makes, or a flag's own parse error); otherwise `this.failureExitCode`.
   */
  protected exitCodeOf(err: Failure): number {
    if (typeof err.exitCode === 'number') return err.exitCode
    if (isUsageError(err)) return EXIT.USAGE
    if (typeof err.oclif?.exit === 'number') return err.oclif.exit
    return this.failureExitCode
  }

  /** The error's message on one line, with a hint appended where one helps. */
  protected messageOf(err: Failure): string {
    const lines = stripAnsi(err.message || err.name || 'unknown error')
      .split('\n')
      .map(line => line.trim())
      .filter(line => line !== '' && line !== 'See more help with --help')
    // oclif words a flag's parse error "Parsing --capacity \n\tExpected ...".
    let message = lines
      .join(' ')
      .replaceAll(/\s+/g, ' ')
      .replace(/^Parsing (--\S+) /, '$1: ')
    if (isUsageError(err)) {
      // oclif's "Unexpected argument: x" reads as razorfs's other lines do: "unexpected argument: x".
      message = message.replace(/^[A-Z](?=[a-z])/, first => first.toLowerCase())
      message += ` (see 'razorfs ${this.id} --help')`
    } else if (err instanceof ImageError) {
      if (err.code === 'RZ_EXISTS' && 'force' in (this.ctor.flags ?? {}) && !message.includes('--force')) {
        message += '; use --force to replace it (its contents are lost)'
      } else if (err.code === 'RZ_NO_IMAGE' && this.id !== 'init' && !message.includes('razorfs init')) {
        message += "; create one with 'razorfs init'"
      }
    }

    return message
  }
}

/** oclif's parse errors (CLIParseError and its subclasses) carry the parser's input as `parse`. */
function isUsageError(err: Failure): boolean {
  return err instanceof Errors.CLIError && (err as Failure).parse !== undefined
}

function stripAnsi(text: string): string {
  return text.replaceAll(/\u001B\[[0-9;]*m/g, '')
}

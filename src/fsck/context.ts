/**
 * The state of one fsck run and the one place that prints, asks, auto-answers and counts:
 * `ctx.fix(code, values)` (e2fsck's fix_problem). Check code calls it for every problem it finds
 * and acts on the boolean it returns; nothing else in src/fsck writes a message about a problem.
 *
 * Answers by mode:
 * - `no` (-n): always no; the image was opened read-only and nothing is written.
 * - `yes` (-y): always yes.
 * - `preen` (-p): yes for rows with `preenOk`, no for the others (they are left: exit 4).
 * - `ask`: asks the terminal: y(es), n(o), a(ll: yes from now on), q(uit: cancel, exit 32).
 * A problem answered no counts as left uncorrected unless its row says `noOk`.
 */
import {codeString, formatMessage, PROBLEM_BY_CODE, PROMPTS, type Problem} from './problems.js'

export type FsckMode = 'no' | 'yes' | 'preen' | 'ask'
export type Answer = 'yes' | 'no' | 'all' | 'quit'

export interface ProgressSink {
  /** `done` of `total` units of `pass` are checked. */
  update(pass: number, label: string, done: number, total: number): void
  /** The pass is over: erase the bar. */
  clear(): void
}

export interface FsckOptions {
  /** The data dir. */
  dir: string
  mode: FsckMode
  /** Check even an image that was closed cleanly. */
  force?: boolean
  /** Print pass headers and a summary of what was checked. */
  verbose?: boolean
  /** Human output, one line per call (problems, headers, summary). Default: nothing. */
  out?: (line: string) => void
  /** Asks one question in `ask` mode (the message and prompt are passed). Required for `ask`. */
  ask?: (question: string) => Answer
  /** A progress bar, for big images on a terminal. */
  progress?: ProgressSink
  /** Abort with an operational error (exit 8) if the check runs past this time (Date.now() ms). */
  deadlineMs?: number
}

export interface ProblemReport {
  /** "0x020003" */
  code: string
  id: string
  message: string
  fixed: boolean
}

/** Thrown by `fix` when the user answers "quit": the run ends with exit 32. */
export class FsckCancelled extends Error {
  constructor() {
    super('cancelled by the user')
    this.name = 'FsckCancelled'
  }
}

/** The check cannot go on (a fatal problem, a deadline, an image that cannot be opened): exit 8. */
export class FsckAbort extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'FsckAbort'
  }
}

export interface FixOptions {
  /**
   * false: the fix is impossible now (it needs a structure whose repair was declined): the
   * problem is reported and answered no whatever the mode.
   */
  canFix?: boolean
}

export class FsckContext {
  readonly mode: FsckMode
  readonly problems: ProblemReport[] = []
  /** Problems fixed, and left uncorrected (answered no, without `noOk`). */
  fixed = 0
  uncorrected = 0
  /** Problems answered no (including `noOk` ones). */
  declined = 0
  private beforeFirstWrite: (() => void) | undefined
  private yesToAll = false
  private steps = 0
  private readonly out: (line: string) => void

  constructor(readonly opts: FsckOptions) {
    this.mode = opts.mode
    this.out = opts.out ?? (() => {})
    if (opts.mode === 'ask' && opts.ask === undefined) throw new Error('internal: ask mode without an ask function')
  }

  /** Is the image open for writing (any mode but -n)? */
  get writable(): boolean {
    return this.mode !== 'no'
  }

  /**
   * Report problem `code` with `values` for its placeholders; returns whether to fix it. The only
   * function that prints, asks or counts problems.
   */
  fix(code: number, values: Readonly<Record<string, unknown>> = {}, options: FixOptions = {}): boolean {
    const problem = this.problem(code)
    let message = formatMessage(problem.message, values)
    if (problem.fatal) {
      // Not counted as left uncorrected: the check itself could not be done (exit 8 alone).
      this.problems.push({code: codeString(code), id: problem.id, message, fixed: false})
      this.out(message)
      throw new FsckAbort(message)
    }

    const possible = options.canFix !== false && problem.prompt !== 'none'
    if (!possible && options.canFix === false) message += ' (It cannot be repaired until the problems above are.)'
    let answer: boolean
    if (!possible || this.mode === 'no') answer = false
    else if (this.mode === 'yes' || this.yesToAll) answer = true
    else if (this.mode === 'preen') answer = problem.preenOk
    else answer = this.askUser(problem, message)

    this.problems.push({code: codeString(code), id: problem.id, message, fixed: answer})
    if (answer) {
      this.fixed++
      const hook = this.beforeFirstWrite
      this.beforeFirstWrite = undefined
      hook?.()
    } else {
      this.declined++
      if (!problem.noOk) this.uncorrected++
    }

    if (this.mode === 'preen') {
      this.out(answer ? `razorfs: ${message} ${PROMPTS[problem.prompt].done}.` : `razorfs: ${message}`)
    } else if (this.mode !== 'ask') {
      this.out(problem.prompt === 'none' ? message : `${message} ${PROMPTS[problem.prompt].ask}? ${answer ? 'yes' : 'no'}`)
    }

    return answer
  }

  /** Print a pass header (verbose only). */
  header(code: number): void {
    const problem = this.problem(code)
    if (this.opts.verbose) this.out(problem.message)
  }

  /** A line of the summary or a note (not a problem). */
  note(line: string): void {
    this.out(line)
  }

  /** Has any fix been accepted? */
  get changed(): boolean {
    return this.fixed > 0
  }

  /** Run `hook` once, right before the next accepted fix is made (marks an open image in use). */
  armBeforeFirstWrite(hook: () => void): void {
    this.beforeFirstWrite = hook
  }

  /** Count loop iterations; every 64k, check the deadline and move the progress bar. */
  tick(pass: number, label: string, done: number, total: number): void {
    if ((++this.steps & 0xffff) !== 0) return
    if (this.opts.deadlineMs !== undefined && Date.now() > this.opts.deadlineMs) throw new FsckAbort('the check ran out of time')
    if (total >= 100_000) this.opts.progress?.update(pass, label, done, total)
  }

  endPass(): void {
    this.opts.progress?.clear()
  }

  private problem(code: number): Problem {
    const problem = PROBLEM_BY_CODE.get(code)
    if (problem === undefined) throw new Error(`internal: unknown problem code ${codeString(code)}`)
    return problem
  }

  private askUser(problem: Problem, message: string): boolean {
    const answer = this.opts.ask!(`${message} ${PROMPTS[problem.prompt].ask}?`)
    if (answer === 'quit') {
      this.problems.push({code: codeString(problem.code), id: problem.id, message, fixed: false})
      this.declined++
      if (!problem.noOk) this.uncorrected++
      throw new FsckCancelled()
    }

    if (answer === 'all') this.yesToAll = true
    return answer !== 'no'
  }
}

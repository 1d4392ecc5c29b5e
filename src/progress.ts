/**
 * The progress bar of every razorfs command: one line on stderr, drawn by the cli-progress
 * library, and only when stderr is a terminal. In a pipe or a file not a byte is written.
 *
 * A phase draws nothing until it has run for `delayMs` (so quick work shows no bar), then redraws
 * at most 10 times a second; `finish()` erases the line. The commands are synchronous (no timer
 * fires while they work), so the bar is redrawn from `add`/`set` (cli-progress's synchronous
 * update). cli-progress is loaded only when a bar is first drawn: a run in a pipe never loads it.
 */
import {createRequire} from 'node:module'

import type {Options, SingleBar} from 'cli-progress'

import {humanBytes} from './units.js'

/** The stream a bar is drawn on: process.stderr, or a test's stand-in. */
export interface ProgressStream {
  isTTY?: boolean
  columns?: number
  write(text: string): unknown
}

export interface ProgressOptions {
  /** Default: process.stderr. Nothing is drawn unless its `isTTY` is true. */
  stream?: ProgressStream
  /** Draw only once a phase has run this long (default: $RAZORFS_PROGRESS_DELAY_MS, else 400 ms). */
  delayMs?: number
}

/** What a phase counts: bytes (shown as KiB, MiB, ...) or items (shown as numbers). */
export type ProgressUnit = 'bytes' | 'items'

const DEFAULT_DELAY_MS = 400
/** cli-progress redraws from `update` when 2 x 1000/fps ms have passed since its last redraw. */
const FPS = 20
const HANDOFF_MS = 1000 / FPS
/** "writing [#####.....]  50% 5.0 MiB / 10.0 MiB"; without a total: "reading 5.0 MiB". */
const FORMAT = '{label} [{bar}] {percentage}% {value} / {total}'
const FORMAT_NO_TOTAL = '{label} {value}'
const require = createRequire(import.meta.url)
/** Every bar that is drawn now, so that a command can erase them whatever happened (`finishAll`). */
const drawn = new Set<Progress>()

export class Progress {
  private readonly stream: ProgressStream
  private readonly enabled: boolean
  private readonly delayMs: number
  private bar: SingleBar | undefined
  private label = ''
  private unit: ProgressUnit = 'bytes'
  private total = 0
  private done = 0
  private started = 0
  /** When the bar was last handed a value: cli-progress is told at most every HANDOFF_MS. */
  private handedAt = 0

  constructor(opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr
    this.enabled = this.stream.isTTY === true
    this.delayMs = opts.delayMs ?? delayFromEnv()
  }

  /** Begin a phase ("writing", "Pass 1: inodes") of `total` units; 0: the total is not known. */
  phase(label: string, total: number, unit: ProgressUnit = 'bytes'): void {
    this.finish()
    this.label = label
    this.unit = unit
    this.total = Math.max(0, total)
    this.done = 0
    this.started = Date.now()
  }

  setTotal(total: number): void {
    this.total = Math.max(0, total)
  }

  /** `n` more units are done. */
  add(n: number): void {
    this.set(this.done + n)
  }

  /** `done` units of the phase are done. */
  set(done: number): void {
    this.done = done
    if (!this.enabled) return
    const now = Date.now()
    if (this.bar === undefined) {
      if (now - this.started >= this.delayMs) this.start()
      return
    }

    // Called for every member or chunk: most calls only count.
    if (now - this.handedAt < HANDOFF_MS) return
    this.handedAt = now
    this.bar.setTotal(this.shownTotal())
    this.bar.update(this.done)
  }

  /** Erase the bar if one was drawn; the next phase starts a new one. */
  finish(): void {
    if (this.bar === undefined) return
    this.bar.stop()
    this.bar = undefined
    drawn.delete(this)
  }

  private shownTotal(): number {
    return this.total === 0 ? 0 : Math.max(this.total, this.done)
  }

  private start(): void {
    const {Format, SingleBar} = require('cli-progress') as typeof import('cli-progress')
    const options: Options = {
      stream: this.stream as NodeJS.WritableStream,
      // cli-progress's own formatter, with the format of a known or an unknown total.
      format: (opts, params, payload) => Format.Formatter({...opts, format: this.total === 0 ? FORMAT_NO_TOTAL : FORMAT}, params, payload),
      formatValue: (v, opts, type) =>
        (type === 'value' || type === 'total') && this.unit === 'bytes' ? humanBytes(Number(v)) : Format.ValueFormat(v, opts, type),
      autopadding: true,
      barsize: 30,
      barCompleteChar: '#',
      barIncompleteChar: '.',
      clearOnComplete: true,
      // Keep the terminal's modes as they are: a killed command must not leave wrapping or the cursor off.
      hideCursor: null,
      linewrap: true,
      fps: FPS,
    }
    this.bar = new SingleBar(options)
    drawn.add(this)
    this.handedAt = Date.now()
    this.bar.start(this.shownTotal(), this.done, {label: this.label})
  }
}

/** Erase every bar still drawn (a command that failed half-way); cli-progress's timer stops too. */
export function finishAll(): void {
  for (const bar of drawn) bar.finish()
}

function delayFromEnv(): number {
  const text = process.env.RAZORFS_PROGRESS_DELAY_MS
  const n = text === undefined || text === '' ? Number.NaN : Number(text)
  return Number.isFinite(n) && n >= 0 ? n : DEFAULT_DELAY_MS
}

/**
 * A one-line progress bar on a terminal. It draws only on a TTY, and only once a phase has run
 * for `delayMs` (so a small source, done at once, shows nothing); in a pipe or a file it never
 * writes a byte.
 */

export interface ProgressStream {
  isTTY?: boolean
  columns?: number
  write(text: string): unknown
}

export interface ProgressOptions {
  stream?: ProgressStream
  /** Draw only once a phase has taken this long (default 400 ms). */
  delayMs?: number
  /** Redraw at most this often (default 100 ms). */
  intervalMs?: number
  now?: () => number
}

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = bytes
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }

  return u === 0 ? `${v} ${units[u]}` : `${v.toFixed(1)} ${units[u]}`
}

export class Progress {
  private readonly stream: ProgressStream
  private readonly enabled: boolean
  private readonly delayMs: number
  private readonly intervalMs: number
  private readonly now: () => number
  private label = ''
  private total = 0
  private done = 0
  private started = 0
  private lastDraw = 0
  private drawn = false

  constructor(opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr
    this.enabled = this.stream.isTTY === true
    this.delayMs = opts.delayMs ?? 400
    this.intervalMs = opts.intervalMs ?? 100
    this.now = opts.now ?? Date.now
  }

  /** Begin a phase ("checking", "writing", "verifying") of `total` bytes. */
  phase(label: string, total: number): void {
    this.finish()
    this.label = label
    this.total = Math.max(0, total)
    this.done = 0
    this.started = this.now()
    this.lastDraw = 0
  }

  setTotal(total: number): void {
    this.total = Math.max(0, total)
  }

  add(bytes: number): void {
    this.done += bytes
    if (!this.enabled) return
    const t = this.now()
    if (t - this.started < this.delayMs || t - this.lastDraw < this.intervalMs) return
    this.draw(t)
  }

  /** Clear the line if anything was drawn. */
  finish(): void {
    if (!this.drawn) return
    this.stream.write('\r\u001B[2K')
    this.drawn = false
  }

  private draw(t: number): void {
    this.lastDraw = t
    const width = Math.max(20, Math.min(100, this.stream.columns || 80))
    const total = Math.max(this.total, this.done)
    const fraction = total === 0 ? 1 : this.done / total
    const text = ` ${Math.floor(fraction * 100).toString().padStart(3)}%  ${human(this.done)} / ${human(total)}`
    const label = `${this.label} `
    const barWidth = Math.max(10, width - label.length - text.length - 3)
    const full = Math.min(barWidth, Math.round(fraction * barWidth))
    this.stream.write(`\r${label}[${'#'.repeat(full)}${'.'.repeat(barWidth - full)}]${text}`)
    this.drawn = true
  }
}

/** The terminal side of fsck: the interactive question and the progress bar (stderr, TTY only). */
import fs from 'node:fs'

import type {Answer, ProgressSink} from './context.js'

/**
 * Ask on the terminal, reading standard input synchronously (the checker is synchronous):
 * y(es), n(o), a(ll), q(uit). End of input counts as quit.
 */
export function terminalAsk(write: (text: string) => void): (question: string) => Answer {
  const buf = Buffer.alloc(256)
  const readLine = (): number => {
    for (;;) {
      try {
        return fs.readSync(0, buf, 0, buf.length, null)
      } catch (error) {
        // A non-blocking terminal with nothing typed yet: wait a little and read again.
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50)
      }
    }
  }

  return question => {
    for (;;) {
      write(`${question} [y]es, [n]o, [a]ll, [q]uit: `)
      const n = readLine()
      if (n === 0) return 'quit'
      const answer = buf.toString('utf8', 0, n).trim().toLowerCase()
      if (answer === 'y' || answer === 'yes') return 'yes'
      if (answer === 'n' || answer === 'no') return 'no'
      if (answer === 'a' || answer === 'all') return 'all'
      if (answer === 'q' || answer === 'quit') return 'quit'
    }
  }
}

/** A one-line bar on stderr, redrawn at most 10 times a second. */
export class TerminalProgress implements ProgressSink {
  private drawnAt = 0
  private drawn = false

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(pass: number, label: string, done: number, total: number): void {
    const now = Date.now()
    if (now - this.drawnAt < 100) return
    this.drawnAt = now
    const width = 30
    const filled = Math.min(width, Math.floor((done / Math.max(1, total)) * width))
    const percent = Math.min(100, Math.floor((done / Math.max(1, total)) * 100))
    this.stream.write(`\rPass ${pass}: ${label.padEnd(12)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(percent).padStart(3)}%`)
    this.drawn = true
  }

  clear(): void {
    if (!this.drawn) return
    this.stream.write('\r\u001B[K')
    this.drawn = false
    this.drawnAt = 0
  }
}

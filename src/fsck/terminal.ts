/** The terminal side of fsck: the interactive question and the progress bar (stderr, TTY only). */
import fs from 'node:fs'

import {Progress} from '../progress.js'
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

/**
 * fsck's progress sink on the shared bar (src/progress.ts: stderr, terminal only), one phase a
 * pass: "Pass 2: entries [#####.....]  50% 65536 / 131072".
 */
export function terminalProgress(bar: Progress = new Progress()): ProgressSink {
  let phase = ''
  return {
    update(pass, label, done, total) {
      const name = `Pass ${pass}: ${label}`
      if (name !== phase) {
        phase = name
        bar.phase(name, total, 'items')
      }

      bar.set(done)
    },
    clear() {
      phase = ''
      bar.finish()
    },
  }
}

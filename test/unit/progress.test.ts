/** The one progress bar of every command (src/progress.ts, drawn by cli-progress): terminal only. */
import {expect} from 'chai'

import {Progress, finishAll} from '../../src/progress.js'

/** A stand-in for process.stderr that keeps what is written. */
function stream(isTTY: boolean): {isTTY: boolean; columns: number; text: () => string; write: (s: string) => boolean} {
  const out: string[] = []
  return {isTTY, columns: 100, text: () => out.join(''), write: (s: string) => out.push(s) > 0}
}

/** What a terminal shows of `text`: escape sequences removed, only the last state of the line. */
function visible(text: string): string {
  return (
    text
      .replaceAll(/\u001B(\[[0-9;?]*[A-Za-z]|[78])/g, '\n')
      .split('\n')
      .filter(Boolean)
      .at(-1) ?? ''
  )
}

describe('progress bar (src/progress.ts)', () => {
  it('writes nothing when not on a terminal, nor on one before the delay', () => {
    for (const [isTTY, delayMs] of [
      [false, 0],
      [true, 60_000],
    ] as const) {
      const s = stream(isTTY)
      const p = new Progress({stream: s, delayMs})
      p.phase('writing', 1000)
      for (let i = 0; i < 10; i++) p.add(100)
      p.finish()
      finishAll()
      expect(s.text(), `isTTY ${isTTY}, delay ${delayMs}`).to.equal('')
    }
  })

  it('on a terminal, draws one line (label, bar, percent, bytes) and erases it', () => {
    const s = stream(true)
    const p = new Progress({stream: s, delayMs: 0})
    p.phase('writing', 2048)
    p.set(1024)
    expect(visible(s.text())).to.equal(`writing [${'#'.repeat(15)}${'.'.repeat(15)}]  50% 1.0 KiB / 2.0 KiB`)
    expect(s.text()).not.to.include('\n') // one line, redrawn in place
    p.finish()
    expect(s.text().endsWith('\u001B[2K')).to.equal(true) // the line is erased
    const length = s.text().length
    p.finish()
    expect(s.text()).to.have.length(length) // a second finish writes nothing
  })

  it('counts items, and shows only the count when the total is not known', () => {
    const s = stream(true)
    const p = new Progress({stream: s, delayMs: 0})
    p.phase('Pass 1: inodes', 300_000, 'items')
    p.set(75_000)
    expect(visible(s.text())).to.match(/^Pass 1: inodes \[#{8}\.{22}\] {2}25% 75000 \/ 300000$/)
    p.phase('restoring', 0)
    p.set(5 << 20)
    expect(visible(s.text())).to.equal('restoring 5.0 MiB')
    finishAll()
    expect(s.text().endsWith('\u001B[2K')).to.equal(true)
  })
})

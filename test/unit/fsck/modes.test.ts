/**
 * How fsck answers (-n, -y, -p, interactive), what it leaves behind, the lock, and the progress
 * bar: everything around the checks, through the library.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {type Answer, FsckContext} from '../../../src/fsck/context.js'
import {runFsck} from '../../../src/fsck/run.js'
import {terminalProgress} from '../../../src/fsck/terminal.js'
import {Progress} from '../../../src/progress.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'
import {buildBase, copyDir, snapshot} from './fuzz-lib.js'
import {I, entryOf, patch, poke, setInode, slotOf} from './helpers.js'

/** Two problems: a wrong link count (preen may fix it) and an entry naming a free slot (it may not). */
function damage(dir: string): void {
  poke(dir, (x, img) => {
    setInode(x, slotOf(img, '/hello.txt'), I.nlink, 9)
    x.store.transaction(() => x.store.set32(x.entries.file, x.entries.off(entryOf(img, '/alpha/beta', 'file-5')) + 8, x.nodes.freeHead))
  })
}

describe('fsck: modes, answers and the lock', function () {
  this.timeout(60_000)
  let root: string
  let base: string
  let n = 0
  const fresh = (): string => {
    const dir = path.join(root, `img-${n++}`)
    copyDir(base, dir)
    return dir
  }

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-fsck-modes-'))
    base = path.join(root, 'base')
    buildBase(base, false)
  })
  after(() => fs.rmSync(root, {recursive: true, force: true}))

  it('-p fixes what is safe, leaves the rest (exit 1 | 4) and does not mark the image clean', () => {
    const dir = fresh()
    damage(dir)
    const lines: string[] = []
    const r = runFsck({dir, mode: 'preen', force: true, out: l => lines.push(l)})
    expect(r.exitCode).to.equal(5)
    expect(r.problems.find(p => p.id === 'PR_4_BAD_NLINK')?.fixed).to.equal(true)
    expect(r.problems.find(p => p.id === 'PR_2_BAD_CHILD')?.fixed).to.equal(false)
    expect(lines.some(l => /^razorfs: Inode \d+ \(regular file\) has link count 9, counted 2\. FIXED\.$/.test(l))).to.equal(true)
    expect(lines.at(-1)).to.match(/UNEXPECTED INCONSISTENCY/)
    // Problems are left: the next run without -f checks fully instead of trusting a clean flag.
    const again = runFsck({dir, mode: 'no'})
    expect(again.checked).to.equal('full')
    expect(again.exitCode).to.equal(4)
    expect(runFsck({dir, mode: 'yes'}).exitCode).to.equal(1)
    expect(runFsck({dir, mode: 'no'}).checked).to.equal('headers')
  })

  it('asks each question in interactive mode: y, n, then a(ll)', () => {
    const dir = fresh()
    damage(dir)
    patch(path.join(dir, 'nodes.dat'), 2000, Buffer.from([1]))
    const answers: Answer[] = ['no', 'yes', 'all']
    const asked: string[] = []
    const r = runFsck({
      dir,
      mode: 'ask',
      force: true,
      ask: q => {
        asked.push(q)
        return answers.shift() ?? 'no'
      },
    })
    expect(asked[0]).to.match(/^nodes\.dat: bytes 2000 to 2000 of the header page are not zero\. Fix\?$/)
    expect(asked).to.have.length(3)
    expect(r.problems[0].fixed).to.equal(false)
    expect(r.problems.slice(1).every(p => p.fixed)).to.equal(true)
    expect(r.exitCode).to.equal(5)
  })

  it('q(uit) cancels: exit 32, what was fixed stays, the image is not marked clean', () => {
    const dir = fresh()
    damage(dir)
    const r = runFsck({dir, mode: 'ask', force: true, ask: () => 'quit'})
    expect(r.exitCode & 32).to.equal(32)
    expect(r.error).to.equal('cancelled by the user')
    expect(runFsck({dir, mode: 'no'}).checked).to.equal('full')
    expect(runFsck({dir, mode: 'yes', force: true}).exitCode).to.equal(1)
  })

  it('refuses to repair a locked image (exit 8, "in use by pid N"); -n checks it and writes nothing', () => {
    const dir = fresh()
    const img = Image.open(dir)
    try {
      img.mknod(ROOT_INO, 'made-while-open', {mode: 0o100644, uid: 0, gid: 0})
      const before = snapshot(dir)
      const refused = runFsck({dir, mode: 'yes'})
      expect(refused.exitCode).to.equal(8)
      expect(refused.errorCode).to.equal('RZ_LOCKED')
      expect(refused.error).to.equal(`${dir}: image is in use by pid ${process.pid}`)
      const live = runFsck({dir, mode: 'no', force: true})
      expect(live.exitCode, live.problems.map(p => p.message).join(' | ')).to.equal(0)
      // The replayed log shows the change made while open; nothing was written.
      expect(live.counts.inodes).to.equal(img.usage().inodes)
      expect(snapshot(dir)).to.equal(before)
    } finally {
      img.close()
    }
  })

  it('an image that cannot be opened: -n reports what blocks it (exit 4); a missing one is exit 8', () => {
    const dir = fresh()
    patch(path.join(dir, 'entries.dat'), 4, Buffer.from('XXXX'))
    const lines: string[] = []
    const r = runFsck({dir, mode: 'no', out: l => lines.push(l)})
    expect(r.exitCode).to.equal(4)
    expect(r.checked).to.equal('headers')
    expect(lines.some(l => l.startsWith('razorfs: the image cannot be opened until these problems are repaired'))).to.equal(true)
    const gone = runFsck({dir: path.join(root, 'nothing-here'), mode: 'no'})
    expect(gone.exitCode).to.equal(8)
    expect(gone.errorCode).to.equal('RZ_NO_IMAGE')
  })

  it('moves the progress bar every 64k records of a big table, never for a small one', () => {
    const updates: number[] = []
    const ctx = new FsckContext({dir: '/', mode: 'no', progress: {update: (_p, _l, done) => updates.push(done), clear: () => updates.push(-1)}})
    for (let i = 0; i < 300_000; i++) ctx.tick(1, 'inodes', i, 300_000)
    ctx.endPass()
    expect(updates.length).to.equal(5)
    expect(updates.at(-1)).to.equal(-1)
    const small = new FsckContext({dir: '/', mode: 'no', progress: {update: () => updates.push(0), clear: () => {}}})
    for (let i = 0; i < 90_000; i++) small.tick(1, 'inodes', i, 90_000)
    expect(updates.length).to.equal(5)
  })

  it('draws the bar on one line and erases it', () => {
    let text = ''
    const stream = {
      isTTY: true,
      columns: 100,
      write: (s: string) => {
        text += s
        return true
      },
    }
    const bar = terminalProgress(new Progress({stream, delayMs: 0}))
    bar.update(2, 'entries', 50, 100)

    expect(text.replaceAll(/\u001B(\[[0-9;?]*[A-Za-z]|[78])/g, '')).to.equal(`Pass 2: entries [${'#'.repeat(15)}${'.'.repeat(15)}]  50% 50 / 100`)
    expect(text).not.to.include('\n')
    bar.clear()
    expect(text.endsWith('\u001B[2K')).to.equal(true)
  })
})

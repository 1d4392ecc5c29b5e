/**
 * The directory reader without a mount: requests that resume at an offset, a kernel that takes
 * fewer entries of an answer than it got (or turns from readdir to readdirplus inside one), and
 * names that come and go between requests.
 */
import {expect} from 'chai'

import {FsError, ROOT_INO} from '../../../src/storage/index.js'
import {DirReader} from '../../../src/vfs/dir-reader.js'
import {type FileSystem, ROOT_CRED} from '../../../src/vfs/filesystem.js'
import {withCore} from '../../helpers/core.js'

/** The entries of one answer. */
interface Answer {
  names: string[]
  offs: number[]
  /** readdirplus: whether entry i came with attributes (and they were the inode's). */
  withAttrs: boolean[]
}

describe('vfs: the directory reader (readdir and readdirplus at an offset)', () => {
  const fixture = withCore('razorfs-dirreader-')
  let core: FileSystem
  let reader: DirReader

  beforeEach(() => {
    core = fixture.core
    reader = new DirReader(core, 64)
  })

  /** Directory `d` with files e0 .. e<n-1>, open: its inode and handle. */
  function openDir(n: number): {d: number; fh: number} {
    const d = core.mkdir(ROOT_INO, 'd', 0o755, ROOT_CRED).ino
    for (let i = 0; i < n; i++) core.mknod(d, `e${i}`, 0o100644, 0, ROOT_CRED)
    return {d, fh: core.opendir(d, ROOT_CRED)}
  }

  const current = (d: number): string[] => [...core.readdir(d)].map(e => e.name.toString())

  /** One request: up to `max` entries after `off`, of which the answer fits `fit` (all by default). */
  function ask(fh: number, off: number, max: number, plus: boolean, fit = Number.POSITIVE_INFINITY): Answer {
    const answer: Answer = {names: [], offs: [], withAttrs: []}
    reader.read(fh, off, max, batch => {
      const n = Math.min(fit, batch.count)
      for (let i = 0; i < n; i++) {
        answer.names.push(batch.names.subarray(i === 0 ? 0 : batch.ends[i - 1], batch.ends[i]).toString())
        answer.offs.push(batch.offs[i])
        const attr = plus ? batch.attr(i) : undefined
        if (attr !== undefined) expect(attr).to.deep.equal(core.getattr(batch.inos[i]))
        answer.withAttrs.push(attr !== undefined)
      }

      return n
    })
    return answer
  }

  /**
   * A whole listing as the kernel makes it: each request for up to 10 entries from the offset of
   * the last entry it took, taking `take` of a readdirplus answer (its caller's buffer was full)
   * and all of a plain one; `between` runs between requests.
   */
  function listAll(fh: number, plus: (r: number) => boolean, take: number, between: (listed: string[]) => void = () => {}): string[] {
    const listed: string[] = []
    let off = 0
    for (let r = 0; r < 1000; r++) {
      const a = ask(fh, off, 10, plus(r))
      const took = plus(r) ? Math.min(take, a.names.length) : a.names.length
      if (took === 0) return listed
      expect(a.offs[0], 'answered past its offset').to.be.greaterThan(off)
      listed.push(...a.names.slice(0, took))
      off = a.offs[took - 1]
      between(listed)
    }

    throw new Error('the listing never ended')
  }

  it("lists '.' and '..' first, then every entry, at offsets 1, 2, 3 …; at most `max` and the capacity", () => {
    const {d, fh} = openDir(100)
    const first = ask(fh, 0, 1000, false)
    expect(first.names).to.deep.equal(current(d).slice(0, 64))
    expect(first.names.slice(0, 2)).to.deep.equal(['.', '..'])
    expect(first.offs).to.deep.equal(Array.from({length: 64}, (_, i) => i + 1))
    expect(ask(fh, 64, 5, false).names).to.deep.equal(current(d).slice(64, 69))
    expect(listAll(fh, () => false, 0)).to.deep.equal(current(d))
    expect(listAll(fh, () => true, 10)).to.deep.equal(current(d))
  })

  it("readdirplus carries the attributes of every entry but '.' and '..'", () => {
    const {fh} = openDir(5)
    expect(ask(fh, 0, 10, true).withAttrs).to.deep.equal([false, false, true, true, true, true, true])
    expect(ask(fh, 0, 10, false).withAttrs.every(w => !w)).to.equal(true)
  })

  it('the part of a readdirplus answer the kernel did not take comes again, then the listing goes on', () => {
    const {d, fh} = openDir(40)
    const first = ask(fh, 0, 10, true)
    // The kernel took 3 ('.', '..', e0); e0 goes before it asks again from there.
    core.unlink(d, first.names[2], ROOT_CRED)
    const second = ask(fh, first.offs[2], 10, true)
    expect(second.names.slice(0, 7)).to.deep.equal(first.names.slice(3))
    expect(second.offs.slice(0, 7)).to.deep.equal(first.offs.slice(3))
    const now = current(d)
    expect(second.names.slice(7)).to.deep.equal(now.slice(now.indexOf(first.names[9]) + 1).slice(0, 3))
    for (const take of [1, 4, 9])
      expect(
        listAll(fh, () => true, take),
        `take ${take}`,
      ).to.deep.equal(now)
    // Plain requests after readdirplus ones, as the kernel sends them.
    expect(listAll(fh, r => r < 3, 2)).to.deep.equal(now)
  })

  it('an answer that did not fit whole: what went is kept, the listing goes on after it', () => {
    const {d, fh} = openDir(40)
    const first = ask(fh, 0, 10, true, 4)
    expect(first.names).to.deep.equal(current(d).slice(0, 4))
    // The kernel took 2 of the 4.
    expect(ask(fh, first.offs[1], 10, true, 5).names).to.deep.equal(current(d).slice(2, 7))
    expect(ask(fh, 7, 3, true).names).to.deep.equal(current(d).slice(7, 10))
  })

  it('a kept entry whose name has gone is not sent again; one that stayed is', () => {
    const {d, fh} = openDir(20)
    const first = ask(fh, 0, 10, true)
    core.unlink(d, first.names[6], ROOT_CRED)
    const second = ask(fh, first.offs[3], 10, true)
    expect(second.names).to.not.include(first.names[6])
    expect(second.names.slice(0, 5)).to.deep.equal([...first.names.slice(4, 6), ...first.names.slice(7)])
  })

  it('names removed and added between requests: every entry that stays is listed once', () => {
    const {d, fh} = openDir(150)
    const before = current(d)
    const removed = new Set<string>()
    const removedAhead = new Set<string>()
    let added = 0
    let step = 0
    const listed = listAll(
      fh,
      r => r % 3 !== 2,
      4,
      sofar => {
        // Remove one name further on and one listed already; add one.
        for (const victim of [before[(step * 7 + 40) % before.length], before[step + 2]]) {
          if (victim.startsWith('e') && !removed.has(victim)) {
            core.unlink(d, victim, ROOT_CRED)
            removed.add(victim)
            if (!sofar.includes(victim)) removedAhead.add(victim)
          }
        }

        core.mknod(d, `new${added++}`, 0o100644, 0, ROOT_CRED)
        step++
      },
    )
    expect(new Set(listed).size, 'no name twice').to.equal(listed.length)
    expect(listed).to.include.members(before.filter(n => !removed.has(n)))
    expect(
      listed.filter(n => removedAhead.has(n)),
      'removed before the listing reached them',
    ).to.deep.equal([])
    expect(removedAhead.size).to.be.greaterThan(5)
  })

  it('offset 0 starts over and shows the directory as it is now; an offset it does not hold counts from the start', () => {
    const {d, fh} = openDir(10)
    ask(fh, 0, 10, true)
    core.unlink(d, 'e0', ROOT_CRED)
    core.mknod(d, 'late', 0o100644, 0, ROOT_CRED)
    expect(ask(fh, 0, 100, true).names).to.deep.equal(current(d))
    expect(ask(fh, 4, 100, false).names).to.deep.equal(current(d).slice(4))
    expect(ask(fh, 2, 100, false).names).to.deep.equal(current(d).slice(2))
  })

  it('the kernel turning to readdirplus inside a plain answer: the listing goes on after the offset, whatever went before it', () => {
    const {d, fh} = openDir(30)
    const plain = ask(fh, 0, 64, false)
    expect(plain.names).to.deep.equal(current(d))
    // The addon served the kernel '.', '..' and 10 entries of it; meanwhile three of those go, one
    // comes back and a new name comes (a count from the start would land off, one way or the
    // other, as the volume puts new names first or last), and one further on goes.
    for (const n of plain.names.slice(2, 5)) core.unlink(d, n, ROOT_CRED)
    core.mknod(d, plain.names[3], 0o100644, 0, ROOT_CRED)
    core.mknod(d, 'new', 0o100644, 0, ROOT_CRED)
    core.unlink(d, plain.names[17], ROOT_CRED)
    const rest = plain.names.slice(12).filter(n => n !== plain.names[17])
    const plus = ask(fh, plain.offs[11], 10, true)
    expect(plus.names).to.deep.equal(rest.slice(0, 10))
    expect(plus.withAttrs.every(Boolean)).to.equal(true)
    expect(ask(fh, plus.offs[9], 64, true).names).to.deep.equal(rest.slice(10))
  })

  it('each handle keeps its last answer, plain or readdirplus; releasedir forgets it and releases the handle', () => {
    const open = core.openHandles
    const {fh} = openDir(30)
    expect(reader.keptAnswers).to.equal(0)
    ask(fh, 0, 10, true)
    expect(reader.keptAnswers).to.equal(1)
    ask(fh, 10, 10, false)
    expect(reader.keptAnswers).to.equal(1)
    reader.releasedir(fh)
    expect(reader.keptAnswers).to.equal(0)
    expect(core.openHandles).to.equal(open)
    expect(() => ask(fh, 3, 10, true))
      .to.throw(FsError)
      .with.property('code', 'EBADF')
  })
})

/**
 * The ll adapter's passthrough bookkeeping (src/fuse/ll/passthrough.ts) over a real core and
 * image: the kernel takes one way per open inode, so a later open joins the first one's, and an
 * open that may write must be listed in `writers` before the kernel writes the file itself.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {type LowLevelAddon, OPEN_KEEP_CACHE, OPEN_NOFLUSH} from '../../../src/fuse/ll/binding.js'
import {Passthrough} from '../../../src/fuse/ll/passthrough.js'
import {WRITERS_NAME} from '../../../src/storage/format.js'
import {ROOT_INO} from '../../../src/storage/index.js'
import {FsError} from '../../../src/vfs/volume.js'
import {withCore} from '../../helpers/core.js'

const cred = {uid: 0, gid: 0}
const {O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY} = fs.constants

describe('ll passthrough: the backing id of each open', () => {
  const f = withCore('razorfs-pt-')
  const session = {}
  let opened: number[]
  /** The addon's two backing calls, as the kernel answers them: ids from 1, none refused. */
  const ll = {
    backingOpen: (_session: object, fd: number) => {
      opened.push(fd)
      return opened.length
    },
    backingClose: () => {},
  } as unknown as LowLevelAddon

  beforeEach(() => {
    opened = []
  })

  /** A file with content (a new empty one is served until a content file is ready). */
  function written(name: string): number {
    const {fh, attr} = f.core.create(ROOT_INO, name, 0o100644, O_RDWR, cred)
    f.core.write(fh, Buffer.from('data'), 0)
    f.core.release(fh)
    return attr.ino
  }

  /**
   * File `f`, written and open for reading through passthrough (backing id 1), with a writers list
   * that cannot be made, as on a full host: a directory (`list`) where its file goes.
   */
  function readerOfUnlistable(pt: Passthrough): {ino: number; reader: number; list: string} {
    const ino = written('f')
    const reader = f.core.open(ino, O_RDONLY, cred)
    expect(pt.open(session, reader, ino)).to.equal(1)
    const list = path.join(f.image.dir, WRITERS_NAME)
    fs.mkdirSync(list)
    return {ino, reader, list}
  }

  it('later opens of an open inode join the first one’s way, and a new empty file is served', () => {
    const pt = new Passthrough(ll, f.core, () => {}, true)
    const ino = written('f')
    const first = f.core.open(ino, O_RDONLY, cred)
    expect(pt.open(session, first, ino)).to.equal(1)
    const second = f.core.open(ino, O_RDWR, cred)
    expect(pt.open(session, second, ino), 'the same backing id').to.equal(1)
    expect(opened).to.have.length(1)
    pt.release(session, first)
    f.core.release(first)
    pt.release(session, second)
    f.core.release(second)

    const made = f.core.create(ROOT_INO, 'new', 0o100644, O_WRONLY, cred)
    expect(pt.open(session, made.fh, made.attr.ino), 'no content file ready: served').to.equal(0)
    pt.release(session, made.fh)
    f.core.release(made.fh)
  })

  it('a served open keeps no page cache while passthrough is on (what the kernel wrote past it may be newer)', () => {
    const on = new Passthrough(ll, f.core, () => {}, true)
    expect(on.cacheFlags(OPEN_KEEP_CACHE | OPEN_NOFLUSH, 0)).to.equal(OPEN_NOFLUSH)
    expect(on.cacheFlags(OPEN_KEEP_CACHE | OPEN_NOFLUSH, 3), 'a passthrough open: the addon drops them itself').to.equal(OPEN_KEEP_CACHE | OPEN_NOFLUSH)
    const off = new Passthrough(ll, f.core, () => {}, false)
    expect(off.cacheFlags(OPEN_KEEP_CACHE | OPEN_NOFLUSH, 0), 'no passthrough: every open is served').to.equal(OPEN_KEEP_CACHE | OPEN_NOFLUSH)
  })

  it('an open that may write fails with ENOSPC when it cannot be listed as a writer, rather than write unlisted', () => {
    const pt = new Passthrough(ll, f.core, () => {}, true)
    const {ino, reader, list} = readerOfUnlistable(pt)
    const writer = f.core.open(ino, O_WRONLY, cred)
    expect(() => pt.open(session, writer, ino))
      .to.throw(FsError)
      .with.property('code', 'ENOSPC')
    f.core.release(writer)
    // The reader is untouched and its inode still the kernel's.
    const another = f.core.open(ino, O_RDONLY, cred)
    expect(pt.open(session, another, ino)).to.equal(1)
    for (const fh of [reader, another]) {
      pt.release(session, fh)
      f.core.release(fh)
    }

    fs.rmdirSync(list)
    // The failed open counted for nothing: the inode's last open gave its backing id back.
    const later = f.core.open(ino, O_RDWR, cred)
    expect(pt.open(session, later, ino), 'a new backing id').to.equal(2)
    pt.release(session, later)
    f.core.release(later)
  })

  it('an O_TRUNC open refused that way leaves the file as it was (the backing id is settled before the truncation)', () => {
    const pt = new Passthrough(ll, f.core, () => {}, true)
    const {ino, reader, list} = readerOfUnlistable(pt)
    const join = (fh: number, at: number): void => {
      pt.open(session, fh, at)
    }

    for (const attempt of [
      () => f.core.open(ino, O_WRONLY | O_TRUNC, cred, join),
      () => f.core.create(ROOT_INO, 'f', 0o644, O_CREAT | O_WRONLY | O_TRUNC, cred, join),
    ]) {
      expect(attempt).to.throw(FsError).with.property('code', 'ENOSPC')
      expect(f.core.getattr(ino).size, 'not truncated').to.equal(4)
    }

    const buf = Buffer.alloc(8)
    expect(buf.subarray(0, f.core.read(reader, buf, 0)).toString()).to.equal('data')
    pt.release(session, reader)
    f.core.release(reader)
    fs.rmdirSync(list)
    // With the list makeable, the same open truncates.
    const writer = f.core.open(ino, O_WRONLY | O_TRUNC, cred, join)
    expect(f.core.getattr(ino).size).to.equal(0)
    pt.release(session, writer)
    f.core.release(writer)
  })
})

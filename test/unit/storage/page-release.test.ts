/**
 * page-release.ts on one mapped file: with no dirty page a release drops the whole range; with
 * dirty pages it drops the clean runs between them of 16 pages or more and leaves the dirty pages
 * (and the short clean runs between them) mapped, with their changes. And MappedFile.writeBack:
 * it drops the pages it wrote, except in a file marked keepWrittenPages (the hash indexes).
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {FILES, PAGE_SIZE} from '../../../src/storage/format.js'
import {MappedFile} from '../../../src/storage/mapped-file.js'
import {releaseCleanPages} from '../../../src/storage/page-release.js'

describe('storage: releasing clean pages of one mapped file', () => {
  let dir: string
  let file: MappedFile

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-page-release-'))
    file = MappedFile.create(FILES[0], path.join(dir, 'f.dat'), 100 * PAGE_SIZE)
  })

  afterEach(() => {
    file.close()
    fs.rmSync(dir, {recursive: true, force: true})
  })

  function change(page: number, byte: number): void {
    file.buf[page * PAGE_SIZE + 7] = byte
    file.markDirty(page * PAGE_SIZE + 7, 1)
  }

  /**
   * A write the dirty set does not know of: it lives only in this process's private copy of the
   * page, so it reads back until the page is dropped, then the file's zeros do. It shows which
   * pages a release really dropped (never done by the image, whose writes are all marked).
   */
  function scribble(page: number): void {
    file.buf[page * PAGE_SIZE + 9] = 0xab
  }

  const scribbled = (page: number): boolean => file.buf[page * PAGE_SIZE + 9] === 0xab

  it('drops the whole range when nothing is dirty', () => {
    for (const page of [0, 50, 99]) scribble(page)
    expect(releaseCleanPages(file, 10 * PAGE_SIZE, 20 * PAGE_SIZE + 5)).to.equal(10)
    expect([0, 50, 99].map(p => scribbled(p))).to.deep.equal([true, true, true])
    expect(releaseCleanPages(file)).to.equal(100)
    expect([0, 50, 99].map(p => scribbled(p))).to.deep.equal([false, false, false])
  })

  it('keeps dirty pages and the short clean runs between them', () => {
    // Clean runs: 0..9 (10 pages, kept), 11..12 (2, kept), 14..39 (26, dropped), 41..99 (59, dropped).
    for (const page of [10, 13, 40]) change(page, page)
    for (const page of [5, 12, 20, 60]) scribble(page)
    expect(releaseCleanPages(file)).to.equal(26 + 59)
    for (const page of [10, 13, 40]) expect(file.buf[page * PAGE_SIZE + 7]).to.equal(page)
    expect([5, 12, 20, 60].map(p => scribbled(p))).to.deep.equal([true, true, false, false])
  })

  it('a write-back drops the pages it wrote, unless the file keeps them', () => {
    // A byte written to the file behind the mapping's back shows through a page read from the page
    // cache, not through a private copy: it tells which pages the write-back dropped.
    const behind = (page: number): boolean => {
      fs.writeSync(file.fd, Buffer.from([0xcd]), 0, 1, page * PAGE_SIZE + 11)
      return file.buf[page * PAGE_SIZE + 11] === 0xcd
    }

    change(3, 33)
    file.writeBack()
    expect(file.dirty.size).to.equal(0)
    expect(file.pread(3 * PAGE_SIZE + 7, 1)[0]).to.equal(33)
    expect(behind(3)).to.equal(true)
    expect(file.buf[3 * PAGE_SIZE + 7]).to.equal(33)
    file.keepWrittenPages = true
    change(5, 55)
    file.writeBack()
    expect(file.pread(5 * PAGE_SIZE + 7, 1)[0]).to.equal(55)
    expect(behind(5)).to.equal(false)
    expect(file.buf[5 * PAGE_SIZE + 7]).to.equal(55)
  })
})

/** The walks of dump and the archive on damaged images: bounded, never looping, never crashing. */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {archiveImage, dumpImage} from '../../../src/inspect/index.js'
import {DIRENT, INODE} from '../../../src/storage/format.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'

const FILE = {mode: 0o100644, uid: 0, gid: 0}
const DIR = {mode: 0o040755, uid: 0, gid: 0}

/** Build a small tree, then damage one entry of /d with `damage(entrySlot)` in a transaction. */
function damaged(dir: string, damage: (image: Image, entry: number) => void): void {
  fs.mkdirSync(dir, {recursive: true})
  const image = Image.create(dir, {uid: 0, gid: 0})
  const d = image.mknod(ROOT_INO, 'd', DIR).ino
  for (let i = 0; i < 5; i++) image.mknod(d, `f${i}`, FILE)
  image.mknod(d, 'sub', DIR)
  const {entries, store} = image.internals()
  // The newest entry of /d is 'sub': the head of its chain.
  const head = image.internals().nodes.file.buf.readUInt32LE(image.internals().nodes.off(d % 2 ** 32) + INODE.OFF.dirHead)
  expect(entries.file.buf.readUInt32LE(entries.off(head) + DIRENT.OFF.child)).to.equal(image.lookup(d, 'sub') % 2 ** 32)
  store.transaction(() => damage(image, head))
  image.close()
}

function dumpLines(dir: string, json: boolean): string[] {
  const out = path.join(dir, '..', `out-${Math.random()}`)
  const fd = fs.openSync(out, 'w')
  try {
    dumpImage(dir, {headers: false, json}, fd)
  } finally {
    fs.closeSync(fd)
  }

  return fs.readFileSync(out, 'utf8').split('\n').filter(Boolean)
}

describe('inspect/walk on damaged images', () => {
  let root: string
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-walk-'))
  })
  afterEach(() => fs.rmSync(root, {recursive: true, force: true}))

  it('an entry chain that loops on itself ends (bounded by the table size)', () => {
    const dir = path.join(root, 'img')
    damaged(dir, (image, entry) => {
      const {entries, store} = image.internals()
      store.set32(entries.file, entries.off(entry) + DIRENT.OFF.next, entry)
    })
    const json = dumpLines(dir, true)
    expect(json.length).to.be.lessThan(100)
    const text = dumpLines(dir, false)
    expect(text.length).to.be.lessThan(200)
  })

  it('a dangling entry is shown with its problem, and left out of an archive with a warning', () => {
    const dir = path.join(root, 'img')
    damaged(dir, (image, entry) => {
      const {entries, store} = image.internals()
      store.set32(entries.file, entries.off(entry) + DIRENT.OFF.childGen, 7)
    })
    const json = dumpLines(dir, true).map(l => JSON.parse(l) as Record<string, unknown>)
    const sub = json.find(j => j.path === '/d/sub')!
    expect(sub.problem).to.match(/dangling entry/)
    expect(dumpLines(dir, false).join('\n')).to.match(/\? +\? +sub +\(dangling entry/)
    const warnings: string[] = []
    const result = archiveImage(dir, path.join(root, 'a.tar'), {}, w => warnings.push(w))
    expect(result.skipped).to.equal(1)
    expect(warnings).to.have.length(1)
    expect(warnings[0]).to.match(/^\/d\/sub: left out of the archive/)
  })

  it('a directory entry pointing back at an ancestor is not entered again', () => {
    const dir = path.join(root, 'img')
    damaged(dir, (image, entry) => {
      const {entries, store} = image.internals()
      // /d/sub now names /d itself: a cycle.
      store.set32(entries.file, entries.off(entry) + DIRENT.OFF.child, image.lookup(ROOT_INO, 'd') % 2 ** 32)
    })
    expect(dumpLines(dir, true).length).to.be.lessThan(20)
    expect(dumpLines(dir, false).length).to.be.lessThan(40)
  })
})

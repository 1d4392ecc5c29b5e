/**
 * Content files' fan-out directories (contents.ts, Contents.create): made once per image, not
 * once per new file, and made again if one disappears under a live image.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {Image, ROOT_INO} from '../../../src/storage/index.js'

describe('storage: content files fan-out directories', () => {
  let dir: string
  let mkdirs: string[]
  const mkdirSync = fs.mkdirSync

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-content-dirs-'))
    mkdirs = []
    fs.mkdirSync = ((p: fs.PathLike, options?: fs.MakeDirectoryOptions) => {
      mkdirs.push(String(p))
      return mkdirSync(p, options)
    }) as typeof fs.mkdirSync
  })

  afterEach(() => {
    fs.mkdirSync = mkdirSync
    fs.rmSync(dir, {recursive: true, force: true})
  })

  const write = (image: Image, name: string): string => {
    const {ino} = image.mknod(ROOT_INO, name, {mode: 0o100644, uid: 0, gid: 0})
    image.write(ino, Buffer.from(name), 0)
    return name
  }

  it('a new file in a directory already made asks for no mkdir; one removed by hand is made again', () => {
    const image = Image.create(dir, {})
    const data = path.join(dir, 'data')
    mkdirs = []
    for (let i = 0; i < 600; i++) write(image, `f${i}`)
    // 600 new files over the 256 fan-out directories: each made once.
    const made = mkdirs.filter(p => p.startsWith(data))
    expect(made).to.have.length(new Set(made).size)
    expect(made.length).to.be.at.most(256)

    const [xx] = fs.readdirSync(data).filter(n => /^[0-9a-f]{2}$/.test(n))
    const ids = fs.readdirSync(path.join(data, xx)).map(Number)
    image.sync()
    for (const id of ids) fs.rmSync(path.join(data, xx, String(id)))
    fs.rmdirSync(path.join(data, xx))
    // The next new file whose id falls in that directory makes it again.
    let i = 600
    while (!fs.existsSync(path.join(data, xx))) write(image, `g${i++}`)
    expect(fs.readdirSync(path.join(data, xx))).to.have.length(1)
    image.abandon()
  })
})

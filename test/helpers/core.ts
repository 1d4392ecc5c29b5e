/**
 * The filesystem core over a new image in a temp dir, made afresh for each test of the describe
 * block that calls withCore (and closed and removed after it).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {Image} from '../../src/storage/index.js'
import {FileSystem} from '../../src/vfs/filesystem.js'

export interface CoreFixture {
  readonly image: Image
  readonly core: FileSystem
}

export function withCore(prefix: string, imageOpts: Parameters<typeof Image.create>[1] = {uid: 0, gid: 0}): CoreFixture {
  let dir = ''
  let image: Image | undefined
  let core: FileSystem | undefined
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
    image = Image.create(dir, imageOpts)
    core = new FileSystem(image)
  })

  afterEach(() => {
    image?.close()
    image = undefined
    core = undefined
    fs.rmSync(dir, {recursive: true, force: true})
  })

  return {
    get image(): Image {
      return image!
    },
    get core(): FileSystem {
      return core!
    },
  }
}

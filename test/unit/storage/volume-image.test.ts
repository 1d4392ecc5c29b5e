/**
 * The storage interface's suite (test/interface/volume.suite.ts) on its first implementation: the
 * mmap'd, write-ahead-logged image, each case in a new data dir.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {Image} from '../../../src/storage/image.js'
import {type VolumeHarness, volumeSuite} from '../../interface/volume.suite.js'

function imageHarness(): VolumeHarness {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-volume-'))
  let image = Image.create(dir, {uid: 0, gid: 0})
  return {
    get volume() {
      return image
    },
    reopen(opts = {}) {
      image.close()
      image = Image.open(dir, {readOnly: opts.readOnly})
      return image
    },
    crash() {
      image.abandon()
      image = Image.open(dir)
      return image
    },
    dispose() {
      image.close()
      fs.rmSync(dir, {recursive: true, force: true})
    },
  }
}

volumeSuite('the mmap image', imageHarness)

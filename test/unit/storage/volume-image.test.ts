/**
 * The storage interface's suite (test/interface/volume.suite.ts) on its first implementation: the
 * mmap'd, write-ahead-logged image, each case in a new data dir.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {Image} from '../../../src/storage/image.js'
import {type VolumeHarness, reopeningHarness, volumeSuite} from '../../interface/volume.suite.js'

function imageHarness(): VolumeHarness {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-volume-'))
  return reopeningHarness(
    Image.create(dir, {uid: 0, gid: 0}),
    opts => Image.open(dir, {readOnly: opts.readOnly}),
    () => fs.rmSync(dir, {recursive: true, force: true}),
  )
}

volumeSuite('the mmap image', imageHarness)

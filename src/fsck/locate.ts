/**
 * Where fsck finds things, shared by the passes and salvage: a content file's path, which
 * content numbers are ids at all, and the name an entry is shown by.
 */
import path from 'node:path'

import {DATA_DIR_NAME} from '../storage/format.js'
import {D} from './checked-image.js'
import {type Check, STR_NAME} from './state.js'

/** Content file numbers at or above this are garbage, not ids (ids count up from 1). */
export const DATA_ID_LIMIT = 2 ** 48

export function contentPath(c: Check, dataId: number): string {
  return path.join(c.img.dir, DATA_DIR_NAME, (dataId % 256).toString(16).padStart(2, '0'), String(dataId))
}

/** The best name an entry has for a message: its interned name, else its own copy. */
export function label(c: Check, d: number): Buffer {
  const {img, st} = c
  const unit = img.e32(d, D.name)
  if (unit >= 1 && unit < st.heapEnd && st.str[unit] === STR_NAME && img.strLength(unit) <= 255) return Buffer.from(img.strBytes(unit))
  return Buffer.from(img.inlineName(d))
}

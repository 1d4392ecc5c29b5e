/** The errno code of an FsError, for tests of the core and of the storage interface. */
import {expect} from 'chai'

import {FsError} from '../../src/storage/errors.js'

/** The FsError code `fn` throws (fails if it does not throw, or throws something else). */
export function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    if (error instanceof FsError) return error.code
    throw error
  }

  expect.fail('expected an FsError, but the call succeeded')
}

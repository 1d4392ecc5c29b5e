/** getxattr and listxattr against the caller's buffer size, without a mount. */
import {expect} from 'chai'

import {FsError} from '../../../src/storage/index.js'
import {fitXattr, xattrList} from '../../../src/vfs/xattr-sizes.js'

describe("vfs: extended attribute answers and the caller's buffer", () => {
  const value = Buffer.from('twelve bytes')

  it('size 0 asks for the length', () => {
    expect(fitXattr(value, 0, 'getxattr')).to.equal(12)
    expect(fitXattr(Buffer.alloc(0), 0, 'listxattr')).to.equal(0)
  })

  it('a buffer as long or longer gets the value', () => {
    expect(fitXattr(value, 12, 'getxattr')).to.equal(value)
    expect(fitXattr(value, 4096, 'getxattr')).to.equal(value)
  })

  it('a shorter buffer is ERANGE', () => {
    for (const syscall of ['getxattr', 'listxattr'] as const) {
      expect(() => fitXattr(value, 11, syscall))
        .to.throw(FsError)
        .with.property('code', 'ERANGE')
    }
  })

  it("listxattr's list ends every name with a NUL byte", () => {
    expect(xattrList(['user.a', 'security.ünï'])).to.deep.equal(Buffer.from('user.a\0security.ünï\0'))
    expect(xattrList([])).to.deep.equal(Buffer.alloc(0))
  })
})

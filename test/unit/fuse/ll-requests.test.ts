/**
 * The razorfs_ll addon and its TypeScript face agree: the op table and the field table the addon
 * exports (made from the lists in native/razorfs_ll.h) are exactly binding.ts's OP and FIELD; and
 * requests are decoded from the field array into typed requests as native/requests.c fills it.
 */
import {expect} from 'chai'

import {FIELD, FIELD_COUNT, OP, type SetattrFields, loadLowLevel, tableDifferences} from '../../../src/fuse/ll/binding.js'
import {type LlRequest, type RequestHandler, decodeRequest, requestDispatch} from '../../../src/fuse/ll/requests.js'

/** A field array as the addon writes it: every field set, from `set` or else to a distinct number. */
function fields(set: Partial<Record<keyof typeof FIELD, number>>): Float64Array {
  const f = new Float64Array(FIELD_COUNT)
  for (const [name, i] of Object.entries(FIELD)) f[i] = set[name as keyof typeof FIELD] ?? 1000 + i
  return f
}

describe("ll: the addon's tables and the typed requests", () => {
  it("the addon's op table is exactly OP, and its field table exactly FIELD", () => {
    const ll = loadLowLevel()
    expect({...ll.ops}).to.deep.equal(OP)
    expect({...ll.fields}).to.deep.equal(FIELD)
    expect(FIELD_COUNT).to.equal(Object.keys(ll.fields).length)
  })

  it('every op number is used once, from 0 up, and no op is left without a request type', () => {
    const numbers = Object.values(OP).sort((a, b) => a - b)
    expect(numbers).to.deep.equal([...numbers.keys()])
    expect(OP).to.not.have.any.keys('DESTROY', 'FORGET')
    // Every op decodes into a request of that op.
    for (const op of numbers) expect(decodeRequest(fields({OP: op}), Buffer.from('n'), Buffer.from('m')).op).to.equal(op)
  })

  it('a difference between the tables is found, whichever side has it', () => {
    expect(tableDifferences('ops', {A: 0, B: 1}, {A: 0, B: 1})).to.deep.equal([])
    expect(tableDifferences('ops', {A: 0, B: 2}, {A: 0, B: 1})).to.deep.equal(['ops.B: 2 in the addon, 1 here'])
    expect(tableDifferences('ops', {A: 0}, {A: 0, B: 1})).to.deep.equal(['ops.B: missing in the addon, 1 here'])
    expect(tableDifferences('ops', {A: 0, B: 1, C: 2}, {A: 0, B: 1})).to.deep.equal(['ops.C: 2 in the addon, missing here'])
    expect(tableDifferences('fields', undefined, {A: 0})).to.deep.equal(['the addon has no fields table'])
  })

  it('decodes each request from the fields its job sets', () => {
    const name = Buffer.from('name')
    const other = Buffer.from('other')
    const decode = (set: Partial<Record<keyof typeof FIELD, number>>, first?: Buffer | SetattrFields, second?: Buffer): LlRequest =>
      decodeRequest(fields({REQ: 77, ...set}), first, second)
    expect(decode({OP: OP.LOOKUP, INO: 5}, name)).to.deep.equal({op: OP.LOOKUP, req: 77, parent: 5, name})
    expect(decode({OP: OP.GETATTR, INO: 5, FH: -1})).to.deep.equal({op: OP.GETATTR, req: 77, ino: 5, fh: -1})
    const set: SetattrFields = {size: 3, mtimeNow: 1}
    expect(decode({OP: OP.SETATTR, INO: 5, FH: 9}, set)).to.deep.equal({op: OP.SETATTR, req: 77, ino: 5, fields: set, fh: 9})
    expect(decode({OP: OP.MKNOD, INO: 5, MODE: 0o10644, ARG: 259}, name)).to.deep.equal({op: OP.MKNOD, req: 77, parent: 5, name, mode: 0o10644, rdev: 259})
    expect(decode({OP: OP.SYMLINK, INO: 5}, name, other)).to.deep.equal({op: OP.SYMLINK, req: 77, parent: 5, name, target: other})
    expect(decode({OP: OP.RENAME, INO: 5, INO2: 6, FLAGS: 1}, name, other)).to.deep.equal({
      op: OP.RENAME,
      req: 77,
      parent: 5,
      name,
      newParent: 6,
      newName: other,
      flags: 1,
    })
    expect(decode({OP: OP.LINK, INO: 5, INO2: 6}, name)).to.deep.equal({op: OP.LINK, req: 77, ino: 5, newParent: 6, newName: name})
    expect(decode({OP: OP.READDIRPLUS, INO: 5, FH: 8, SIZE: 4096, OFF: 12})).to.deep.equal({op: OP.READDIRPLUS, req: 77, ino: 5, fh: 8, size: 4096, off: 12})
    expect(decode({OP: OP.WRITE, INO: 5, FH: 8, OFF: 2 ** 40, TOKEN: 2 ** 46, FLAGS: 1025}, name)).to.deep.equal({
      op: OP.WRITE,
      req: 77,
      ino: 5,
      fh: 8,
      data: name,
      off: 2 ** 40,
      token: 2 ** 46,
      flags: 1025,
      kill: false,
    })
    // ARG 1: the kernel asks to clear set-user-ID and set-group-ID (native/kernel.c).
    expect(decode({OP: OP.WRITE, INO: 5, FH: 8, ARG: 1}, name)).to.include({op: OP.WRITE, kill: true})
    expect(decode({OP: OP.OPEN, INO: 5, FLAGS: 0o1001, ARG: 1})).to.deep.equal({op: OP.OPEN, req: 77, ino: 5, flags: 0o1001, kill: true})
    expect(decode({OP: OP.FSYNC, INO: 5, FH: 8, ARG: 1})).to.deep.equal({op: OP.FSYNC, req: 77, ino: 5, fh: 8, datasync: 1})
    expect(decode({OP: OP.SETXATTR, INO: 5, FLAGS: 2}, name, other)).to.deep.equal({op: OP.SETXATTR, req: 77, ino: 5, name, value: other, flags: 2})
    expect(decode({OP: OP.GETXATTR, INO: 5, SIZE: 0}, name)).to.deep.equal({op: OP.GETXATTR, req: 77, ino: 5, name, size: 0})
    expect(decode({OP: OP.ACCESS, INO: 5, MODE: 4})).to.deep.equal({op: OP.ACCESS, req: 77, ino: 5, mask: 4})
    expect(decode({OP: OP.CREATE, INO: 5, MODE: 0o644, FLAGS: 0o101}, name)).to.deep.equal({
      op: OP.CREATE,
      req: 77,
      parent: 5,
      name,
      mode: 0o644,
      flags: 0o101,
      kill: false,
    })
    expect(decode({OP: OP.FALLOCATE, INO: 5, FH: 8, MODE: 3, OFF: 10, OFF2: 20})).to.deep.equal({
      op: OP.FALLOCATE,
      req: 77,
      ino: 5,
      fh: 8,
      mode: 3,
      off: 10,
      length: 20,
    })
    expect(decode({OP: OP.LSEEK, INO: 5, FH: 8, OFF: 10, ARG: 4})).to.deep.equal({op: OP.LSEEK, req: 77, ino: 5, fh: 8, off: 10, whence: 4})
    expect(decode({OP: OP.COPY_FILE_RANGE, INO: 5, FH: 8, OFF: 1, INO2: 6, FH2: 9, OFF2: 2, SIZE: 100, FLAGS: 0})).to.deep.equal({
      op: OP.COPY_FILE_RANGE,
      req: 77,
      ino: 5,
      fh: 8,
      off: 1,
      inoOut: 6,
      fhOut: 9,
      offOut: 2,
      length: 100,
      flags: 0,
    })
  })

  it('an op number the addon should never send is an error (the addon then answers EIO)', () => {
    expect(() => decodeRequest(fields({OP: 99}), undefined, undefined)).to.throw(/unknown operation 99/)
  })

  it('the dispatch function decodes the field array the addon writes, with the caller beside the request', () => {
    const seen: Array<[LlRequest, {uid: number; gid: number; pid: number; umask: number}]> = []
    const handler: RequestHandler = (r, caller) => seen.push([r, {...caller}])
    const {dispatch, fields: shared} = requestDispatch(handler)
    expect(shared.length).to.equal(FIELD_COUNT)
    shared.set(fields({OP: OP.OPEN, REQ: 1, INO: 5, FLAGS: 2, UID: 1000, GID: 100, PID: 42, UMASK: 0o22}))
    dispatch(undefined, undefined)
    shared.set(fields({OP: OP.UNLINK, REQ: 2, INO: 6, UID: 0, GID: 0, PID: 43, UMASK: 0o77}))
    dispatch(Buffer.from('x'), undefined)
    expect(seen).to.deep.equal([
      [
        {op: OP.OPEN, req: 1, ino: 5, flags: 2, kill: false},
        {uid: 1000, gid: 100, pid: 42, umask: 0o22},
      ],
      [
        {op: OP.UNLINK, req: 2, parent: 6, name: Buffer.from('x')},
        {uid: 0, gid: 0, pid: 43, umask: 0o77},
      ],
    ])
  })
})

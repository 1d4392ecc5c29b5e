/**
 * The ll adapter's directory listing, driven without a mount: a stand-in for the addon plays the
 * kernel, which may take fewer entries of a readdirplus answer than it got and asks again from
 * the offset of the last one it took, while names come and go between its requests.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {LowLevelAdapter} from '../../../src/fuse/ll-adapter.js'
import {OP} from '../../../src/fuse/ll/binding.js'
import type {LlRequest} from '../../../src/fuse/ll/requests.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'
import {FileSystem, ROOT_CRED} from '../../../src/vfs/filesystem.js'

interface Answer {
  names: string[]
  offs: number[]
  plus: boolean
}

describe('ll adapter: readdir and readdirplus offsets', function () {
  let dir: string
  let image: Image
  let core: FileSystem
  let adapter: LowLevelAdapter
  /** How many entries of a readdirplus answer the stand-in kernel takes. */
  let plusTake = 5
  let answers: Answer[]
  let fh = 0

  const ctx = {uid: 0, gid: 0, pid: 1, umask: 0o022}
  const dispatch = (r: LlRequest) => (adapter as any).dispatch(r, ctx)
  const opendir = (ino: number) => dispatch({op: OP.OPENDIR, req: 1, ino, flags: 0, kill: false})
  const releasedir = (ino: number) => dispatch({op: OP.RELEASEDIR, req: 1, ino, fh, flags: 0})
  const readdir = (plus: boolean, ino: number, size: number, off: number) => dispatch({op: plus ? OP.READDIRPLUS : OP.READDIR, req: 1, ino, fh, size, off})

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-llrd-'))
    image = Image.create(dir, {uid: 0, gid: 0})
    core = new FileSystem(image)
    adapter = new LowLevelAdapter(core, '/nonexistent', {log: () => {}, onEnded: () => {}})
    answers = []
    ;(adapter as any).ll = {
      replyOpen: (_req: number, handle: number) => {
        fh = handle
      },
      replyErr(_req: number, errno: number) {
        if (errno !== 0) throw new Error(`errno ${errno}`)
      },
      replyDirents(_req: number, _size: number, plus: boolean, names: Buffer, ends: Uint32Array, _attrs: Float64Array, offs: Float64Array) {
        const list: string[] = []
        for (let i = 0; i < ends.length; i++) list.push(names.subarray(i === 0 ? 0 : ends[i - 1], ends[i]).toString())
        answers.push({names: list, offs: [...offs], plus})
        // Every entry fits (a plain answer is kept whole as the handle's run); the kernel may
        // still take fewer of a readdirplus answer (plusTake), when the caller's buffer is full.
        return list.length
      },
    }
  })

  afterEach(() => {
    image.close()
    fs.rmSync(dir, {recursive: true, force: true})
  })

  /**
   * A whole listing as the kernel makes it: readdirplus at offset 0 (the first `plusRequests`
   * requests), then plain readdir, each from the offset of the last entry taken; `between` runs
   * between requests.
   */
  function list(ino: number, plusRequests: number, between: (listed: string[]) => void, size = (_r: number) => 4096): string[] {
    opendir(ino)
    const listed: string[] = []
    let off = 0
    for (let r = 0; ; r++) {
      const plus = r < plusRequests
      readdir(plus, ino, size(r), off)
      const a = answers.at(-1)!
      if (a.names.length > 0) expect(a.offs[0], `request ${r} answered past its offset`).to.be.greaterThan(off)
      const took = plus ? Math.min(plusTake, a.names.length) : a.names.length
      if (took === 0) break
      listed.push(...a.names.slice(0, took))
      off = a.offs[took - 1]
      between(listed)
    }

    releasedir(ino)
    return listed
  }

  function makeDir(n: number): number {
    const d = core.mkdir(ROOT_INO, 'd', 0o755, ROOT_CRED).ino
    for (let i = 0; i < n; i++) core.release(core.create(d, `f${i}`, 0o644, fs.constants.O_WRONLY, ROOT_CRED).fh)
    return d
  }

  it('the kernel taking part of a readdirplus answer gets the rest again, then the listing goes on', () => {
    const d = makeDir(100)
    const all = [...core.readdir(d)].map(e => e.name.toString())
    for (const take of [1, 3, 5, 40]) {
      plusTake = take
      expect(
        list(d, 4, () => {}),
        `take ${take}`,
      ).to.deep.equal(all)
    }
  })

  it('a smaller request than the kept answer gets it in parts', () => {
    const d = makeDir(100)
    const all = [...core.readdir(d)].map(e => e.name.toString())
    plusTake = 3
    // 54 entries, then requests of 7 entries (152 bytes each at least) from which the kernel takes 3.
    expect(
      list(
        d,
        30,
        () => {},
        r => (r === 0 ? 8192 : 1024),
      ),
    ).to.deep.equal(all)
  })

  it('names removed and added between requests: every entry that stays is listed once', () => {
    const d = makeDir(200)
    const order = [...core.readdir(d)].map(e => e.name.toString())
    const removed = new Set<string>()
    const removedAhead = new Set<string>()
    let added = 0
    plusTake = 7
    const listed = list(d, 6, sofar => {
      // The two last listed, the next two, one further ahead; and a new name.
      const ahead = order.filter(n => n.startsWith('f') && !sofar.includes(n) && !removed.has(n))
      for (const victim of [sofar.at(-1), sofar.at(-2), ahead[0], ahead[1], ahead[5]]) {
        if (victim === undefined || !victim.startsWith('f') || removed.has(victim)) continue
        core.unlink(d, victim, ROOT_CRED)
        removed.add(victim)
        if (!sofar.includes(victim)) removedAhead.add(victim)
      }

      core.release(core.create(d, `new${added++}`, 0o644, fs.constants.O_WRONLY, ROOT_CRED).fh)
    })
    expect(new Set(listed).size, 'no name twice').to.equal(listed.length)
    expect(listed, 'every entry that stayed').to.include.members(order.filter(n => !removed.has(n)))
    expect(
      listed.filter(n => removedAhead.has(n)),
      'removed before the listing reached them',
    ).to.deep.equal([])
    expect(removedAhead.size).to.be.greaterThan(5)
  })

  it('offset 0 starts over and shows the directory as it is now', () => {
    const d = makeDir(10)
    opendir(d)
    plusTake = 3
    readdir(true, d, 4096, 0)
    core.unlink(d, answers.at(-1)!.names[2], ROOT_CRED)
    core.release(core.create(d, 'late', 0o644, fs.constants.O_WRONLY, ROOT_CRED).fh)
    plusTake = 100
    readdir(true, d, 4096, 0)
    expect(answers.at(-1)!.names).to.deep.equal([...core.readdir(d)].map(e => e.name.toString()))
    // A seekdir to an offset the adapter no longer holds counts from the start.
    readdir(false, d, 4096, 4)
    expect(answers.at(-1)!.names).to.deep.equal([...core.readdir(d)].slice(4).map(e => e.name.toString()))
    releasedir(d)
  })
})

/**
 * The addon's host calls (native/host.c) as the server and the storage layer load them
 * (src/addon.ts): present after `npm install`; threadFaults counting this thread's page faults;
 * resident and hostTimes (fstatTimes) reading what Node reads, and fstat's error as Node throws it.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {addonFunction} from '../../src/addon.js'
import {hostTimes} from '../../src/storage/host-sync.js'

describe('addon host calls', () => {
  it('threadFaults counts the page faults of the calling thread: touching fresh pages raises it by about their number', () => {
    const threadFaults = addonFunction<() => number>('threadFaults')
    expect(threadFaults, 'threadFaults from build/Release/razorfs_ll.node').to.be.a('function')
    const pages = 2048
    const before = threadFaults!()
    const buf = new ArrayBuffer(pages * 4096) // large: mapped fresh, each page faulted at its first write
    const bytes = new Uint8Array(buf)
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 1
    const after = threadFaults!()
    expect(after - before).to.be.at.least(pages / 16) // huge pages or fault-around may map several at once
  })

  it('resident is the resident set Node reads, and grows with pages touched', () => {
    const resident = addonFunction<() => number>('resident')
    expect(resident, 'resident from build/Release/razorfs_ll.node').to.be.a('function')
    const ours = resident!()
    const node = process.memoryUsage.rss()
    expect(Math.abs(ours - node)).to.be.below(16 * 1024 * 1024)
    const bytes = new Uint8Array(new ArrayBuffer(64 * 1024 * 1024))
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 1
    expect(resident!() - ours).to.be.at.least(48 * 1024 * 1024)
  })

  it("hostTimes reads fs.fstatSync's size, nanosecond mtime and blocks, and throws fstat's error with its code", () => {
    expect(addonFunction('fstatTimes'), 'fstatTimes from build/Release/razorfs_ll.node').to.be.a('function')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rz-addon-'))
    try {
      const file = path.join(dir, 'f')
      fs.writeFileSync(file, Buffer.alloc(12_345, 1))
      fs.utimesSync(file, 1_000_000, 1_700_000_000.5) // a half second: nsec 500000000
      const fd = fs.openSync(file, 'r')
      const times = hostTimes(fd)
      const st = fs.fstatSync(fd, {bigint: true})
      expect(times).to.deep.equal({
        size: 12_345,
        mtime: {sec: Number(st.mtimeNs / 1_000_000_000n), nsec: Number(st.mtimeNs % 1_000_000_000n)},
        blocks: Number(st.blocks),
      })
      expect(times.mtime).to.deep.equal({sec: 1_700_000_000, nsec: 500_000_000})
      fs.closeSync(fd)
      expect(() => hostTimes(0x3fff_ffff)) // never open (a closed number could be reused by another test's pool job)
        .to.throw(/EBADF/)
        .with.property('code', 'EBADF')
    } finally {
      fs.rmSync(dir, {recursive: true})
    }
  })

  it('a function the addon does not have is undefined', () => {
    expect(addonFunction('noSuchCall')).to.equal(undefined)
  })
})

/**
 * The addon's host calls (native/host.c) as the server and the storage layer load them
 * (src/addon.ts): present after `npm install`, and threadFaults counting this thread's page faults.
 */
import {expect} from 'chai'

import {addonFunction} from '../../src/addon.js'

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

  it('a function the addon does not have is undefined', () => {
    expect(addonFunction('noSuchCall')).to.equal(undefined)
  })
})

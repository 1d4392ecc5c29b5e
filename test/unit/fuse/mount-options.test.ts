import {expect} from 'chai'

import {DEFAULT_TIMEOUTS, LL_TIMEOUTS, MountOptionError, escapeOptionValue, libfuse2Options, parseMountOptions} from '../../../src/fuse/mount-options.js'

describe('fuse: -o mount options', () => {
  it("no option: read-write, each binding's timeouts, nothing presented, no cache mode", () => {
    const s = parseMountOptions(undefined)
    expect(s).to.deep.equal({given: [], readOnly: false, kernel: ['rw'], nonempty: false, passthrough: true})
    expect(DEFAULT_TIMEOUTS).to.deep.equal({entryTimeout: 1, attrTimeout: 1, negativeTimeout: 0})
    expect(LL_TIMEOUTS).to.deep.equal({entryTimeout: 3600, attrTimeout: 3600, negativeTimeout: 3600})
    expect(libfuse2Options(s)).to.deep.equal(['rw', 'entry_timeout=1', 'attr_timeout=1', 'negative_timeout=0'])
  })

  it("splits the kernel's options from those razorfs implements; a later option overrides an earlier one", () => {
    const s = parseMountOptions(
      ' ro, allow_other,noexec,uid=1000,gid=0,umask=0027,max_read=65536,attr_timeout=0.5,entry_timeout=0,negative_timeout=30,auto_cache,kernel_cache,nonempty,rw,ro',
    )
    expect(s.readOnly).to.equal(true)
    expect(s.kernel).to.deep.equal(['ro', 'allow_other', 'noexec', 'max_read=65536'])
    expect(s).to.include({
      uid: 1000,
      gid: 0,
      umask: 0o027,
      maxRead: 65536,
      attrTimeout: 0.5,
      entryTimeout: 0,
      negativeTimeout: 30,
      cache: 'kernel_cache',
      nonempty: true,
    })
    expect(s.given[0]).to.equal('ro')
  })

  it('hands libfuse 2 everything, in the names and forms it parses', () => {
    const s = parseMountOptions('uid=5,umask=22,auto_cache,attr_timeout=0,nonempty')
    expect(libfuse2Options(s)).to.deep.equal(['rw', 'auto_cache', 'uid=5', 'umask=022', 'entry_timeout=1', 'attr_timeout=0', 'negative_timeout=0', 'nonempty'])
  })

  it('a bad option or value throws MountOptionError naming it', () => {
    for (const [text, pattern] of [
      ['nope', /unknown mount option 'nope'/],
      ['subtype=x', /unknown mount option 'subtype=x'/],
      ['uid=4294967295', /'uid=4294967295': not a numeric uid/],
      ['umask=8', /'umask=8': not an octal mask/],
      ['attr_timeout=1e3', /'attr_timeout=1e3': not a number of seconds/],
      ['attr_timeout=99999999', /more than/],
      ['max_read=-5', /'max_read=-5'/],
      ['gid=', /'gid=' needs a value \(gid=N\)/],
      ['noexec=yes', /noexec takes no value/],
      ['allow_root,allow_other', /exclude each other/],
    ] as const) {
      expect(() => parseMountOptions(text), text).to.throw(MountOptionError, pattern)
    }
  })

  it("escapes commas and backslashes for libfuse's option parser", () => {
    expect(escapeOptionValue('/srv/a,b\\c')).to.equal('/srv/a\\,b\\\\c')
  })
})

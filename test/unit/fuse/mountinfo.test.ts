import {expect} from 'chai'

import {parseMountInfo, unescapeMountPath} from '../../../src/fuse/mountinfo.js'

describe('fuse: /proc/self/mountinfo', () => {
  it('decodes the octal escapes of space, tab, newline and backslash, and UTF-8 names', () => {
    expect(unescapeMountPath('/tmp/a\\040b\\011c\\012d\\134e')).to.equal('/tmp/a b\tc\nd\\e')
    expect(unescapeMountPath('/tmp/caf\u00e9\\040x')).to.equal('/tmp/caf\u00e9 x')
    expect(unescapeMountPath('/plain')).to.equal('/plain')
  })

  it('parses mountpoint, device numbers, type, source and options, with optional fields before the separator', () => {
    const text = [
      '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
      '712 29 0:63 / /tmp/x\\040y/mnt\\040z rw,nosuid,nodev,relatime - fuse.razorfs /srv/data\\040dir rw,user_id=0,group_id=0',
      'garbage line',
      '',
    ].join('\n')
    expect(parseMountInfo(text)).to.deep.equal([
      {mountPoint: '/mnt2', major: 98, minor: 0, fsType: 'ext3', source: '/dev/root', mountOptions: ['rw', 'noatime'], superOptions: ['rw', 'errors=continue']},
      {
        mountPoint: '/tmp/x y/mnt z',
        major: 0,
        minor: 63,
        fsType: 'fuse.razorfs',
        source: '/srv/data dir',
        mountOptions: ['rw', 'nosuid', 'nodev', 'relatime'],
        superOptions: ['rw', 'user_id=0', 'group_id=0'],
      },
    ])
  })
})

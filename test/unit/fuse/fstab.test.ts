import {expect} from 'chai'

import {HelperUsageError, isFstabOnly, mountCommand, parseMountRequest, parseUnmountRequest, unmountCommand} from '../../../src/fuse/fstab.js'

describe('fuse: mount(8) and umount(8) helpers (fstab)', () => {
  it("takes mount(8)'s call and drops fstab's own options", () => {
    // What mount(8) passed to a helper for `defaults,noauto,nofail,_netdev,user,x-systemd.requires=foo,ro,...` (measured).
    const r = parseMountRequest(['/srv/rz', '/mnt/rz', '-o', 'ro,noatime,noexec,nosuid,nodev,allow_other,uid=5,nofail,_netdev,user'])
    expect(r).to.deep.equal({
      source: '/srv/rz',
      mountpoint: '/mnt/rz',
      options: ['ro', 'noatime', 'noexec', 'nosuid', 'nodev', 'allow_other', 'uid=5'],
      dropped: ['nofail', '_netdev', 'user'],
      fake: false,
      verbose: false,
    })
    expect(mountCommand(r)).to.deep.equal(['mount', '--data-dir', '/srv/rz', '-o', 'ro,noatime,noexec,nosuid,nodev,allow_other,uid=5', '/mnt/rz'])
  })

  it("takes mount.fuse3's call (dev,suid added) and the old razorfs#SOURCE form", () => {
    const r = parseMountRequest(['razorfs#/srv/rz', '/mnt/rz', '-o', 'rw,allow_other,dev,suid'])
    expect(r.source).to.equal('/srv/rz')
    expect(r.options).to.deep.equal(['rw', 'allow_other', 'dev', 'suid'])
  })

  it('fstab-only options: defaults, auto/noauto, user(s)/nouser, user=NAME, owner, group, _netdev, nofail, x-*, comment=, uhelper=, helper=', () => {
    for (const o of [
      'defaults',
      'auto',
      'noauto',
      'user',
      'users',
      'nouser',
      'owner',
      'group',
      '_netdev',
      'nofail',
      'x-systemd.automount',
      'x-mount.mkdir=0755',
      'comment=x',
      'user=alice', // a user's mount of a `user` line: libmount passes the name
      'uhelper=udisks2',
      'helper=x',
    ]) {
      expect(isFstabOnly(o), o).to.equal(true)
    }

    for (const o of ['ro', 'rw', 'noatime', 'nodev', 'uid=0', 'xattr', 'usersx']) expect(isFstabOnly(o), o).to.equal(false)
    const r = parseMountRequest(['/d', '/m', '-o', 'defaults,x-systemd.requires=a.service,comment=hi,auto'])
    expect(r.options).to.deep.equal([])
    expect(mountCommand(r)).to.deep.equal(['mount', '--data-dir', '/d', '/m'])
  })

  it('grouped and separate flags: -s -f -n -v, -oOPTS, several -o, -t razorfs or fuse.razorfs', () => {
    const r = parseMountRequest(['/d', '/m', '-fnv', '-oro', '-o', 'noatime', '-t', 'fuse.razorfs'])
    expect(r).to.include({fake: true, verbose: true})
    expect(r.options).to.deep.equal(['ro', 'noatime'])
    expect(parseMountRequest(['/d', '/m', '-t', 'razorfs', '-s']).fake).to.equal(false)
  })

  it('an option razorfs does not take is an error naming it; with -s (sloppy) it is dropped', () => {
    expect(() => parseMountRequest(['/d', '/m', '-o', 'ro,bogus'])).to.throw(HelperUsageError, /unknown mount option 'bogus'/)
    expect(() => parseMountRequest(['/d', '/m', '-o', 'uid=x'])).to.throw(HelperUsageError, /'uid=x'/)
    const sloppy = parseMountRequest(['/d', '/m', '-s', '-o', 'ro,bogus,uid=x,nofail'])
    expect(sloppy.options).to.deep.equal(['ro'])
    expect(sloppy.dropped).to.deep.equal(['bogus', 'uid=x', 'nofail'])
    // Options that are wrong only together are wrong even with -s.
    expect(() => parseMountRequest(['/d', '/m', '-s', '-o', 'allow_other,allow_root'])).to.throw(HelperUsageError, /exclude each other/)
  })

  it('a wrong command line names what is wrong', () => {
    const cases: [string[], RegExp][] = [
      [[], /SOURCE \(the data dir\) is missing/],
      [['/d'], /MOUNTPOINT is missing/],
      [['/d', ''], /MOUNTPOINT is missing/],
      [['razorfs#', '/m'], /SOURCE is empty after razorfs#/],
      [['/d', '/m', '/x'], /unexpected argument '\/x'/],
      [['/d', '/m', '-o'], /-o needs a value/],
      [['/d', '/m', '-x'], /unknown option -x/],
      [['/d', '/m', '-t', 'ext4'], /type 'ext4' is not razorfs's/],
      [['/d', '/m', '-N', '/proc/1/ns/mnt'], /-N .* not supported/],
    ]
    for (const [argv, message] of cases) expect(() => parseMountRequest(argv), argv.join(' ')).to.throw(HelperUsageError, message)
  })

  it("takes umount(8)'s call: -l is razorfs umount's -l, -f its --force", () => {
    expect(unmountCommand(parseUnmountRequest(['/mnt/rz']))).to.deep.equal(['umount', '/mnt/rz'])
    expect(unmountCommand(parseUnmountRequest(['/mnt/rz', '-lfnrv', '-t', 'fuse.razorfs']))).to.deep.equal(['umount', '-l', '--force', '/mnt/rz'])
    expect(parseUnmountRequest(['/m', '-v']).verbose).to.equal(true)
    expect(() => parseUnmountRequest([])).to.throw(HelperUsageError, /MOUNTPOINT/)
    expect(() => parseUnmountRequest(['/m', '/n'])).to.throw(HelperUsageError, /unexpected argument/)
    expect(() => parseUnmountRequest(['/m', '-o', 'x'])).to.throw(HelperUsageError, /unknown option -o/)
  })
})

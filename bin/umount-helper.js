#!/usr/bin/env node
// umount.fuse.razorfs, umount(8)'s helper for razorfs mounts (/sbin/umount.fuse.razorfs DIR [-flnrv]):
// unmounts and waits for the clean close. README, "fstab and systemd".
import {runUnmountHelper} from '../dist/src/fuse/fstab.js'

process.exitCode = runUnmountHelper(process.argv.slice(2), 'umount.fuse.razorfs')

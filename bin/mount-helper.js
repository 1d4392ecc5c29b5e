#!/usr/bin/env node
// mount.razorfs, mount(8)'s helper for the type razorfs (/sbin/mount.razorfs SOURCE DIR [-sfnv] [-o OPTS]):
// README, "fstab and systemd".
import {runMountHelper} from '../dist/src/fuse/fstab.js'

process.exitCode = runMountHelper(process.argv.slice(2), 'mount.razorfs')

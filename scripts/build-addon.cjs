#!/usr/bin/env node
// npm install hook: build the libfuse 3 binding (native/*.c, see binding.gyp) with node-gyp when the
// libfuse 3 headers are installed; otherwise say in one line what to install and go on (the
// fuse-native binding still works, and `razorfs mount --binding ll` explains the same).
'use strict'
const {spawnSync} = require('node:child_process')
const path = require('node:path')

const probe = spawnSync('pkg-config', ['--exists', 'fuse3'])
if (probe.error || probe.status !== 0) {
  console.warn('razorfs: libfuse 3 headers not found, the ll binding was not built (apt-get install -y libfuse3-dev, then npm rebuild)')
  process.exit(0)
}

// npm tells lifecycle scripts where its own node-gyp is; fall back to one installed beside us.
const gyp = process.env.npm_config_node_gyp || require.resolve('node-gyp/bin/node-gyp.js', {paths: [path.join(__dirname, '..')]})
const run = spawnSync(process.execPath, [gyp, 'rebuild'], {cwd: path.join(__dirname, '..'), stdio: 'inherit'})
process.exit(run.status ?? 1)

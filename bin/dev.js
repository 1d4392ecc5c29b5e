#!/usr/bin/env node
// Development entry point: runs the compiled commands like run.js, but with oclif's
// development mode on (full error output, manifest ignored). Build first: `npm run build`.
import {execute} from '@oclif/core'

await execute({development: true, dir: import.meta.url})

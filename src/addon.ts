/** Where `npm install` builds the razorfs addon (native/, binding.gyp). */
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const ADDON_FILE = path.join(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..'), 'build', 'Release', 'razorfs_ll.node')

/** Where `npm install` builds the razorfs addon (native/, binding.gyp), and its host calls. */
import {createRequire} from 'node:module'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const ADDON_FILE = path.join(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..'), 'build', 'Release', 'razorfs_ll.node')

let addon: Record<string, unknown> | null | undefined

/**
 * The addon's function `name` (native/host.c: system calls Node lacks), or undefined where the
 * addon cannot be loaded (not built, or libfuse 3 missing): callers fall back to what Node has.
 */
export function addonFunction<F>(name: string): F | undefined {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(ADDON_FILE) as Record<string, unknown>
    } catch {
      addon = null
    }
  }

  const f = addon?.[name]
  return typeof f === 'function' ? (f as F) : undefined
}

/** The imports of source files, for the tests that keep the layers apart (test/unit/{fuse,vfs}/boundary.test.ts). */
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

/** src/<layer>/ of the repository, from the compiled tests (dist/test/helpers/). */
export function layerDir(layer: string): string {
  return fileURLToPath(new URL(`../../../src/${layer}/`, import.meta.url))
}

/** The .ts files under `dir`. */
export function sources(dir: string): string[] {
  return fs.readdirSync(dir, {withFileTypes: true}).flatMap(e => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return sources(p)
    return e.name.endsWith('.ts') ? [p] : []
  })
}

/** Every import or re-export of a module in `text`: its specifier and whether it is type-only. */
export function imports(text: string): Array<{from: string; typeOnly: boolean}> {
  const out: Array<{from: string; typeOnly: boolean}> = []
  for (const m of text.matchAll(/^(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s+['"]([^'"]+)['"]/gms)) {
    out.push({from: m[4], typeOnly: m[2] !== undefined})
  }

  for (const m of text.matchAll(/^import\s+['"]([^'"]+)['"]/gm)) out.push({from: m[1], typeOnly: false})
  return out
}

/**
 * The imports of every source file under `dir` that reach into src/storage/, as
 * {file (relative to `dir`), module (relative to src/storage/), typeOnly}.
 */
export function storageImports(dir: string): Array<{file: string; module: string; typeOnly: boolean}> {
  const storage = `${path.sep}src${path.sep}storage${path.sep}`
  return sources(dir).flatMap(file =>
    imports(fs.readFileSync(file, 'utf8')).flatMap(i => {
      const target = path.resolve(path.dirname(file), i.from)
      const at = target.indexOf(storage)
      return at === -1 ? [] : [{file: path.relative(dir, file), module: target.slice(at + storage.length), typeOnly: i.typeOnly}]
    }),
  )
}

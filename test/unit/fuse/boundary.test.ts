/**
 * The FUSE adapters only translate (issue 17): src/fuse/ speaks to the filesystem core (src/vfs/)
 * and may name storage's types, but never imports a value from src/storage/.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const FUSE = fileURLToPath(new URL('../../../../src/fuse/', import.meta.url))

function sources(dir: string): string[] {
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

describe('fuse: the adapter boundary', () => {
  it('finds the imports it checks (type-only or not)', () => {
    expect(imports("import type {A} from '../storage/types.js'\nimport {\n  B,\n} from '../storage/x.js'\nimport './side-effect.js'")).to.deep.equal([
      {from: '../storage/types.js', typeOnly: true},
      {from: '../storage/x.js', typeOnly: false},
      {from: './side-effect.js', typeOnly: false},
    ])
  })

  it('src/fuse/ imports nothing but types from src/storage/', () => {
    const files = sources(FUSE)
    expect(files.length).to.be.greaterThan(3)
    const offending = files.flatMap(file => imports(fs.readFileSync(file, 'utf8'))
      .filter(i => !i.typeOnly && path.resolve(path.dirname(file), i.from).includes(`${path.sep}src${path.sep}storage${path.sep}`))
      .map(i => `${path.relative(FUSE, file)}: ${i.from}`))
    expect(offending).to.deep.equal([])
  })
})

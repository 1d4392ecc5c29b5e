/**
 * Names: looking a node's name up in the names file (through the codec), judging whether it can
 * be a razorfs directory entry, and showing it in a report.
 */
import {NAME_MAX} from '../../storage/types.js'
import {C_DISK, C_SHM, type CLayout, decodeName} from '../c-format.js'

/** A name's bytes for display: printable UTF-8 as is, anything else escaped; quoted if not a legal name. */
export function showName(name: Buffer, legal = true): string {
  const text = name.toString('utf8')
  const roundTrips = Buffer.from(text, 'utf8').equals(name)
  if (legal && roundTrips && !/[\u0000-\u001F\u007F]/.test(text)) return text
  let out = ''
  for (const ch of roundTrips ? text : name.toString('latin1')) {
    const code = ch.codePointAt(0)!
    if (!roundTrips && code > 0x7e) out += `\\x${code.toString(16).padStart(2, '0')}`
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`
    else if (ch === '"' || ch === '\\') out += `\\${ch}`
    else out += ch
  }

  return `"${out}"`
}

/** A name as a report shows it: `unreadable` if it could not be read (`raw` is then why). */
export function shownName(raw: Buffer | string, unreadable: string): string {
  return typeof raw === 'string' ? unreadable : showName(raw, nameProblem(raw) === undefined)
}

export function joinPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`
}

/** Why `name` cannot be a directory entry, or undefined if it can. */
export function nameProblem(name: Buffer): string | undefined {
  if (name.length === 0) return 'empty name (its first byte is NUL)'
  if (name.includes(0x2f)) return "name contains '/'"
  if (name.includes(0)) return 'name contains a NUL byte'
  if (name.length === 1 && name[0] === 0x2e) return "name is '.'"
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return "name is '..'"
  if (name.length > NAME_MAX) return `name is ${name.length} bytes long (at most ${NAME_MAX})`
  return undefined
}

/** A note if the root's name (at `nameOffset`) is not "/", with a hint if the other layout would read "/" there. */
export function rootNameNote(strings: Buffer, layout: CLayout, nameOffset: number): string | undefined {
  const isSlash = (raw: Buffer | string) => typeof raw !== 'string' && raw.toString('latin1') === '/'
  const rootName = decodeName(strings, layout, nameOffset)
  if (isSlash(rootName)) return undefined
  const other = layout === C_DISK ? C_SHM : C_DISK
  const hint = isSlash(decodeName(strings, other, nameOffset)) ? `; its names file looks like the ${other.kind} layout's` : ''
  return `the root's name is ${typeof rootName === 'string' ? `unreadable (${rootName})` : showName(rootName, false)}, not "/"${hint}`
}

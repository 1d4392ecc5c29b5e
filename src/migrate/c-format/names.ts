/**
 * The C names file (`strings.dat` / `razorfs_strings`): a u32 `used`, then NUL-terminated names
 * packed back to back. Its only codec: nothing else in src/migrate reads these bytes.
 */
import type {CLayout} from './image.js'
import {cRecord} from './record.js'

/** The names file's header: 4 bytes at offset 0 (disk: bytes of names; shm: bytes in use, with this header). */
export const C_NAMES_HEADER = cRecord('cNamesHeader', [['used', 'u32']])

export type CNamesHeader = ReturnType<typeof C_NAMES_HEADER.decode>

/** The name offset that means "no name". */
export const C_NO_NAME = 0xffff_ffff
/** The shm names segment is zero-filled to this size. */
export const C_SHM_STRINGS_SIZE = 1024 * 1024

/**
 * Every way the header of a names file of `fileBytes` bytes disagrees with the file; [] if none.
 * None of them is fatal: names are read from what the file holds.
 */
export function validateNamesHeader(h: CNamesHeader, layout: CLayout, fileBytes: number): string[] {
  const problems: string[] = []
  if (layout.kind === 'disk') {
    if (C_NAMES_HEADER.SIZE + h.used !== fileBytes)
      problems.push(`header says ${h.used} bytes of names, the file holds ${fileBytes - C_NAMES_HEADER.SIZE}; names are read from what the file holds`)
  } else {
    if (h.used > fileBytes) problems.push(`header says ${h.used} bytes in use, the file has ${fileBytes}; names are read from what the file holds`)
    if (fileBytes !== C_SHM_STRINGS_SIZE) problems.push(`${fileBytes} bytes (the C version makes it ${C_SHM_STRINGS_SIZE})`)
  }

  return problems
}

/** The name at `nameOffset` of the names file `strings` (the whole file), or why it cannot be read. */
export function decodeName(strings: Buffer, layout: CLayout, nameOffset: number): Buffer | string {
  if (nameOffset === C_NO_NAME) return 'has no name (name_offset 0xFFFFFFFF)'
  const at = layout.nameAt(nameOffset)
  if (at < layout.namesStart || at >= strings.length) {
    return `name offset ${nameOffset} is out of range (the names file holds ${Math.max(0, strings.length - layout.namesStart)} bytes of names)`
  }

  const end = strings.indexOf(0, at)
  if (end < 0) return `name at offset ${nameOffset} is not NUL-terminated (runs to the end of the names file)`
  return strings.subarray(at, end)
}

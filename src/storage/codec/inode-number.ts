/**
 * Inode numbers (docs/FORMAT.md "Inode numbers"): the number of slot s whose generation is g is
 * s + g * 2^32, so slot = ino mod 2^32 and gen = floor(ino / 2^32). A generation stays below
 * 2^20 (it wraps when a slot is freed), so every inode number is below 2^52: a JS number holds it
 * exactly. The only place that arithmetic is written.
 */
const TWO32 = 2 ** 32

/** Generations are below 2^20: a freed slot's generation is incremented modulo 2^20. */
export const GEN_MASK = 0xfffff
/** The root directory: slot 1, generation 0, inode number 1. */
export const ROOT_SLOT = 1

/** The inode number of slot `slot` at generation `gen`. */
export function encode(slot: number, gen: number): number {
  return slot + gen * TWO32
}

export function slotOf(ino: number): number {
  return ino % TWO32
}

export function genOf(ino: number): number {
  return Math.floor(ino / TWO32)
}

export function decode(ino: number): {slot: number; gen: number} {
  return {slot: slotOf(ino), gen: genOf(ino)}
}

/** The generation a slot gets when its inode is freed. */
export function nextGen(gen: number): number {
  return (gen + 1) & GEN_MASK
}

/**
 * Why `ino` cannot name an inode at all (whatever the image holds), or an empty list: not a safe
 * integer, slot 0 (never used), a generation of 2^20 or more.
 */
export function validate(ino: number): string[] {
  if (!Number.isSafeInteger(ino) || ino < 1) return ['not a positive integer below 2^53']
  const problems: string[] = []
  if (slotOf(ino) === 0) problems.push('slot 0 is never used')
  if (genOf(ino) > GEN_MASK) problems.push(`generation ${genOf(ino)} is not below 2^20`)
  return problems
}

/**
 * /lost+found: found or created when something must go there, and the entries that reconnect
 * inodes in it. Pass 3 reconnects unreachable directories and unattached inodes ("#<slot>"), pass
 * 6 the content files no inode names ("#<dataId>"), e2fsck's e2fsck_get_lost_and_found and
 * e2fsck_reconnect_file.
 *
 * The directory is looked for once per pass: the root's entry "lost+found" naming a live
 * directory. An entry of that name naming anything else is removed first (PR_3_LPF_NOT_DIR; the
 * caller reconnects its inode if that was its only name), then the directory is created (owner 0,
 * mode 0700, PR_3_NO_LPF). Nothing is created with -n, or when inodes, entries or names cannot be
 * allocated (a structure whose repair was declined).
 */
import {D, I, ROOT} from './checked-image.js'
import {PR} from './problems.js'
import {type Check, ENT_FREE, ENT_LIVE, INO_LIVE, typeName} from './state.js'
import {S_IFDIR} from '../storage/format.js'

export const LPF = Buffer.from('lost+found')
const TYPE_DIR = S_IFDIR >>> 12

export interface LostFoundHooks {
  /** The root's live entry named lost+found, or 0. */
  find(): number
  /** /lost+found is `slot`: an existing directory, or one just created. */
  found?(slot: number, created: boolean): void
  /** The entry of a non-directory named lost+found was removed: inode `slot` lost that name. */
  displaced?(slot: number): void
}

export class LostFound {
  private slot = 0
  private tried = false

  constructor(
    private readonly c: Check,
    private readonly hooks: LostFoundHooks,
  ) {}

  /** The slot of /lost+found, found or created on the first call; 0 if there is none and can be none. */
  get(): number {
    if (this.tried) return this.slot
    this.tried = true
    const {ctx, img, st} = this.c
    if (!ctx.writable) return 0
    const d = this.hooks.find()
    if (d !== 0) {
      const ch = img.e32(d, D.child)
      if (st.isDir(ch)) {
        this.slot = ch
        this.hooks.found?.(ch, false)
        return ch
      }

      if (!ctx.fix(PR.PR_3_LPF_NOT_DIR, {slot: ch, type: typeName(st.type[ch])}, {canFix: st.entryIndexOk && st.entTableOk})) return 0
      img.store.transaction(() => img.removeEntry(d, st.limit))
      st.ent[d] = ENT_FREE
      this.hooks.displaced?.(ch)
    }

    if (!ctx.fix(PR.PR_3_NO_LPF, {}, {canFix: st.canAllocate})) return 0
    img.store.transaction(() => {
      const slot = img.nodes.alloc()
      img.initDir(slot, ROOT, 0o700)
      st.growInodes(img.nodes.highWater)
      st.ino[slot] = INO_LIVE
      st.type[slot] = TYPE_DIR
      const e = img.addEntry(ROOT, LPF, slot)
      st.growEntries(img.entries.highWater)
      st.ent[e] = ENT_LIVE
      img.setN32(ROOT, I.nlink, img.n32(ROOT, I.nlink) + 1)
      this.slot = slot
    })
    this.hooks.found?.(this.slot, true)
    return this.slot
  }

  /**
   * Give `slot` an entry in /lost+found (which `get` returned), named `base` or, if that is taken,
   * `base.1`, `base.2`...; `cut` is an entry naming it to remove first. A directory's parent becomes
   * /lost+found. Link counts of non-directories are the caller's. Runs in the caller's transaction.
   */
  attach(slot: number, base: string, cut = 0): number {
    const {img, st} = this.c
    const lpf = this.slot
    if (cut !== 0) {
      img.removeEntry(cut, st.limit)
      st.ent[cut] = ENT_FREE
    }

    let name = Buffer.from(base)
    for (let n = 1; img.findEntry(lpf, name, st.limit) !== 0; n++) name = Buffer.from(`${base}.${n}`)
    const e = img.addEntry(lpf, name, slot)
    st.growEntries(img.entries.highWater)
    st.ent[e] = ENT_LIVE
    if (st.type[slot] === TYPE_DIR) {
      img.setN32(slot, I.parent, lpf)
      img.setN32(lpf, I.nlink, img.n32(lpf, I.nlink) + 1)
    }

    return e
  }
}

/**
 * Every problem fsck can find, one readonly row per code (e2fsck's problem table).
 *
 * A code is 0xPPNNNN: PP is the pass that raises it, NNNN its number in the pass. Codes are never
 * renumbered; a retired code stays reserved. NNNN = 0000 is the pass header (printed with -v).
 * Pass 1 checks two files: NNNN 00xx are inode-table problems, 01xx string-heap problems. Passes 8
 * and 9 are those of a volume shared through PostgreSQL (fsck --meta), which also raises the rows
 * of passes 1, 2, 3 and 4 whose problem is the same there.
 *
 * - `message`: a full sentence; `{name}` placeholders are filled from the values passed to
 *   `ctx.fix(code, values)`.
 * - `prompt`: what accepting the fix does, asked as "Fix?", "Clear?", "Reconnect to /lost+found?"...
 *   `none` rows are headers or fatal conditions: nothing to answer.
 * - `preenOk`: `-p` may fix it unattended: the fix loses no data a user could want (counters,
 *   free lists, indexes, copies of fields that have a reference elsewhere, garbage).
 * - `noOk`: answering "no" is not an error (the state is legitimate, e.g. orphans of a live image).
 * - `fatal`: the check cannot go on (exit 8).
 *
 * The check code calls only `ctx.fix(code, values)` and acts on its answer (src/fsck/context.ts).
 */

export type Prompt = 'fix' | 'clear' | 'reconnect' | 'create' | 'rebuild' | 'discard' | 'reclaim' | 'none'

export interface Problem {
  readonly code: number
  readonly id: string
  readonly message: string
  readonly prompt: Prompt
  readonly preenOk: boolean
  readonly noOk?: boolean
  readonly fatal?: boolean
  readonly header?: boolean
}

/** The question asked for each prompt, and the word -p prints once the fix is made. */
export const PROMPTS: Readonly<Record<Prompt, {ask: string; done: string}>> = {
  fix: {ask: 'Fix', done: 'FIXED'},
  clear: {ask: 'Clear', done: 'CLEARED'},
  reconnect: {ask: 'Reconnect to /lost+found', done: 'RECONNECTED'},
  create: {ask: 'Create', done: 'CREATED'},
  rebuild: {ask: 'Rebuild', done: 'REBUILT'},
  discard: {ask: 'Discard', done: 'DISCARDED'},
  reclaim: {ask: 'Reclaim', done: 'RECLAIMED'},
  none: {ask: '', done: ''},
}

function row<I extends string>(
  code: number,
  id: I,
  prompt: Prompt,
  preenOk: boolean,
  message: string,
  extra: Pick<Problem, 'noOk' | 'fatal' | 'header'> = {},
): Problem & {readonly id: I} {
  return Object.freeze({...extra, code, id, message, prompt, preenOk})
}

function header<I extends string>(code: number, id: I, message: string): Problem & {readonly id: I} {
  return row(code, id, 'none', true, message, {header: true})
}

const ROWS = [
  // ---- pass 0: headers of the mapped files (before the image is opened) --------------------------
  header(0x00_0000, 'PR_0_PASS_HEADER', 'Pass 0: checking the headers of the image files'),
  /** A mapped file is absent. Fix: create it empty (its records are lost, later passes repair references). */
  row(0x00_0001, 'PR_0_FILE_MISSING', 'create', false, '{file} is missing.'),
  /** Shorter than the header and control pages: the control block is lost. Fix: extend with zeros. */
  row(0x00_0002, 'PR_0_FILE_SHORT', 'fix', false, '{file} is {size} bytes, shorter than its header and control pages ({min} bytes).'),
  /** The header's capacity says more records than the file holds (the file was cut). Fix: extend with zeros. */
  row(
    0x00_0003,
    'PR_0_FILE_TRUNCATED',
    'fix',
    false,
    '{file} is {size} bytes, but its header says {capacity} records ({needed} bytes): the file was truncated.',
  ),
  /** The length is not a multiple of the page size. Fix: extend with zeros to the next page. */
  row(0x00_0004, 'PR_0_FILE_UNALIGNED', 'fix', true, '{file} is {size} bytes, not a multiple of the {page}-byte page.'),
  /** The header's CRC does not match: no field of it can be trusted. Fix: rebuild the header. */
  row(
    0x00_0005,
    'PR_0_HEADER_CHECKSUM',
    'rebuild',
    false,
    '{file}: the header checksum is {stored}, but the header hashes to {computed}: the header is corrupt.',
  ),
  /** One header field is impossible (magic, version, sizes, file id, flags, counts, UUID). Fix: rebuild the header. */
  row(0x00_0006, 'PR_0_HEADER_FIELD', 'rebuild', false, '{file}: header field {field} is {value}, expected {expected}.'),
  /** A valid header of a newer format: this build must not touch it. */
  row(0x00_0007, 'PR_0_VERSION_NEWER', 'none', false, '{file} has format version {version}, newer than this razorfs reads ({supported}); upgrade razorfs.', {
    fatal: true,
  }),
  /** A file of another image (by UUID) among the files. Fix: give it the image's UUID. */
  row(0x00_0008, 'PR_0_UUID_MISMATCH', 'fix', false, '{file} belongs to image {uuid}, but the image is {imageUuid}.'),
  /** Bytes 256 to 4095 of page 0 must be zeros. Fix: zero them. */
  row(0x00_0009, 'PR_0_PAGE0_GARBAGE', 'fix', true, '{file}: bytes {from} to {to} of the header page are not zero.'),
  /** Larger than one mapping can be: this build cannot open it. */
  row(0x00_000a, 'PR_0_FILE_TOO_BIG', 'none', false, '{file} is {size} bytes, larger than the largest file razorfs can map ({max} bytes).', {fatal: true}),

  // ---- pass 1: inode records (nodes.dat) and the control blocks of both record tables -------------
  header(0x01_0000, 'PR_1_PASS_HEADER', 'Pass 1: checking inode records, record tables and the string heap'),
  /** highWater is past the file, or slots above it hold records. Fix: set it from the records. */
  row(0x01_0001, 'PR_1_HIGH_WATER', 'fix', true, '{file}: highWater is {value}, but {reason}; it should be {expected}.'),
  /** The free list does not chain every free slot exactly once. Fix: rebuild it from the free slots. */
  row(0x01_0002, 'PR_1_FREE_LIST', 'rebuild', true, '{file}: the free list is damaged ({reason}).'),
  /** live differs from the records in use. Fix: set it. */
  row(0x01_0003, 'PR_1_LIVE_COUNT', 'fix', true, '{file}: the count of live records is {value}, but {expected} records are in use.'),
  /** A control block field that must be zero (or a fixed value) is not. Fix: set it. */
  row(0x01_0004, 'PR_1_CONTROL_FIELD', 'fix', true, '{file}: control block field {field} is {value}, expected {expected}.'),
  /** The orphan list does not chain every orphan exactly once. Fix: rebuild it from the IF_ORPHAN flags. */
  row(0x01_0005, 'PR_1_ORPHAN_LIST', 'rebuild', true, 'The orphan list is damaged ({reason}).'),
  /** nextDataId is not above every content file number in use. Fix: raise it. */
  row(0x01_0006, 'PR_1_NEXT_DATA_ID', 'fix', true, 'nextDataId is {value}, but inode {slot} uses content file {dataId}; it should be {expected}.'),
  /** Flag bits other than IF_USED and IF_ORPHAN. Fix: clear them. */
  row(0x01_0010, 'PR_1_BAD_FLAGS', 'fix', true, 'Inode {slot} has unknown flag bits {flags}.'),
  /** The mode holds no valid file type. Clear: free the inode (its names are removed in pass 2). */
  row(0x01_0011, 'PR_1_BAD_TYPE', 'clear', false, 'Inode {slot} has an invalid file type (mode {mode}).'),
  /** gen is 2^20 or more. Fix: keep its low 20 bits (entries follow in pass 2). */
  row(0x01_0012, 'PR_1_BAD_GEN', 'fix', true, 'Inode {slot} has generation {gen}, not below 2^20.'),
  /** A free slot holds more than its generation and free-list link. Clear: zero the rest. */
  row(0x01_0013, 'PR_1_FREE_NOT_ZERO', 'clear', true, 'Free inode slot {slot} holds stale data.'),
  /** A field that must have a fixed value for this type of inode does not. Fix: set it. */
  row(0x01_0014, 'PR_1_BAD_FIELD', 'fix', true, 'Inode {slot} ({type}) has {field} {value}, expected {expected}.'),
  /** A regular file larger than FILE_SIZE_MAX. Fix: set the size to the content file's length. */
  row(
    0x01_0015,
    'PR_1_BAD_SIZE',
    'fix',
    false,
    'Inode {slot} has size {size}, larger than the largest file ({max} bytes); its content file holds {length} bytes.',
  ),
  /** A content file number that cannot be one. Fix: forget it (the file reads as zeros). */
  row(0x01_0016, 'PR_1_BAD_DATA_ID', 'fix', false, 'Inode {slot} ({type}) has content file number {dataId}, which is invalid ({reason}).'),
  /** Two inodes name one content file. Fix: give the second a copy of its own. */
  row(0x01_0017, 'PR_1_DUP_DATA_ID', 'fix', false, 'Inodes {first} and {slot} share content file {dataId}.'),
  /** A symlink whose target is not an interned string. Clear: free the inode. */
  row(0x01_0018, 'PR_1_BAD_SYMLINK', 'clear', false, 'Symlink inode {slot} has an invalid target ({reason}).'),
  /** A symlink's size is not the length of its target. Fix: set it. */
  row(0x01_0019, 'PR_1_SYMLINK_SIZE', 'fix', true, 'Symlink inode {slot} has size {size}, but its target is {length} bytes.'),
  /** The xattr field does not name a well-formed xattr blob. Clear: drop the inode's xattrs. */
  row(0x01_001a, 'PR_1_BAD_XATTR', 'clear', false, 'Inode {slot} has an invalid xattr blob at unit {unit} ({reason}).'),
  /** Two inodes name one private xattr blob. Clear: drop the second inode's xattrs. */
  row(0x01_001b, 'PR_1_SHARED_XATTR', 'clear', false, 'Inodes {first} and {slot} share the xattr blob at unit {unit}.'),
  /** Slot 1 is not a live directory. Create: make slot 1 an empty root directory (owner 0, mode 0755). */
  row(0x01_001c, 'PR_1_NO_ROOT', 'create', false, 'The root directory (inode 1) is missing: {reason}.'),

  // ---- pass 1, string heap (strings.dat, strings.idx) --------------------------------------------
  /** bump is past the file or the last string. Fix: set it to the end of the last string. */
  row(0x01_0101, 'PR_1_HEAP_BUMP', 'fix', true, 'strings.dat: bump is {value}, but {reason}; it should be {expected}.'),
  /** Units hold no readable string and nothing refers to them. Fix: turn them into free space. */
  row(0x01_0102, 'PR_1_HEAP_GARBAGE', 'fix', true, 'strings.dat: units {from} to {to} hold no valid string ({reason}).'),
  /** A header field of a string is impossible for its kind. Fix: set it. */
  row(0x01_0103, 'PR_1_STRING_FIELD', 'fix', true, 'String at unit {unit} ({kind}) has {field} {value}, expected {expected}.'),
  /** An interned string whose stored hash is not the FNV-1a of its bytes. Fix: store the hash of the bytes. */
  row(0x01_0104, 'PR_1_STRING_HASH', 'fix', false, 'Name at unit {unit} has hash {stored}, but its bytes hash to {computed}.'),
  /** A size-class free list of the heap is damaged. Rebuild: chain every free string of each class. */
  row(0x01_0105, 'PR_1_HEAP_FREE_LIST', 'rebuild', true, 'strings.dat: the free list of size class {class} is damaged ({reason}).'),
  /** liveBytes or freeBytes differ from the strings. Fix: set them. */
  row(0x01_0106, 'PR_1_HEAP_COUNTER', 'fix', true, 'strings.dat: {field} is {value}, but the strings add up to {expected}.'),
  /** strings.idx does not index every interned string exactly once, in its bucket. Rebuild it. */
  row(0x01_0107, 'PR_1_STRING_INDEX', 'rebuild', true, 'strings.idx is damaged ({reason}).'),
  /** Control-page bytes outside the control block are not zero. Fix: zero them. */
  row(0x01_0108, 'PR_1_CONTROL_PAGE', 'fix', true, '{file}: bytes {from} to {to} of the control page are not zero.'),

  // ---- pass 2: directory entries (entries.dat, entries.idx) --------------------------------------
  header(0x02_0000, 'PR_2_PASS_HEADER', 'Pass 2: checking directory entries'),
  /** A free entry slot holds more than its free-list link. Clear: zero the rest. */
  row(0x02_0001, 'PR_2_FREE_NOT_ZERO', 'clear', true, 'Free entry slot {entry} holds stale data.'),
  /** The entry's parent is not a live directory. Clear: remove the entry. */
  row(0x02_0002, 'PR_2_BAD_PARENT', 'clear', false, 'Entry {entry} ({name}) is in inode slot {parent}, which is not a live directory.'),
  /** The entry's child is not a live inode it may name. Clear: remove the entry. */
  row(0x02_0003, 'PR_2_BAD_CHILD', 'clear', false, 'Entry {entry} ({name}) in directory {parent} points to inode slot {child}, which is {reason}.'),
  /** childGen differs from the child's generation. Fix: copy the child's. */
  row(
    0x02_0004,
    'PR_2_CHILD_GEN',
    'fix',
    true,
    'Entry {entry} ({name}) in directory {parent} has child generation {value}, but inode {child} has generation {expected}.',
  ),
  /** type differs from the child's file type. Fix: copy the child's. */
  row(0x02_0005, 'PR_2_CHILD_TYPE', 'fix', true, 'Entry {entry} ({name}) in directory {parent} has type {value}, but inode {child} is a {expected}.'),
  /** The name is unreadable or illegal and the entry holds no usable copy. Clear: remove the entry. */
  row(0x02_0006, 'PR_2_BAD_NAME', 'clear', false, 'Entry {entry} in directory {parent} has an invalid name ({reason}).'),
  /** nameHash, nameLength or inlineName differ from the interned name. Fix: copy them from it. */
  row(0x02_0007, 'PR_2_NAME_COPY', 'fix', true, 'Entry {entry} ({name}) in directory {parent}: its {field} does not match its interned name.'),
  /** The name unit holds another string than the entry's own, consistent copy. Fix: point at the right one. */
  row(0x02_0008, 'PR_2_NAME_REPOINT', 'fix', true, 'Entry {entry} ({name}) in directory {parent} points to the name {other} at unit {unit}.'),
  /** The name unit is unreadable but the entry's own copy is whole. Fix: intern the copy again. */
  row(0x02_0009, 'PR_2_NAME_RESTORE', 'fix', true, 'Entry {entry} ({name}) in directory {parent} lost its interned name (unit {unit}: {reason}).'),
  /** A directory's next/prev list does not chain exactly its entries. Rebuild it. */
  row(0x02_000a, 'PR_2_DIR_LIST', 'rebuild', true, 'The entry list of directory {dir} is damaged ({reason}).'),
  /** entries.idx does not index every entry exactly once, in its bucket. Rebuild it. */
  row(0x02_000b, 'PR_2_INDEX', 'rebuild', true, 'entries.idx is damaged ({reason}).'),
  /** Two entries of one directory have the same name. Clear: remove the second. */
  row(0x02_000c, 'PR_2_DUP_NAME', 'clear', false, 'Directory {parent} has two entries named {name} ({first} and {entry}).'),
  /** The entry's parent is not a live directory, but a directory's list holds it. Fix: make that its parent. */
  row(
    0x02_000d,
    'PR_2_PARENT_FIELD',
    'fix',
    true,
    'Entry {entry} ({name}) has parent {value}, which is not a live directory, but the list of directory {expected} holds it.',
  ),
  /**
   * nodes.dat lost records (pass 0) and entries still name (or hold entries of) a slot that is now
   * blank. Rebuild: an inode of the entry's type there (its number kept), from the fields the log
   * replayed into the slot when there are some, else owner 0 and mode 0600 (directories 0700).
   */
  row(0x02_000e, 'PR_2_LOST_INODE', 'rebuild', false, 'Inode {slot} was lost with nodes.dat, but {how}; it can be rebuilt as {what}.'),

  // ---- pass 3: connectivity ----------------------------------------------------------------------
  header(0x03_0000, 'PR_3_PASS_HEADER', 'Pass 3: checking directory connectivity'),
  /** Something must be reconnected and there is no /lost+found. Create it (owner 0, mode 0700). */
  row(0x03_0001, 'PR_3_NO_LPF', 'create', false, '/lost+found is missing.'),
  /** /lost+found is not a directory. Clear: remove that entry (its inode is reconnected like any other). */
  row(0x03_0002, 'PR_3_LPF_NOT_DIR', 'clear', false, '/lost+found is not a directory (inode {slot}, a {type}).'),
  /** A directory the root does not reach (no entry, or in a cycle). Reconnect it. */
  row(0x03_0003, 'PR_3_UNCONNECTED_DIR', 'reconnect', false, 'Directory {dir} is not reachable from the root ({reason}).'),
  /** A live inode that no entry names and that is not an orphan. Reconnect it. */
  row(0x03_0004, 'PR_3_UNATTACHED_INODE', 'reconnect', false, 'Inode {slot} ({type}, {size} bytes) has no directory entry.'),
  /** A directory named by more than one entry. Clear: remove the extra entry. */
  row(0x03_0005, 'PR_3_DIR_MULTI_LINK', 'clear', false, 'Directory {dir} has a second entry {entry} ({name}) in directory {parent}.'),
  /** A directory's parent field is not the directory holding its entry. Fix: set it. */
  row(0x03_0006, 'PR_3_BAD_PARENT', 'fix', true, 'Directory {dir} has parent {value}, but its entry is in directory {expected}.'),

  // ---- pass 4: link counts, directory sizes, orphans ---------------------------------------------
  header(0x04_0000, 'PR_4_PASS_HEADER', 'Pass 4: checking link counts'),
  /** An orphan (unlinked while open) with no entry: nothing can hold it now. Reclaim: free it. */
  row(0x04_0001, 'PR_4_ORPHAN', 'reclaim', true, 'Inode {slot} ({type}, {size} bytes) is an orphan: unlinked while open, and no process holds it now.', {
    noOk: true,
  }),
  /** An inode on the orphan list that entries still name. Fix: take it off the list. */
  row(0x04_0002, 'PR_4_ORPHAN_LINKED', 'fix', true, 'Inode {slot} is on the orphan list, but {count} entries name it.'),
  /** nlink differs from the entries naming it (directories: 2 + subdirectories). Fix: set it. */
  row(0x04_0003, 'PR_4_BAD_NLINK', 'fix', true, 'Inode {slot} ({type}) has link count {value}, counted {expected}.'),
  /** A directory's size differs from its number of entries. Fix: set it. */
  row(0x04_0004, 'PR_4_DIR_SIZE', 'fix', true, 'Directory {slot} has size {value}, but holds {expected} entries.'),

  // ---- pass 5: names and strings -----------------------------------------------------------------
  header(0x05_0000, 'PR_5_PASS_HEADER', 'Pass 5: checking names and string references'),
  /** An interned name that no entry or symlink uses. Reclaim: free it. */
  row(0x05_0001, 'PR_5_UNUSED_NAME', 'reclaim', true, 'Name {name} at unit {unit} is used by nothing.'),
  /** A name's refs differs from the entries and symlinks using it. Fix: set it. */
  row(0x05_0002, 'PR_5_BAD_REFS', 'fix', true, 'Name {name} at unit {unit} has {value} references, counted {expected}.'),
  /** An xattr blob no inode owns. Reclaim: free it. */
  row(0x05_0003, 'PR_5_UNUSED_BLOB', 'reclaim', true, 'The xattr blob at unit {unit} ({length} bytes) belongs to no inode.'),
  /** A blob's refs is not 1. Fix: set it. */
  row(0x05_0004, 'PR_5_BLOB_REFS', 'fix', true, 'The xattr blob at unit {unit} has {value} references, expected 1.'),
  /** Two interned strings with the same bytes. Fix: merge the second into the first. */
  row(0x05_0005, 'PR_5_DUP_NAME', 'fix', true, 'Names at units {first} and {unit} hold the same bytes ({name}).'),

  // ---- pass 6: contents --------------------------------------------------------------------------
  header(0x06_0000, 'PR_6_PASS_HEADER', 'Pass 6: checking content files'),
  /** A content file no inode names (a crash between a free and the file's removal). Reclaim: remove it. */
  row(0x06_0001, 'PR_6_UNUSED_CONTENT', 'reclaim', true, 'Content file {path} ({bytes} bytes) belongs to no inode.'),
  /**
   * A content file no inode names, in an image where that proves nothing (it was damaged, or the
   * log was cut short after the file's number was handed out). Reconnect: a new regular file (owner
   * 0, mode 0600, its size the content file's length) named "#<dataId>" in /lost+found.
   */
  row(
    0x06_0002,
    'PR_6_LOST_CONTENT',
    'reconnect',
    false,
    "Content file {path} ({bytes} bytes) belongs to no inode, but it may hold a file's contents: {reason}.",
  ),
  /** The log lost transactions and a file's content file is longer than its size. Fix: set the size to the content file's length. */
  row(
    0x06_0003,
    'PR_6_CONTENT_PAST_SIZE',
    'fix',
    false,
    'Inode {slot} has size {size}, but its content file {path} holds {length} bytes, and the transactions that may have grown it were lost with the log.',
  ),
  /**
   * An empty content file no inode names: a spare the mount kept for new files (Contents.recycle),
   * left by a crash. Expected state, as an orphan is: it holds no bytes. Reclaim: remove it.
   */
  row(0x06_0004, 'PR_6_SPARE_CONTENT', 'reclaim', true, 'Content file {path} is empty and belongs to no inode: a spare for new files that a crash left.', {
    noOk: true,
  }),

  // ---- pass 7: the write-ahead log (checked before the image is opened, right after pass 0) -----
  header(0x07_0000, 'PR_7_PASS_HEADER', 'Pass 7: checking the write-ahead log'),
  /** wal.log is absent. Create: an empty log (transactions not yet checkpointed are lost). */
  row(0x07_0001, 'PR_7_LOG_MISSING', 'create', false, 'wal.log is missing.'),
  /** The log header is unreadable. Fix: write a new header; the log's records are discarded. */
  row(0x07_0002, 'PR_7_LOG_HEADER', 'fix', false, 'wal.log: {reason}; its transactions cannot be read.'),
  /** A valid log header of a newer format. */
  row(
    0x07_0003,
    'PR_7_LOG_VERSION_NEWER',
    'none',
    false,
    'wal.log has format version {version}, newer than this razorfs reads ({supported}); upgrade razorfs.',
    {fatal: true},
  ),
  /** The log names another image. Fix: give it the image's UUID (its records stay). */
  row(0x07_0004, 'PR_7_LOG_UUID', 'fix', false, 'wal.log belongs to image {uuid}, but the image is {imageUuid}.'),
  /** The log starts after a file's checkpoint: transactions that file needs were recycled. Fix: accept the loss. */
  row(
    0x07_0005,
    'PR_7_LOG_GAP',
    'fix',
    false,
    'The log starts at transaction {start}, but {file} was checkpointed at {lsn}: transactions {from} to {to} are lost.',
  ),
  /** The log ends in a torn transaction (a crash during its append); recovery ignores it. Discard it. */
  row(0x07_0006, 'PR_7_TORN_TAIL', 'discard', true, 'The log ends with {bytes} bytes of a torn transaction {lsn} at offset {offset}, which recovery discards.'),
  /** A checksummed transaction that cannot be replayed. Discard it and everything after it. */
  row(
    0x07_0007,
    'PR_7_BAD_RECORD',
    'discard',
    false,
    'Transaction {lsn} at offset {offset} of the log cannot be replayed ({reason}); it and the {after} bytes after it would be lost.',
  ),

  // ---- pass 8: a shared volume's sessions and inode sequence (fsck --meta; src/fsck/shared/) -----
  header(0x08_0000, 'PR_8_PASS_HEADER', 'Pass 8: checking the sessions and the inode sequence of the shared volume'),
  /** A session whose lease ran out: the next client's reaper ends it. Clear: end it (its connection, its row, its holds). */
  row(
    0x08_0001,
    'PR_8_EXPIRED_SESSION',
    'clear',
    true,
    'Session {id} of {host} (pid {pid}) expired {ago} s ago, holding {holds} inodes open; the next client would end it.',
    {noOk: true},
  ),
  /** ino_seq would hand out a number in use. Fix: set it past the largest inode. */
  row(0x08_0002, 'PR_8_INO_SEQUENCE', 'fix', true, 'The inode sequence hands out {next} next, but inode {max} exists.'),

  // ---- pass 9: a shared volume's inodes, entries and blocks (the rows of passes 1, 3, 4 too) ------
  header(0x09_0000, 'PR_9_PASS_HEADER', 'Pass 9: checking the inodes, entries and blocks of the shared volume'),
  /** An entry held by an inode that is not a directory. Clear: remove the entry (its inode is reconnected if that was its only name). */
  row(0x09_0001, 'PR_9_ENTRY_NOT_IN_DIR', 'clear', false, 'Entry {name} (inode {child}) is in inode {parent}, a {type}: only a directory holds entries.'),
  /** A directory named by more than one entry. Clear: remove the extra name. */
  row(0x09_0002, 'PR_9_DIR_MULTI_NAME', 'clear', false, 'Directory {dir} has a second name {name} in directory {parent}.'),
  /** Blocks of an inode that is not a regular file, which nothing reads. Clear: delete them. */
  row(
    0x09_0003,
    'PR_9_BLOCKS_NOT_REGULAR',
    'clear',
    false,
    'Inode {slot} ({type}) has {count} content blocks ({bytes} bytes); only a regular file has contents.',
  ),
  /** A block longer than the volume's block size. Fix: cut it to the block size (the bytes past it are lost). */
  row(0x09_0004, 'PR_9_BLOCK_TOO_LONG', 'fix', false, 'Block {blk} of inode {slot} is {length} bytes, longer than the block size ({max}).'),
  /** A regular file's blocks hold bytes past its size. Fix: set the size to cover them (e2fsck's habit: keep the data). */
  row(0x09_0005, 'PR_9_BLOCKS_PAST_SIZE', 'fix', false, 'Inode {slot} has size {size}, but its blocks hold bytes up to {end}.'),
] as const

export type ProblemId = (typeof ROWS)[number]['id']

export const PROBLEMS: readonly Problem[] = Object.freeze([...ROWS])

export const PROBLEM_BY_CODE: ReadonlyMap<number, Problem> = new Map(PROBLEMS.map(p => [p.code, p]))

/** Code constants, by id: `PR.PR_2_BAD_CHILD` is 0x020003. */
export const PR = Object.freeze(Object.fromEntries(PROBLEMS.map(p => [p.id, p.code]))) as Readonly<Record<ProblemId, number>>

/** "0x020003". */
export function codeString(code: number): string {
  return `0x${code.toString(16).padStart(6, '0')}`
}

/** The message of a problem with its placeholders filled. */
export function formatMessage(message: string, values: Readonly<Record<string, unknown>>): string {
  return message.replaceAll(/\{(\w+)\}/g, (whole, key: string) => (key in values ? String(values[key]) : whole))
}

/**
 * The requests of the razorfs_ll addon, typed: one interface an operation (or a few operations
 * with the same fields), told apart by `op`, and the one place they are decoded from what the addon hands over (its numbers in the field
 * array, at the places of FIELD; its names or bytes as the call's arguments; native/requests.c
 * says what each operation sets). A request is a plain object made for the call; the caller's
 * credentials come beside it in one object the session reuses.
 */
import {FIELD, FIELD_COUNT, type LowLevelAddon, OP, type RawDispatch, type RequestContext, type SetattrFields} from './binding.js'

type Ops = typeof OP
export type OpCode = Ops[keyof Ops]

interface Request<O extends OpCode> {
  op: O
  /** The handle to reply to. */
  req: number
}

/** The session has started; the kernel's largest write. */
export interface InitRequest extends Request<Ops['INIT']> {
  maxWrite: number
}

/** The session has ended (no reply). */
export type EndedRequest = Request<Ops['ENDED']>

/** lookup, unlink, rmdir: `name` in directory `parent`. */
export interface NameRequest extends Request<Ops['LOOKUP'] | Ops['UNLINK'] | Ops['RMDIR']> {
  parent: number
  name: Buffer
}

/** readlink, statfs. */
export interface InodeRequest extends Request<Ops['READLINK'] | Ops['STATFS']> {
  ino: number
}

export interface GetattrRequest extends Request<Ops['GETATTR']> {
  ino: number
  /** The open file the request came through, or -1. */
  fh: number
}

export interface SetattrRequest extends Request<Ops['SETATTR']> {
  ino: number
  /** Only the fields the kernel asked to change. */
  fields: SetattrFields
  /** The open file the request came through, or -1. */
  fh: number
}

/** A new `name` in `parent`: mknod, mkdir, create, symlink. */
export interface MknodRequest extends Request<Ops['MKNOD']> {
  parent: number
  name: Buffer
  mode: number
  rdev: number
}

export interface MkdirRequest extends Request<Ops['MKDIR']> {
  parent: number
  name: Buffer
  mode: number
}

export interface CreateRequest extends Request<Ops['CREATE']> {
  parent: number
  name: Buffer
  mode: number
  /** open(2) flags. */
  flags: number
  /** An existing file opened with O_TRUNC: the kernel asks to clear its set-user-ID and set-group-ID. */
  kill: boolean
}

export interface SymlinkRequest extends Request<Ops['SYMLINK']> {
  parent: number
  name: Buffer
  target: Buffer
}

export interface RenameRequest extends Request<Ops['RENAME']> {
  parent: number
  name: Buffer
  newParent: number
  newName: Buffer
  /** RENAME_NOREPLACE, RENAME_EXCHANGE */
  flags: number
}

export interface LinkRequest extends Request<Ops['LINK']> {
  ino: number
  newParent: number
  newName: Buffer
}

/** open, opendir: open(2) flags. */
export interface OpenRequest extends Request<Ops['OPEN'] | Ops['OPENDIR']> {
  ino: number
  flags: number
  /** open with O_TRUNC: the kernel asks to clear set-user-ID and set-group-ID (FUSE_OPEN_KILL_SUIDGID). */
  kill: boolean
}

/** read, readdir, readdirplus: `size` bytes from `off` (readdir: an entry's offset) of open file `fh`. */
export interface ReadRequest extends Request<Ops['READ'] | Ops['READDIR'] | Ops['READDIRPLUS']> {
  ino: number
  fh: number
  size: number
  off: number
}

export interface WriteRequest extends Request<Ops['WRITE']> {
  ino: number
  fh: number
  /** libfuse's memory: valid until the reply (replyWrite detaches it). */
  data: Buffer
  off: number
  /** What the worker thread that waits for the reply is released with (replyWrite, replyErr); 0 on the JS-thread loop, where none waits. */
  token: number
  /** The file's open flags. */
  flags: number
  /** The kernel asks to clear set-user-ID and set-group-ID (FUSE_WRITE_KILL_SUIDGID). */
  kill: boolean
}

/** flush, release, releasedir: open file `fh` and its open flags. */
export interface CloseRequest extends Request<Ops['FLUSH'] | Ops['RELEASE'] | Ops['RELEASEDIR']> {
  ino: number
  fh: number
  flags: number
}

/** fsync, fsyncdir. */
export interface SyncRequest extends Request<Ops['FSYNC'] | Ops['FSYNCDIR']> {
  ino: number
  fh: number
  /** Non-zero: the data only (fdatasync). */
  datasync: number
}

/** Extended attributes of `ino`: getxattr, listxattr, setxattr, removexattr. */
export interface GetxattrRequest extends Request<Ops['GETXATTR']> {
  ino: number
  name: Buffer
  /** The caller's buffer; 0 asks for the value's size. */
  size: number
}

export interface ListxattrRequest extends Request<Ops['LISTXATTR']> {
  ino: number
  /** The caller's buffer; 0 asks for the list's size. */
  size: number
}

export interface SetxattrRequest extends Request<Ops['SETXATTR']> {
  ino: number
  name: Buffer
  value: Buffer
  /** XATTR_CREATE, XATTR_REPLACE */
  flags: number
}

export interface RemovexattrRequest extends Request<Ops['REMOVEXATTR']> {
  ino: number
  name: Buffer
}

export interface AccessRequest extends Request<Ops['ACCESS']> {
  ino: number
  mask: number
}

export interface FallocateRequest extends Request<Ops['FALLOCATE']> {
  ino: number
  fh: number
  mode: number
  off: number
  length: number
}

export interface LseekRequest extends Request<Ops['LSEEK']> {
  ino: number
  fh: number
  off: number
  whence: number
}

/** From (ino, fh, off) to (inoOut, fhOut, offOut). */
export interface CopyFileRangeRequest extends Request<Ops['COPY_FILE_RANGE']> {
  ino: number
  fh: number
  off: number
  inoOut: number
  fhOut: number
  offOut: number
  length: number
  flags: number
}

/** A request, told apart by `op` (some kinds serve several ops of the same fields). */
export type LlRequest =
  | InitRequest
  | EndedRequest
  | NameRequest
  | InodeRequest
  | GetattrRequest
  | SetattrRequest
  | MknodRequest
  | MkdirRequest
  | CreateRequest
  | SymlinkRequest
  | RenameRequest
  | LinkRequest
  | OpenRequest
  | ReadRequest
  | WriteRequest
  | CloseRequest
  | SyncRequest
  | GetxattrRequest
  | ListxattrRequest
  | SetxattrRequest
  | RemovexattrRequest
  | AccessRequest
  | FallocateRequest
  | LseekRequest
  | CopyFileRangeRequest

/**
 * The request in `f` (the field array) and the call's arguments: `first` is the name (a write's
 * data, a setattr's fields), `second` a second name (a symlink's target, a rename's new name, a
 * setxattr's value).
 */
export function decodeRequest(f: Float64Array, first: Buffer | SetattrFields | undefined, second: Buffer | undefined): LlRequest {
  const op = f[FIELD.OP] as OpCode
  const req = f[FIELD.REQ]
  const ino = f[FIELD.INO]
  const fh = f[FIELD.FH]
  const name = first as Buffer
  switch (op) {
    case OP.INIT:
      return {op, req, maxWrite: f[FIELD.SIZE]}
    case OP.ENDED:
      return {op, req}
    case OP.LOOKUP:
    case OP.UNLINK:
    case OP.RMDIR:
      return {op, req, parent: ino, name}
    case OP.GETATTR:
      return {op, req, ino, fh}
    case OP.SETATTR:
      return {op, req, ino, fields: first as SetattrFields, fh}
    case OP.READLINK:
    case OP.STATFS:
      return {op, req, ino}
    case OP.MKNOD:
      return {op, req, parent: ino, name, mode: f[FIELD.MODE], rdev: f[FIELD.ARG]}
    case OP.MKDIR:
      return {op, req, parent: ino, name, mode: f[FIELD.MODE]}
    case OP.SYMLINK:
      return {op, req, parent: ino, name, target: second!}
    case OP.RENAME:
      return {op, req, parent: ino, name, newParent: f[FIELD.INO2], newName: second!, flags: f[FIELD.FLAGS]}
    case OP.LINK:
      return {op, req, ino, newParent: f[FIELD.INO2], newName: name}
    case OP.OPEN:
    case OP.OPENDIR:
      return {op, req, ino, flags: f[FIELD.FLAGS], kill: f[FIELD.ARG] === 1}
    case OP.READ:
    case OP.READDIR:
    case OP.READDIRPLUS:
      return {op, req, ino, fh, size: f[FIELD.SIZE], off: f[FIELD.OFF]}
    case OP.WRITE:
      return {op, req, ino, fh, data: name, off: f[FIELD.OFF], token: f[FIELD.TOKEN], flags: f[FIELD.FLAGS], kill: f[FIELD.ARG] === 1}
    case OP.FLUSH:
    case OP.RELEASE:
    case OP.RELEASEDIR:
      return {op, req, ino, fh, flags: f[FIELD.FLAGS]}
    case OP.FSYNC:
    case OP.FSYNCDIR:
      return {op, req, ino, fh, datasync: f[FIELD.ARG]}
    case OP.SETXATTR:
      return {op, req, ino, name, value: second!, flags: f[FIELD.FLAGS]}
    case OP.GETXATTR:
      return {op, req, ino, name, size: f[FIELD.SIZE]}
    case OP.LISTXATTR:
      return {op, req, ino, size: f[FIELD.SIZE]}
    case OP.REMOVEXATTR:
      return {op, req, ino, name}
    case OP.ACCESS:
      return {op, req, ino, mask: f[FIELD.MODE]}
    case OP.CREATE:
      return {op, req, parent: ino, name, mode: f[FIELD.MODE], flags: f[FIELD.FLAGS], kill: f[FIELD.ARG] === 1}
    case OP.FALLOCATE:
      return {op, req, ino, fh, mode: f[FIELD.MODE], off: f[FIELD.OFF], length: f[FIELD.OFF2]}
    case OP.LSEEK:
      return {op, req, ino, fh, off: f[FIELD.OFF], whence: f[FIELD.ARG]}
    case OP.COPY_FILE_RANGE:
      return {
        op,
        req,
        ino,
        fh,
        off: f[FIELD.OFF],
        inoOut: f[FIELD.INO2],
        fhOut: f[FIELD.FH2],
        offOut: f[FIELD.OFF2],
        length: f[FIELD.SIZE],
        flags: f[FIELD.FLAGS],
      }

    default:
      throw new Error(`razorfs_ll: unknown operation ${op as number}`)
  }
}

/**
 * Called for each request: `caller` is the session's one context object, overwritten for the
 * next request (copy what outlives the call).
 */
export type RequestHandler = (request: LlRequest, caller: Readonly<RequestContext>) => void

/** The addon's dispatch function and field array for a session served by `handler`. */
export function requestDispatch(handler: RequestHandler): {dispatch: RawDispatch; fields: Float64Array} {
  const fields = new Float64Array(FIELD_COUNT)
  const caller: RequestContext = {uid: 0, gid: 0, pid: 0, umask: 0}
  const dispatch: RawDispatch = (first, second) => {
    caller.uid = fields[FIELD.UID]
    caller.gid = fields[FIELD.GID]
    caller.pid = fields[FIELD.PID]
    caller.umask = fields[FIELD.UMASK]
    handler(decodeRequest(fields, first, second), caller)
  }

  return {dispatch, fields}
}

/** Mount `mountpoint` with the addon; every request goes to `handler`, decoded. Returns the session. */
export function mountLowLevel(
  ll: LowLevelAddon,
  mountpoint: string,
  options: string,
  handler: RequestHandler,
  maxWrite: number,
  modes: number,
  threads: number,
  maxRead?: number,
): object {
  const {dispatch, fields} = requestDispatch(handler)
  return ll.mount(mountpoint, options, dispatch, fields, maxWrite, modes, threads, maxRead)
}

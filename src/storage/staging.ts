/**
 * A new image built beside the data dir's contents and put in place only once it is complete:
 * what `init --from` and `migrate` do, so that a bad archive, a damaged source, a failed verify or
 * an I/O error leaves the data dir as it was (an image that `--force` would replace included).
 *
 * 1. `Staging.begin` creates the data dir if needed, takes its lock (held to the end), finishes or
 *    removes what an earlier run that was killed left behind, refuses an existing image without
 *    `--force`, and makes an empty staging directory `.<kind>-staging-XXXXXX` inside the data dir
 *    (the same filesystem, so putting the image in place is rename(2)s).
 * 2. The caller builds the image in `staging.dir` and closes it.
 * 3. `commit` fsyncs the new files, creates `<staging>/old` (the mark that the staging directory
 *    now holds a complete image), moves the old image's files there, moves the new ones into the
 *    data dir, fsyncs the renamed files and the directories, and removes the staging directory
 *    with the old image in it.
 *    `abort` (any failure before that) removes the staging directory, and the data dir or the
 *    lock file if this run created them.
 *
 * A run killed outright (SIGKILL, SIGINT or SIGTERM: both commands are synchronous, so a signal
 * ends them at once, as its default action does, and the kernel drops the lock) leaves its staging
 * directory. The next `begin` on that data dir removes it, or, if it holds the `old` mark (the run
 * died while moving files), finishes the move: every name still in the staging directory is moved
 * in, after whatever the data dir holds under that name is moved into `old`.
 */
import fs from 'node:fs'
import path from 'node:path'

import {ensureDataDir} from './data-dir.js'
import {DATA_DIR_NAME, FILES, IMAGE_FILE_NAMES, LOCK_NAME} from './format.js'
import {DirLock} from './lock.js'
import {fsyncDir} from './mapped-file.js'

/** Who stages: the name of its staging directories. */
export type StagingKind = 'migrate' | 'restore' | 'gc'
const KINDS: StagingKind[] = ['migrate', 'restore', 'gc']
const prefixOf = (kind: StagingKind): string => `.${kind}-staging-`
/** Inside a staging directory: where the replaced image goes; its presence says the new image is complete. */
const OLD = 'old'
/** The names that make an image, moved one by one (the data dir's `lock` stays: it is held). */
const NAMES = [...IMAGE_FILE_NAMES, DATA_DIR_NAME]

export interface StagingOptions {
  kind: StagingKind
  /** Replace an image that is in the data dir. */
  force: boolean
  /** The error to throw when the data dir holds an image and `force` is off. */
  refuse: () => Error
  /** Test hook: called before each rename of `commit` (old image out, new image in); may throw. */
  beforeRename?: (from: string, to: string) => void
  /**
   * The new image shares the data dir's content files (`data/`, gc): `commit` moves only the
   * mapped files and the log, and the data dir's `data/` stays where it is.
   */
  shareContents?: boolean
}

function exists(p: string): boolean {
  return fs.existsSync(p)
}

function holdsImage(dir: string): boolean {
  return exists(path.join(dir, FILES[0].name))
}

export class Staging {
  /** What `begin` found and did with the leftovers of earlier runs (for a report). */
  readonly notes: string[] = []
  private done = false

  private constructor(
    readonly dataDir: string,
    readonly dir: string,
    private readonly lock: DirLock,
    private readonly opts: StagingOptions,
    /** The topmost directory this run created (the data dir or a missing ancestor), if any. */
    private readonly created: string | undefined,
    private readonly lockExisted: boolean,
  ) {}

  /** Lock the data dir (creating it if needed), tidy it, and make an empty staging directory in it. */
  static begin(dataDir: string, opts: StagingOptions): Staging {
    let created: string | undefined
    for (let d = dataDir; !exists(d); d = path.dirname(d)) {
      created = d
      if (path.dirname(d) === d) break
    }

    ensureDataDir(dataDir)
    const lockExisted = exists(path.join(dataDir, LOCK_NAME))
    let lock: DirLock | undefined
    const notes: string[] = []
    try {
      lock = DirLock.acquire(dataDir)
      tidy(dataDir, notes)
      if (holdsImage(dataDir) && !opts.force) throw opts.refuse()
      const dir = fs.mkdtempSync(path.join(dataDir, prefixOf(opts.kind)))
      const staging = new Staging(dataDir, dir, lock, opts, created, lockExisted)
      staging.notes.push(...notes)
      return staging
    } catch (error) {
      undo(dataDir, undefined, created, lockExisted)
      lock?.release()
      throw error
    }
  }

  /**
   * Put the complete image of the staging directory in place, replacing the data dir's image if
   * there is one, and make it durable. Returns whether an image was replaced. The lock stays held.
   */
  commit(): {replaced: boolean} {
    if (this.done) throw new Error('internal: the staging directory was already committed or aborted')
    const data = path.join(this.dir, DATA_DIR_NAME)
    // The names of the new image: without data/ when it shares the data dir's (gc), which never moves.
    const names = this.opts.shareContents === true ? IMAGE_FILE_NAMES : NAMES
    // Every name is moved, so no old data/ can stay (unless the new image shares it).
    if (this.opts.shareContents === true) fs.rmSync(data, {recursive: true, force: true})
    else if (!exists(data)) fs.mkdirSync(data, {mode: 0o700})
    for (const name of names) {
      if (!exists(path.join(this.dir, name))) throw new Error(`internal: the new image has no ${name}`)
      fsyncDir(path.join(this.dir, name))
    }

    fsyncDir(this.dir)
    const replaced = holdsImage(this.dataDir)
    // From here on the staging directory holds a complete image: a run killed now is finished by the next begin.
    fs.mkdirSync(path.join(this.dir, OLD), {mode: 0o700})
    fsyncDir(this.dir)
    try {
      moveIn(this.dataDir, this.dir, names, this.opts.beforeRename)
    } catch (error) {
      // Nothing was lost: put back what moved, so that the data dir is as it was.
      try {
        moveBack(this.dataDir, this.dir, names)
      } catch {
        // The next begin finishes the move (the mark is there).
        this.done = true
        throw error
      }

      throw error
    }

    this.done = true
    fs.rmSync(this.dir, {recursive: true, force: true})
    fsyncDir(this.dataDir)
    return {replaced}
  }

  /** Remove the staging directory, and what this run created (the data dir, or its lock file). */
  abort(): void {
    if (this.done) return
    this.done = true
    undo(this.dataDir, this.dir, this.created, this.lockExisted)
  }

  /** Release the data dir's lock (after `commit` or `abort`; an abandoned staging directory is cleaned by the next `begin`). */
  release(): void {
    this.lock.release()
  }
}

/**
 * The move itself: every name of the data dir's image goes to `<staging>/old`, then every name
 * of the new image goes into the data dir. A name still in the staging directory has not moved in
 * yet, so what the data dir holds under it belongs to the old image: the same rule finishes a
 * move that was interrupted.
 */
function moveIn(dataDir: string, staging: string, names: readonly string[], beforeRename?: (from: string, to: string) => void): void {
  const old = path.join(staging, OLD)
  const rename = (from: string, to: string): void => {
    beforeRename?.(from, to)
    fs.renameSync(from, to)
  }

  const pending = names.filter(name => exists(path.join(staging, name)))
  for (const name of pending) {
    if (exists(path.join(dataDir, name))) rename(path.join(dataDir, name), path.join(old, name))
  }

  fsyncDir(old)
  fsyncDir(dataDir)
  for (const name of pending) rename(path.join(staging, name), path.join(dataDir, name))
  fsyncDir(dataDir)
  fsyncDir(staging)
  for (const name of pending) fsyncDir(path.join(dataDir, name))
}

/**
 * Undo a failed `moveIn` of `names`: new names back to the staging directory, old ones back to the
 * data dir. Only those names: a data/ the new image shares (gc) is not the new image's, and must
 * neither go into the staging directory nor be removed with it.
 */
function moveBack(dataDir: string, staging: string, names: readonly string[]): void {
  const old = path.join(staging, OLD)
  for (const name of names) {
    if (!exists(path.join(staging, name)) && exists(path.join(dataDir, name))) fs.renameSync(path.join(dataDir, name), path.join(staging, name))
  }

  for (const name of names) {
    if (exists(path.join(old, name))) fs.renameSync(path.join(old, name), path.join(dataDir, name))
  }

  fsyncDir(dataDir)
  fs.rmSync(staging, {recursive: true, force: true})
}

/** Does the data dir hold a staging directory whose complete image a killed run was moving in? */
export function holdsFinishedStaging(dataDir: string): boolean {
  let names: string[]
  try {
    names = fs.readdirSync(dataDir)
  } catch {
    return false
  }

  return names.some(name => KINDS.some(k => name.startsWith(prefixOf(k))) && exists(path.join(dataDir, name, OLD)))
}

/**
 * Where each name of the image in `dataDir` is now, for an opener that does not take the lock
 * (a read-only open: it must not move files). While a killed run's complete image is only partly
 * moved in (the staging directory holds the `old` mark), a name still in the staging directory
 * belongs to the new image and the data dir's copy of it to the old one (moveIn's rule): the
 * opener reads the new image, as the next read-write open will have moved it in. Otherwise every
 * name is the data dir's.
 */
export function imagePaths(dataDir: string): (name: string) => string {
  let names: string[]
  try {
    names = fs.readdirSync(dataDir)
  } catch {
    names = []
  }

  const staged = names
    .filter(name => KINDS.some(k => name.startsWith(prefixOf(k))) && exists(path.join(dataDir, name, OLD)))
    .map(name => path.join(dataDir, name))
  return name => {
    for (const dir of staged) if (exists(path.join(dir, name))) return path.join(dir, name)
    return path.join(dataDir, name)
  }
}

/**
 * Which files the image of `dataDir` is made of right now, as the device and inode number of each
 * (through `imagePaths`): a rename keeps them, a swap changes them. An opener without the lock
 * compares this before and after it opens the files, and when a content file is missing, to tell
 * a swap that ran meanwhile (gc, restore, migrate) from a file a live server removed.
 */
export function imageIdentity(dataDir: string): string {
  const at = imagePaths(dataDir)
  return IMAGE_FILE_NAMES.map(name => {
    try {
      const st = fs.statSync(at(name))
      return `${st.dev}:${st.ino}`
    } catch {
      return '-'
    }
  }).join(' ')
}

/**
 * Staging directories left by killed runs: finish moving in a complete image, remove the rest.
 * The caller holds the data dir's lock (so none is in use): `begin`, and every read-write open of
 * an image, so that no command ever works on (or creates an image over) a half-moved one.
 */
export function tidy(dataDir: string, notes: string[]): void {
  for (const name of fs.readdirSync(dataDir)) {
    const kind = KINDS.find(k => name.startsWith(prefixOf(k)))
    if (kind === undefined) continue
    const staging = path.join(dataDir, name)
    if (exists(path.join(staging, OLD))) {
      moveIn(dataDir, staging, NAMES)
      notes.push(`finished putting in place the image that an interrupted ${kind} had completed in ${staging}`)
    } else {
      notes.push(`removed ${staging}, left by a ${kind} that did not finish`)
    }

    fs.rmSync(staging, {recursive: true, force: true})
  }
}

function undo(dataDir: string, staging: string | undefined, created: string | undefined, lockExisted: boolean): void {
  try {
    if (created !== undefined) {
      fs.rmSync(created, {recursive: true, force: true})
      return
    }

    if (staging !== undefined) fs.rmSync(staging, {recursive: true, force: true})
    if (!lockExisted) fs.rmSync(path.join(dataDir, LOCK_NAME), {force: true})
  } catch {
    // best effort: the error being thrown says what went wrong
  }
}

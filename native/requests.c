/*
 * libfuse's low-level callbacks. Each copies its request into a job and queues it to JS (queue.c);
 * what it sets is what JS reads from the field array (src/fuse/ll/requests.ts), besides OP, REQ
 * and the caller (UID, GID, PID, UMASK), which every job carries. A name goes to JS as the call's
 * first argument (`name`), a second name as its second (`name2`).
 *
 * Plain readdir requests the dirent cache covers are answered here (dirents.c); forget needs no
 * answer from JS.
 */
#include "razorfs_ll.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A job of `op` on inode `ino`, with a copy of `name` (may be NULL). */
static job *job_on(int op, fuse_req_t req, fuse_ino_t ino, const char *name) {
  job *j = job_new(op, req);
  j->ino = ino;
  j->name = name == NULL ? NULL : strdup(name);
  return j;
}

/* FH, and FLAGS: the open flags of the file the request came through (if any). */
static void fi_into(job *j, struct fuse_file_info *fi) {
  if (fi != NULL) {
    j->fh = fi->fh;
    j->has_fh = true;
    j->flags = fi->flags;
  }
}

static void queue(fuse_req_t req, job *j) {
  job_enqueue(fuse_req_userdata(req), j);
}

/* A job of `op` on inode `ino` and the open file it came through, queued. */
static void queue_on_file(int op, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  job *j = job_on(op, req, ino, NULL);
  fi_into(j, fi);
  queue(req, j);
}

/* INIT: SIZE the largest write. */
static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  session *s = userdata;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_EXPORT_SUPPORT) conn->want |= FUSE_CAP_EXPORT_SUPPORT;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  /* Adaptive readdirplus: the kernel asks for attributes with the entries only where the
     listing is followed by lookups (ls -l, find), else a plain readdir (served in runs). */
  if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO) conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
  if ((s->modes & MODE_WRITEBACK) && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  else conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  if (s->modes & MODE_KEEP_PAGES) conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  conn->max_write = s->max_write;
  conn->max_readahead = s->max_write;
  /* Must equal the max_read= mount option (libfuse ends the session otherwise). */
  if (s->max_read > 0) conn->max_read = s->max_read;
  job *j = job_new(OP_INIT, NULL);
  j->size = conn->max_write;
  job_enqueue(s, j);
}

/* LOOKUP, UNLINK, RMDIR: INO the parent, name. */
static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  queue(req, job_on(OP_LOOKUP, req, parent, name));
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  queue(req, job_on(OP_UNLINK, req, parent, name));
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  queue(req, job_on(OP_RMDIR, req, parent, name));
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  (void)ino;
  (void)nlookup;
  /* razorfs keeps no per-inode kernel reference counts: inode numbers carry a generation, so a
     stale number never reaches another file. */
  fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  (void)count;
  (void)forgets;
  fuse_reply_none(req);
}

/* GETATTR: INO, FH (-1 without an open file). */
static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  queue_on_file(OP_GETATTR, req, ino, fi);
}

/* SETATTR: INO, FH (-1 without an open file), ARG the to_set mask; the new attributes go to JS
   as an object of the fields to change (queue.c). */
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  job *j = job_on(OP_SETATTR, req, ino, NULL);
  j->st = *attr;
  j->arg = to_set;
  j->kill = request_kills_suidgid();
  fi_into(j, fi);
  queue(req, j);
}

/* READLINK, STATFS: INO. */
static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  queue(req, job_on(OP_READLINK, req, ino, NULL));
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  queue(req, job_on(OP_STATFS, req, ino, NULL));
}

/* MKNOD: INO the parent, name, MODE, ARG the device number. MKDIR: the same without ARG. */
static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  job *j = job_on(OP_MKNOD, req, parent, name);
  j->mode = mode;
  j->arg = (int64_t)rdev;
  queue(req, j);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  job *j = job_on(OP_MKDIR, req, parent, name);
  j->mode = mode;
  queue(req, j);
}

/* SYMLINK: INO the parent, name, name2 the target. */
static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  job *j = job_on(OP_SYMLINK, req, parent, name);
  j->name2 = strdup(link);
  queue(req, j);
}

/* RENAME: INO and name the old place, INO2 and name2 the new, FLAGS. */
static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) {
  job *j = job_on(OP_RENAME, req, parent, name);
  j->ino2 = newparent;
  j->name2 = strdup(newname);
  j->flags = (int)flags;
  queue(req, j);
}

/* LINK: INO the file, INO2 the new parent, name the new name. */
static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  job *j = job_on(OP_LINK, req, ino, newname);
  j->ino2 = newparent;
  queue(req, j);
}

/* OPEN, OPENDIR: INO, FLAGS; OPEN: ARG 1 where the kernel asks to clear set-user-ID and
   set-group-ID with the truncation (FUSE_OPEN_KILL_SUIDGID, kernel.c). */
static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  job *j = job_on(OP_OPEN, req, ino, NULL);
  fi_into(j, fi);
  j->arg = request_kills_suidgid();
  queue(req, j);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  queue_on_file(OP_OPENDIR, req, ino, fi);
}

/* READ, READDIR, READDIRPLUS: INO, FH, SIZE, OFF. */
static void ll_read_like(int op, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  job *j = job_on(op, req, ino, NULL);
  j->size = size;
  j->off = off;
  fi_into(j, fi);
  queue(req, j);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  ll_read_like(OP_READ, req, ino, size, off, fi);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  if (dir_run_serve(req, fi->fh, size, off)) return;
  ll_read_like(OP_READDIR, req, ino, size, off, fi);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  ll_read_like(OP_READDIRPLUS, req, ino, size, off, fi);
}

/* WRITE: INO, FH, OFF, FLAGS, TOKEN (to reply with), ARG 1 where the kernel asks to clear
   set-user-ID and set-group-ID (FUSE_WRITE_KILL_SUIDGID); the data as the call's first argument. */
static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  job *j = job_on(OP_WRITE, req, ino, NULL);
  j->data = (char *)buf; /* borrowed: valid until this callback returns */
  j->datalen = size;
  j->off = off;
  j->arg = request_kills_suidgid();
  fi_into(j, fi);
  /* On the JS thread, JS has replied when queue returns. */
  if (((session *)fuse_req_userdata(req))->on_js_thread) {
    queue(req, j);
    return;
  }
  sem_t done;
  sem_init(&done, 0, 0);
  j->done = &done;
  queue(req, j);
  while (sem_wait(&done) != 0 && errno == EINTR) {
  }
  sem_destroy(&done);
}

/* FLUSH, RELEASE, RELEASEDIR: INO, FH, FLAGS. */
static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  queue_on_file(OP_FLUSH, req, ino, fi);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  queue_on_file(OP_RELEASE, req, ino, fi);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  dir_run_drop(fuse_req_userdata(req), fi->fh);
  queue_on_file(OP_RELEASEDIR, req, ino, fi);
}

/* FSYNC, FSYNCDIR: INO, FH, ARG datasync. */
static void ll_fsync_like(int op, fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  job *j = job_on(op, req, ino, NULL);
  j->arg = datasync;
  fi_into(j, fi);
  queue(req, j);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  ll_fsync_like(OP_FSYNC, req, ino, datasync, fi);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  ll_fsync_like(OP_FSYNCDIR, req, ino, datasync, fi);
}

/* The attribute the kernel asks for before each write and chown. */
#define CAPABILITY "security.capability"

/* SETXATTR: INO, name, FLAGS; the value as the call's second argument. */
static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  if (strcmp(name, CAPABILITY) == 0) caps_unknown(fuse_req_userdata(req), ino);
  job *j = job_on(OP_SETXATTR, req, ino, name);
  j->data = malloc(size > 0 ? size : 1);
  memcpy(j->data, value, size);
  j->datalen = size;
  j->flags = flags;
  queue(req, j);
}

/* GETXATTR: INO, name, SIZE. LISTXATTR: INO, SIZE. REMOVEXATTR: INO, name. */
static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  /* A file this mount made, and gave no capability since (caps.c). */
  if (strcmp(name, CAPABILITY) == 0 && caps_known_none(fuse_req_userdata(req), ino)) {
    fuse_reply_err(req, ENODATA);
    return;
  }
  job *j = job_on(OP_GETXATTR, req, ino, name);
  j->size = size;
  queue(req, j);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  job *j = job_on(OP_LISTXATTR, req, ino, NULL);
  j->size = size;
  queue(req, j);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  queue(req, job_on(OP_REMOVEXATTR, req, ino, name));
}

/* ACCESS: INO, MODE the mask. */
static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  job *j = job_on(OP_ACCESS, req, ino, NULL);
  j->mode = (uint32_t)mask;
  queue(req, j);
}

/* CREATE: INO the parent, name, MODE, FLAGS, ARG as OPEN's (an existing file opened with O_TRUNC). */
static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  job *j = job_on(OP_CREATE, req, parent, name);
  j->mode = mode;
  fi_into(j, fi);
  j->arg = request_kills_suidgid();
  queue(req, j);
}

/* FALLOCATE: INO, FH, MODE, OFF, OFF2 the length. */
static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi) {
  job *j = job_on(OP_FALLOCATE, req, ino, NULL);
  fi_into(j, fi);
  j->mode = (uint32_t)mode;
  j->off = offset;
  j->off2 = length;
  queue(req, j);
}

/* LSEEK: INO, FH, OFF, ARG whence. */
static void ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) {
  job *j = job_on(OP_LSEEK, req, ino, NULL);
  fi_into(j, fi);
  j->off = off;
  j->arg = whence;
  queue(req, j);
}

/* COPY_FILE_RANGE: INO, FH, OFF the source; INO2, FH2, OFF2 the destination; SIZE, FLAGS. */
static void ll_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
                               fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags) {
  job *j = job_on(OP_COPY_FILE_RANGE, req, ino_in, NULL);
  j->off = off_in;
  j->fh = fi_in->fh;
  j->has_fh = true;
  j->ino2 = ino_out;
  j->off2 = off_out;
  j->fh2 = fi_out->fh;
  j->size = len;
  j->flags = flags;
  queue(req, j);
}

const struct fuse_lowlevel_ops razorfs_ll_ops = {
  .init = ll_init,
  .lookup = ll_lookup,
  .forget = ll_forget,
  .forget_multi = ll_forget_multi,
  .getattr = ll_getattr,
  .setattr = ll_setattr,
  .readlink = ll_readlink,
  .mknod = ll_mknod,
  .mkdir = ll_mkdir,
  .unlink = ll_unlink,
  .rmdir = ll_rmdir,
  .symlink = ll_symlink,
  .rename = ll_rename,
  .link = ll_link,
  .open = ll_open,
  .read = ll_read,
  .write = ll_write,
  .flush = ll_flush,
  .release = ll_release,
  .fsync = ll_fsync,
  .opendir = ll_opendir,
  .readdir = ll_readdir,
  .readdirplus = ll_readdirplus,
  .releasedir = ll_releasedir,
  .fsyncdir = ll_fsyncdir,
  .statfs = ll_statfs,
  .setxattr = ll_setxattr,
  .getxattr = ll_getxattr,
  .listxattr = ll_listxattr,
  .removexattr = ll_removexattr,
  .access = ll_access,
  .create = ll_create,
  .fallocate = ll_fallocate,
  .lseek = ll_lseek,
  .copy_file_range = ll_copy_file_range,
};

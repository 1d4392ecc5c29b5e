/*
 * razorfs_ll: a libfuse 3 low-level binding for Node.js (N-API), written for razorfs.
 *
 * Threads. libfuse's multi-threaded session loop runs on its own threads. Each request is copied
 * into a `job` and queued to the JS thread through one thread-safe function (non-blocking: a
 * worker never waits for JS, except `write`, below). JS answers with one of the reply functions
 * exported here, which call fuse_reply_* directly (libfuse allows replies from any thread, after
 * the request callback has returned).
 *
 * Buffers. Read data goes from the JS Buffer straight to fuse_reply_buf (libfuse writes it to the
 * kernel with writev: no copy here). Write data is not copied either: the worker that received
 * it waits until JS has replied, and the JS Buffer over libfuse's memory is detached at the reply.
 *
 * Request handles are the fuse_req_t pointers passed to JS as numbers (user-space addresses fit
 * in 53 bits). Every request must get exactly one reply; the JS side guarantees it.
 *
 * Directory listings. A plain readdir (not readdirplus) answered by JS may carry more entries than
 * the kernel asked for; the rest stay packed here, per directory handle (the dirent cache), and
 * the worker threads answer the kernel's next requests on that handle from it without a trip to
 * JS, as libfuse's high-level API does. Offset 0 (rewinddir), an offset outside the packed run,
 * and readdirplus always go to JS; releasedir drops the handle's run.
 */
#define FUSE_USE_VERSION 312
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <errno.h>
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <stdio.h>
#include <stdbool.h>
#include <unistd.h>

enum op {
  OP_INIT = 0, OP_DESTROY, OP_LOOKUP, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD, OP_MKDIR,
  OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ, OP_WRITE, OP_FLUSH,
  OP_RELEASE, OP_FSYNC, OP_OPENDIR, OP_READDIR, OP_READDIRPLUS, OP_RELEASEDIR, OP_FSYNCDIR,
  OP_STATFS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_ACCESS, OP_CREATE,
  OP_FALLOCATE, OP_LSEEK, OP_COPY_FILE_RANGE, OP_ENDED, OP_FORGET,
};

typedef struct session {
  struct fuse_session *se;
  napi_threadsafe_function tsfn;
  pthread_t thread;
  char *mountpoint;
  int max_write;
  int writeback;
  int threads;
  int ended;
} session;

typedef struct job {
  int op;
  fuse_req_t req;
  uid_t uid;
  gid_t gid;
  pid_t pid;
  mode_t umask;
  uint64_t ino, ino2, fh, fh2;
  uint64_t n1, n2, n3;
  int64_t s1, s2;
  int i1, i2, i3;
  char *name, *name2;
  char *data;
  size_t datalen;
  struct stat st;
  /* write: the worker waits on this until JS has replied */
  sem_t *done;
} job;

/* ---- dirent cache ------------------------------------------------------------------------- */

/* One directory handle's packed run of entries: records of fuse_add_direntry, back to back.
   Entry i ends at byte ends[i] and carries offset offs[i] (the kernel's next request on the
   handle asks from that offset). The run follows offset `start`. */
typedef struct dir_run {
  const void *owner; /* the session */
  uint64_t fh;
  off_t start;
  char *buf;
  size_t *ends;
  off_t *offs;
  uint32_t count;
  struct dir_run *next;
} dir_run;

#define DIR_RUN_BUCKETS 64
static dir_run *dir_runs[DIR_RUN_BUCKETS];
static pthread_mutex_t dir_runs_lock = PTHREAD_MUTEX_INITIALIZER;

static void dir_run_free(dir_run *r) {
  free(r->buf);
  free(r->ends);
  free(r->offs);
  free(r);
}

/* Unlink the run of `fh` and return it (or NULL). Call with dir_runs_lock held. */
static dir_run *dir_run_take(const void *owner, uint64_t fh) {
  dir_run **p = &dir_runs[fh % DIR_RUN_BUCKETS];
  for (; *p != NULL; p = &(*p)->next) {
    if ((*p)->fh == fh && (*p)->owner == owner) {
      dir_run *r = *p;
      *p = r->next;
      return r;
    }
  }
  return NULL;
}

static void dir_run_drop(const void *owner, uint64_t fh) {
  pthread_mutex_lock(&dir_runs_lock);
  dir_run *r = dir_run_take(owner, fh);
  pthread_mutex_unlock(&dir_runs_lock);
  if (r != NULL) dir_run_free(r);
}

/* Answer `req` with the first `sent` entries of a new run and keep the rest as the handle's run.
   The run is in place before the reply reaches the kernel: the kernel's next request on the
   handle may come at once, on another worker thread. */
static void dir_run_put_and_reply(fuse_req_t req, dir_run *r, uint32_t sent) {
  pthread_mutex_lock(&dir_runs_lock);
  dir_run *old = dir_run_take(r->owner, r->fh);
  r->next = dir_runs[r->fh % DIR_RUN_BUCKETS];
  dir_runs[r->fh % DIR_RUN_BUCKETS] = r;
  fuse_reply_buf(req, r->buf, sent == 0 ? 0 : r->ends[sent - 1]);
  pthread_mutex_unlock(&dir_runs_lock);
  if (old != NULL) dir_run_free(old);
}

/* Entries [from, to) of a run that fit in `size` bytes, starting at `from`. */
static uint32_t dir_run_fit(const dir_run *r, uint32_t from, size_t size) {
  size_t base = from == 0 ? 0 : r->ends[from - 1];
  uint32_t to = from;
  while (to < r->count && r->ends[to] - base <= size) to++;
  return to;
}

/* Answer a plain readdir from the handle's run; false when the run does not cover `off`. */
static bool dir_run_serve(fuse_req_t req, uint64_t fh, size_t size, off_t off) {
  if (off == 0) return false;
  const void *owner = fuse_req_userdata(req);
  bool served = false;
  pthread_mutex_lock(&dir_runs_lock);
  dir_run *r = dir_runs[fh % DIR_RUN_BUCKETS];
  while (r != NULL && (r->fh != fh || r->owner != owner)) r = r->next;
  if (r != NULL) {
    /* The first entry to send follows the one whose offset is `off` (offsets increase). */
    uint32_t from = UINT32_MAX;
    if (off == r->start) from = 0;
    else {
      uint32_t lo = 0, hi = r->count;
      while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->offs[mid] < off) lo = mid + 1;
        else hi = mid;
      }
      if (lo < r->count && r->offs[lo] == off) from = lo + 1;
    }
    if (from < r->count) {
      uint32_t to = dir_run_fit(r, from, size);
      if (to > from) {
        size_t base = from == 0 ? 0 : r->ends[from - 1];
        fuse_reply_buf(req, r->buf + base, r->ends[to - 1] - base);
        served = true;
      }
    }
  }
  pthread_mutex_unlock(&dir_runs_lock);
  return served;
}

/* Drop every run of a session (at its end). */
static void dir_runs_drop_all(const void *owner) {
  pthread_mutex_lock(&dir_runs_lock);
  for (int b = 0; b < DIR_RUN_BUCKETS; b++) {
    dir_run **p = &dir_runs[b];
    while (*p != NULL) {
      dir_run *r = *p;
      if (r->owner == owner) {
        *p = r->next;
        dir_run_free(r);
      } else p = &r->next;
    }
  }
  pthread_mutex_unlock(&dir_runs_lock);
}

/* ---- helpers ------------------------------------------------------------------------------ */

#define CHECK(call)                                                                 \
  do {                                                                              \
    napi_status status_ = (call);                                                   \
    if (status_ != napi_ok) {                                                       \
      napi_throw_error(env, NULL, "razorfs_ll: N-API call failed: " #call);         \
      return NULL;                                                                  \
    }                                                                               \
  } while (0)

static char *dupstr(const char *s) { return s == NULL ? NULL : strdup(s); }

static job *new_job(int op, fuse_req_t req) {
  job *j = calloc(1, sizeof(job));
  j->op = op;
  j->req = req;
  if (req != NULL) {
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    j->uid = ctx->uid;
    j->gid = ctx->gid;
    j->pid = ctx->pid;
    j->umask = ctx->umask;
  }
  return j;
}

static void free_job(job *j) {
  free(j->name);
  free(j->name2);
  if (j->op != OP_WRITE) free(j->data);
  free(j);
}

static session *session_of(fuse_req_t req) { return (session *)fuse_req_userdata(req); }

static void enqueue(session *s, job *j) {
  if (napi_call_threadsafe_function(s->tsfn, j, napi_tsfn_nonblocking) != napi_ok) {
    /* The JS side is gone (shutting down): answer so the kernel is not left waiting. */
    if (j->req != NULL) fuse_reply_err(j->req, EIO);
    if (j->done != NULL) sem_post(j->done);
    free_job(j);
  }
}

static void fi_into(job *j, struct fuse_file_info *fi) {
  if (fi != NULL) {
    j->fh = fi->fh;
    j->i3 = fi->flags;
  }
}

/* ---- lowlevel operations: queue to JS ----------------------------------------------------- */

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  session *s = userdata;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_EXPORT_SUPPORT) conn->want |= FUSE_CAP_EXPORT_SUPPORT;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  /* Adaptive readdirplus: the kernel asks for attributes with the entries only where the
     listing is followed by lookups (ls -l, find), else a plain readdir (served in runs). */
  if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO) conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
  if (s->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  else conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  conn->max_write = s->max_write;
  conn->max_readahead = s->max_write;
  job *j = new_job(OP_INIT, NULL);
  j->n1 = conn->max_write;
  j->n2 = conn->want;
  j->n3 = conn->capable;
  enqueue(s, j);
}

static void ll_destroy(void *userdata) {
  (void)userdata;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  job *j = new_job(OP_LOOKUP, req);
  j->ino = parent;
  j->name = dupstr(name);
  enqueue(session_of(req), j);
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

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  job *j = new_job(OP_GETATTR, req);
  j->ino = ino;
  j->fh = fi != NULL ? fi->fh : 0;
  j->i1 = fi != NULL;
  enqueue(session_of(req), j);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  job *j = new_job(OP_SETATTR, req);
  j->ino = ino;
  j->st = *attr;
  j->i1 = to_set;
  j->i2 = fi != NULL;
  j->fh = fi != NULL ? fi->fh : 0;
  enqueue(session_of(req), j);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  job *j = new_job(OP_READLINK, req);
  j->ino = ino;
  enqueue(session_of(req), j);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  job *j = new_job(OP_MKNOD, req);
  j->ino = parent;
  j->name = dupstr(name);
  j->i1 = mode;
  j->n1 = rdev;
  enqueue(session_of(req), j);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  job *j = new_job(OP_MKDIR, req);
  j->ino = parent;
  j->name = dupstr(name);
  j->i1 = mode;
  enqueue(session_of(req), j);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  job *j = new_job(OP_UNLINK, req);
  j->ino = parent;
  j->name = dupstr(name);
  enqueue(session_of(req), j);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  job *j = new_job(OP_RMDIR, req);
  j->ino = parent;
  j->name = dupstr(name);
  enqueue(session_of(req), j);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  job *j = new_job(OP_SYMLINK, req);
  j->ino = parent;
  j->name = dupstr(name);
  j->name2 = dupstr(link);
  enqueue(session_of(req), j);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) {
  job *j = new_job(OP_RENAME, req);
  j->ino = parent;
  j->name = dupstr(name);
  j->ino2 = newparent;
  j->name2 = dupstr(newname);
  j->i1 = (int)flags;
  enqueue(session_of(req), j);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  job *j = new_job(OP_LINK, req);
  j->ino = ino;
  j->ino2 = newparent;
  j->name = dupstr(newname);
  enqueue(session_of(req), j);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  job *j = new_job(OP_OPEN, req);
  j->ino = ino;
  j->i1 = fi->flags;
  enqueue(session_of(req), j);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  job *j = new_job(OP_READ, req);
  j->ino = ino;
  j->n1 = size;
  j->s1 = off;
  fi_into(j, fi);
  enqueue(session_of(req), j);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  sem_t done;
  sem_init(&done, 0, 0);
  job *j = new_job(OP_WRITE, req);
  j->ino = ino;
  j->data = (char *)buf; /* borrowed: valid until this callback returns */
  j->datalen = size;
  j->s1 = off;
  j->done = &done;
  fi_into(j, fi);
  enqueue(session_of(req), j);
  while (sem_wait(&done) != 0 && errno == EINTR) {
  }
  sem_destroy(&done);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  job *j = new_job(OP_FLUSH, req);
  j->ino = ino;
  fi_into(j, fi);
  enqueue(session_of(req), j);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  job *j = new_job(OP_RELEASE, req);
  j->ino = ino;
  fi_into(j, fi);
  enqueue(session_of(req), j);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  job *j = new_job(OP_FSYNC, req);
  j->ino = ino;
  j->i1 = datasync;
  fi_into(j, fi);
  enqueue(session_of(req), j);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  job *j = new_job(OP_OPENDIR, req);
  j->ino = ino;
  j->i1 = fi->flags;
  enqueue(session_of(req), j);
}

static void ll_readdir_common(int op, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  job *j = new_job(op, req);
  j->ino = ino;
  j->n1 = size;
  j->s1 = off;
  fi_into(j, fi);
  enqueue(session_of(req), j);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  if (dir_run_serve(req, fi->fh, size, off)) return;
  ll_readdir_common(OP_READDIR, req, ino, size, off, fi);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  ll_readdir_common(OP_READDIRPLUS, req, ino, size, off, fi);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  dir_run_drop(fuse_req_userdata(req), fi->fh);
  job *j = new_job(OP_RELEASEDIR, req);
  j->ino = ino;
  fi_into(j, fi);
  enqueue(session_of(req), j);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  job *j = new_job(OP_FSYNCDIR, req);
  j->ino = ino;
  j->i1 = datasync;
  fi_into(j, fi);
  enqueue(session_of(req), j);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  job *j = new_job(OP_STATFS, req);
  j->ino = ino;
  enqueue(session_of(req), j);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  job *j = new_job(OP_SETXATTR, req);
  j->ino = ino;
  j->name = dupstr(name);
  j->data = malloc(size > 0 ? size : 1);
  memcpy(j->data, value, size);
  j->datalen = size;
  j->i1 = flags;
  enqueue(session_of(req), j);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  job *j = new_job(OP_GETXATTR, req);
  j->ino = ino;
  j->name = dupstr(name);
  j->n1 = size;
  enqueue(session_of(req), j);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  job *j = new_job(OP_LISTXATTR, req);
  j->ino = ino;
  j->n1 = size;
  enqueue(session_of(req), j);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  job *j = new_job(OP_REMOVEXATTR, req);
  j->ino = ino;
  j->name = dupstr(name);
  enqueue(session_of(req), j);
}

static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  job *j = new_job(OP_ACCESS, req);
  j->ino = ino;
  j->i1 = mask;
  enqueue(session_of(req), j);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  job *j = new_job(OP_CREATE, req);
  j->ino = parent;
  j->name = dupstr(name);
  j->i1 = mode;
  j->i2 = fi->flags;
  enqueue(session_of(req), j);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi) {
  job *j = new_job(OP_FALLOCATE, req);
  j->ino = ino;
  j->i1 = mode;
  j->s1 = offset;
  j->s2 = length;
  fi_into(j, fi);
  enqueue(session_of(req), j);
}

static void ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) {
  job *j = new_job(OP_LSEEK, req);
  j->ino = ino;
  j->s1 = off;
  j->i1 = whence;
  fi_into(j, fi);
  enqueue(session_of(req), j);
}

static void ll_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
                               fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags) {
  job *j = new_job(OP_COPY_FILE_RANGE, req);
  j->ino = ino_in;
  j->s1 = off_in;
  j->fh = fi_in->fh;
  j->ino2 = ino_out;
  j->s2 = off_out;
  j->fh2 = fi_out->fh;
  j->n1 = len;
  j->i1 = flags;
  enqueue(session_of(req), j);
}

static const struct fuse_lowlevel_ops LL_OPS = {
  .init = ll_init,
  .destroy = ll_destroy,
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

/* ---- the JS side of the queue ------------------------------------------------------------- */

static napi_value num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

static napi_value str_or_buf(napi_env env, const char *s) {
  /* Names are bytes: hand them over as Buffers (any byte but '/' and NUL). */
  napi_value out;
  void *data;
  size_t len = s == NULL ? 0 : strlen(s);
  napi_create_buffer_copy(env, len, s == NULL ? "" : s, &data, &out);
  return out;
}

/* Destroy an ended session. Runs on the JS thread with OP_ENDED, which the queue delivers after
   every request queued before it: JS answers requests as it receives them, so none is left. */
static void end_session(job *j) {
  session *s = (session *)(uintptr_t)j->fh;
  if (s != NULL && s->se != NULL) {
    fuse_session_destroy(s->se);
    s->se = NULL;
  }
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)context;
  job *j = data;
  if (j->op == OP_ENDED) end_session(j);
  if (env == NULL) {
    if (j->req != NULL) fuse_reply_err(j->req, EIO);
    if (j->done != NULL) sem_post(j->done);
    free_job(j);
    return;
  }

  napi_value argv[16];
  size_t argc = 0;
  argv[argc++] = num(env, j->op);
  argv[argc++] = num(env, (double)(uintptr_t)j->req);
  napi_value ctx;
  napi_create_object(env, &ctx);
  napi_set_named_property(env, ctx, "uid", num(env, j->uid));
  napi_set_named_property(env, ctx, "gid", num(env, j->gid));
  napi_set_named_property(env, ctx, "pid", num(env, j->pid));
  napi_set_named_property(env, ctx, "umask", num(env, j->umask));
  argv[argc++] = ctx;
  napi_value write_buf = NULL;

  switch (j->op) {
    case OP_INIT:
      argv[argc++] = num(env, (double)j->n1);
      argv[argc++] = num(env, (double)j->n2);
      argv[argc++] = num(env, (double)j->n3);
      break;
    case OP_ENDED:
      break;
    case OP_LOOKUP: case OP_UNLINK: case OP_RMDIR:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = str_or_buf(env, j->name);
      break;
    case OP_GETATTR:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = j->i1 ? num(env, (double)j->fh) : num(env, -1);
      break;
    case OP_SETATTR: {
      napi_value a;
      napi_create_object(env, &a);
      int set = j->i1;
      if (set & FUSE_SET_ATTR_MODE) napi_set_named_property(env, a, "mode", num(env, j->st.st_mode));
      if (set & FUSE_SET_ATTR_UID) napi_set_named_property(env, a, "uid", num(env, j->st.st_uid));
      if (set & FUSE_SET_ATTR_GID) napi_set_named_property(env, a, "gid", num(env, j->st.st_gid));
      if (set & FUSE_SET_ATTR_SIZE) napi_set_named_property(env, a, "size", num(env, (double)j->st.st_size));
      if (set & FUSE_SET_ATTR_ATIME_NOW) napi_set_named_property(env, a, "atimeNow", num(env, 1));
      else if (set & FUSE_SET_ATTR_ATIME) {
        napi_set_named_property(env, a, "atimeSec", num(env, (double)j->st.st_atim.tv_sec));
        napi_set_named_property(env, a, "atimeNsec", num(env, (double)j->st.st_atim.tv_nsec));
      }
      if (set & FUSE_SET_ATTR_MTIME_NOW) napi_set_named_property(env, a, "mtimeNow", num(env, 1));
      else if (set & FUSE_SET_ATTR_MTIME) {
        napi_set_named_property(env, a, "mtimeSec", num(env, (double)j->st.st_mtim.tv_sec));
        napi_set_named_property(env, a, "mtimeNsec", num(env, (double)j->st.st_mtim.tv_nsec));
      }
      if (set & FUSE_SET_ATTR_CTIME) napi_set_named_property(env, a, "ctime", num(env, 1));
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = a;
      argv[argc++] = j->i2 ? num(env, (double)j->fh) : num(env, -1);
      break;
    }
    case OP_READLINK: case OP_STATFS:
      argv[argc++] = num(env, (double)j->ino);
      break;
    case OP_MKNOD:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = str_or_buf(env, j->name);
      argv[argc++] = num(env, j->i1);
      argv[argc++] = num(env, (double)j->n1);
      break;
    case OP_MKDIR:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = str_or_buf(env, j->name);
      argv[argc++] = num(env, j->i1);
      break;
    case OP_SYMLINK:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = str_or_buf(env, j->name);
      argv[argc++] = str_or_buf(env, j->name2);
      break;
    case OP_RENAME:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = str_or_buf(env, j->name);
      argv[argc++] = num(env, (double)j->ino2);
      argv[argc++] = str_or_buf(env, j->name2);
      argv[argc++] = num(env, j->i1);
      break;
    case OP_LINK:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = num(env, (double)j->ino2);
      argv[argc++] = str_or_buf(env, j->name);
      break;
    case OP_OPEN: case OP_OPENDIR:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = num(env, j->i1);
      break;
    case OP_READ: case OP_READDIR: case OP_READDIRPLUS:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = num(env, (double)j->fh);
      argv[argc++] = num(env, (double)j->n1);
      argv[argc++] = num(env, (double)j->s1);
      break;
    case OP_WRITE:
      napi_create_external_buffer(env, j->datalen, j->data, NULL, NULL, &write_buf);
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = num(env, (double)j->fh);
      argv[argc++] = write_buf;
      argv[argc++] = num(env, (double)j->s1);
      argv[argc++] = num(env, (double)(uintptr_t)j->done);
      argv[argc++] = num(env, j->i3);
      break;
    case OP_FLUSH: case OP_RELEASE: case OP_RELEASEDIR:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = num(env, (double)j->fh);
      argv[argc++] = num(env, j->i3);
      break;
    case OP_FSYNC: case OP_FSYNCDIR:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = num(env, (double)j->fh);
      argv[argc++] = num(env, j->i1);
      break;
    case OP_SETXATTR: {
      napi_value value;
      void *copy;
      napi_create_buffer_copy(env, j->datalen, j->data, &copy, &value);
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = str_or_buf(env, j->name);
      argv[argc++] = value;
      argv[argc++] = num(env, j->i1);
      break;
    }
    case OP_GETXATTR:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = str_or_buf(env, j->name);
      argv[argc++] = num(env, (double)j->n1);
      break;
    case OP_LISTXATTR:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = num(env, (double)j->n1);
      break;
    case OP_REMOVEXATTR:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = str_or_buf(env, j->name);
      break;
    case OP_ACCESS:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = num(env, j->i1);
      break;
    case OP_CREATE:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = str_or_buf(env, j->name);
      argv[argc++] = num(env, j->i1);
      argv[argc++] = num(env, j->i2);
      break;
    case OP_FALLOCATE:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = num(env, (double)j->fh);
      argv[argc++] = num(env, j->i1);
      argv[argc++] = num(env, (double)j->s1);
      argv[argc++] = num(env, (double)j->s2);
      break;
    case OP_LSEEK:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = num(env, (double)j->fh);
      argv[argc++] = num(env, (double)j->s1);
      argv[argc++] = num(env, j->i1);
      break;
    case OP_COPY_FILE_RANGE:
      argv[argc++] = num(env, (double)j->ino);
      argv[argc++] = num(env, (double)j->fh);
      argv[argc++] = num(env, (double)j->s1);
      argv[argc++] = num(env, (double)j->ino2);
      argv[argc++] = num(env, (double)j->fh2);
      argv[argc++] = num(env, (double)j->s2);
      argv[argc++] = num(env, (double)j->n1);
      argv[argc++] = num(env, j->i1);
      break;
  }

  napi_value undefined;
  napi_get_undefined(env, &undefined);
  napi_value result;
  napi_status status = napi_call_function(env, undefined, js_cb, argc, argv, &result);
  if (status != napi_ok) {
    /* The dispatcher threw (it should not: it catches). Clear the exception; the dispatcher
       has not replied, so answer EIO here to keep the mount alive. */
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    if (j->req != NULL) fuse_reply_err(j->req, EIO);
    if (j->done != NULL) sem_post(j->done);
  }
  free_job(j);
}

/* ---- session thread ----------------------------------------------------------------------- */

static void *loop_thread(void *arg) {
  session *s = arg;
  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(cfg, 0);
  fuse_loop_cfg_set_max_threads(cfg, s->threads);
  fuse_loop_cfg_set_idle_threads(cfg, s->threads);
  fuse_session_loop_mt(s->se, cfg);
  fuse_loop_cfg_destroy(cfg);
  fuse_session_unmount(s->se);
  dir_runs_drop_all(s);
  s->ended = 1;
  /* The session is destroyed on the JS thread when this job arrives (end_session): requests
     queued before it may still be answered by JS, and a reply needs the session. */
  job *j = new_job(OP_ENDED, NULL);
  j->fh = (uint64_t)(uintptr_t)s;
  napi_call_threadsafe_function(s->tsfn, j, napi_tsfn_blocking);
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  return NULL;
}

/* ---- exported functions ------------------------------------------------------------------- */

static fuse_req_t req_arg(napi_env env, napi_value v) {
  double d;
  napi_get_value_double(env, v, &d);
  return (fuse_req_t)(uintptr_t)d;
}

static double dbl(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

/* mount(mountpoint, options: string, dispatch, maxWrite, writeback, threads) -> session */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char mountpoint[4096], options[4096];
  size_t len;
  CHECK(napi_get_value_string_utf8(env, argv[0], mountpoint, sizeof(mountpoint), &len));
  CHECK(napi_get_value_string_utf8(env, argv[1], options, sizeof(options), &len));

  session *s = calloc(1, sizeof(session));
  s->max_write = (int)dbl(env, argv[3]);
  s->writeback = (int)dbl(env, argv[4]);
  s->threads = (int)dbl(env, argv[5]);
  if (s->threads < 1) s->threads = 4;

  napi_value name;
  napi_create_string_utf8(env, "razorfs_ll", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &s->tsfn) != napi_ok) {
    free(s);
    napi_throw_error(env, NULL, "razorfs_ll: cannot create the request queue");
    return NULL;
  }

  char *fuse_argv[4] = {"razorfs", "-o", options, NULL};
  struct fuse_args args = FUSE_ARGS_INIT(options[0] ? 3 : 1, fuse_argv);
  s->se = fuse_session_new(&args, &LL_OPS, sizeof(LL_OPS), s);
  if (s->se == NULL) {
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    free(s);
    napi_throw_error(env, NULL, "invalid mount options (fuse_session_new failed)");
    return NULL;
  }
  if (fuse_session_mount(s->se, mountpoint) != 0) {
    fuse_session_destroy(s->se);
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    free(s);
    napi_throw_error(env, NULL, "mount failed (is /dev/fuse available, and the mountpoint an empty, unmounted directory?)");
    return NULL;
  }
  s->mountpoint = strdup(mountpoint);
  /* The queue keeps the event loop alive while the session runs. */
  pthread_create(&s->thread, NULL, loop_thread, s);
  pthread_detach(s->thread);

  napi_value out;
  CHECK(napi_create_external(env, s, NULL, NULL, &out));
  return out;
}

/* unmount(session): detach the mount; the loop sees the end and reports OP_ENDED. */
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session *s;
  CHECK(napi_get_value_external(env, argv[0], (void **)&s));
  if (!s->ended && s->mountpoint != NULL) {
    /* A plain unmount ends the FUSE connection at once; if files are still open (EBUSY), detach
       lazily (the caller then aborts the connection after a grace period). */
    if (umount2(s->mountpoint, 0) != 0 && umount2(s->mountpoint, MNT_DETACH) != 0) {
      char cmd[4200];
      snprintf(cmd, sizeof(cmd), "fusermount3 -u -z -- '%s' >/dev/null 2>&1", s->mountpoint);
      if (system(cmd) != 0) {
        napi_throw_error(env, NULL, "unmount failed");
        return NULL;
      }
    }
  }
  return NULL;
}

static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fuse_reply_err(req_arg(env, argv[0]), (int)dbl(env, argv[1]));
  if (argc > 2) {
    double token = dbl(env, argv[2]);
    if (token != 0) sem_post((sem_t *)(uintptr_t)token);
  }
  return NULL;
}

/* attr: Float64Array [ino, mode, nlink, uid, gid, rdev, size, blocks, atimeSec, atimeNsec,
   mtimeSec, mtimeNsec, ctimeSec, ctimeNsec] */
/* The 14 numbers of an attr array into a struct stat. */
static void stat_from(const double *a, struct stat *st) {
  memset(st, 0, sizeof(*st));
  st->st_ino = (ino_t)a[0];
  st->st_mode = (mode_t)a[1];
  st->st_nlink = (nlink_t)a[2];
  st->st_uid = (uid_t)a[3];
  st->st_gid = (gid_t)a[4];
  st->st_rdev = (dev_t)a[5];
  st->st_size = (off_t)a[6];
  st->st_blocks = (blkcnt_t)a[7];
  st->st_blksize = 4096;
  st->st_atim.tv_sec = (time_t)a[8];
  st->st_atim.tv_nsec = (long)a[9];
  st->st_mtim.tv_sec = (time_t)a[10];
  st->st_mtim.tv_nsec = (long)a[11];
  st->st_ctim.tv_sec = (time_t)a[12];
  st->st_ctim.tv_nsec = (long)a[13];
}

static void fill_stat(napi_env env, napi_value arr, struct stat *st) {
  double *a;
  size_t n;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(env, arr, &type, &n, (void **)&a, &ab, &off);
  if (n < 14) {
    memset(st, 0, sizeof(*st));
    return;
  }
  stat_from(a, st);
}

/* replyEntry(req, attr, entryTimeout, attrTimeout) */
static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  fill_stat(env, argv[1], &e.attr);
  e.ino = e.attr.st_ino;
  e.generation = 0;
  e.entry_timeout = dbl(env, argv[2]);
  e.attr_timeout = dbl(env, argv[3]);
  fuse_reply_entry(req_arg(env, argv[0]), &e);
  return NULL;
}

/* replyCreate(req, attr, entryTimeout, attrTimeout, fh, openFlags) */
static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  fill_stat(env, argv[1], &e.attr);
  e.ino = e.attr.st_ino;
  e.entry_timeout = dbl(env, argv[2]);
  e.attr_timeout = dbl(env, argv[3]);
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof(fi));
  fi.fh = (uint64_t)dbl(env, argv[4]);
  int flags = (int)dbl(env, argv[5]);
  fi.keep_cache = (flags & 1) != 0;
  fi.direct_io = (flags & 2) != 0;
  fuse_reply_create(req_arg(env, argv[0]), &e, &fi);
  return NULL;
}

/* replyAttr(req, attr, attrTimeout) */
static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct stat st;
  fill_stat(env, argv[1], &st);
  fuse_reply_attr(req_arg(env, argv[0]), &st, dbl(env, argv[2]));
  return NULL;
}

/* replyOpen(req, fh, openFlags: 1 keep_cache, 2 direct_io, 4 cache_readdir) */
static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof(fi));
  fi.fh = (uint64_t)dbl(env, argv[1]);
  int flags = (int)dbl(env, argv[2]);
  fi.keep_cache = (flags & 1) != 0;
  fi.direct_io = (flags & 2) != 0;
  fi.cache_readdir = (flags & 4) != 0;
  fuse_reply_open(req_arg(env, argv[0]), &fi);
  return NULL;
}

/* replyBuf(req, buffer, length) */
static napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  size_t len = 0;
  napi_get_buffer_info(env, argv[1], &data, &len);
  if (argc > 2) {
    size_t want = (size_t)dbl(env, argv[2]);
    if (want < len) len = want;
  }
  fuse_reply_buf(req_arg(env, argv[0]), data, len);
  return NULL;
}

/* replyWrite(req, count, token, buffer): replies, detaches the buffer, releases the worker. */
static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fuse_reply_write(req_arg(env, argv[0]), (size_t)dbl(env, argv[1]));
  if (argc > 3) {
    napi_value ab;
    napi_typedarray_type type;
    size_t n, off;
    void *d;
    if (napi_get_typedarray_info(env, argv[3], &type, &n, &d, &ab, &off) == napi_ok) napi_detach_arraybuffer(env, ab);
  }
  double token = dbl(env, argv[2]);
  if (token != 0) sem_post((sem_t *)(uintptr_t)token);
  return NULL;
}

/* replyXattrSize(req, size) */
static napi_value js_reply_xattr(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fuse_reply_xattr(req_arg(env, argv[0]), (size_t)dbl(env, argv[1]));
  return NULL;
}

/* replyStatfs(req, [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax]) */
static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double *a;
  size_t n, off;
  napi_typedarray_type type;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &n, (void **)&a, &ab, &off));
  struct statvfs sv;
  memset(&sv, 0, sizeof(sv));
  if (n >= 11) {
    sv.f_bsize = (unsigned long)a[0];
    sv.f_frsize = (unsigned long)a[1];
    sv.f_blocks = (fsblkcnt_t)a[2];
    sv.f_bfree = (fsblkcnt_t)a[3];
    sv.f_bavail = (fsblkcnt_t)a[4];
    sv.f_files = (fsfilcnt_t)a[5];
    sv.f_ffree = (fsfilcnt_t)a[6];
    sv.f_favail = (fsfilcnt_t)a[7];
    sv.f_fsid = (unsigned long)a[8];
    sv.f_flag = (unsigned long)a[9];
    sv.f_namemax = (unsigned long)a[10];
  }
  fuse_reply_statfs(req_arg(env, argv[0]), &sv);
  return NULL;
}

/* replyLseek(req, off) */
static napi_value js_reply_lseek(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fuse_reply_lseek(req_arg(env, argv[0]), (off_t)dbl(env, argv[1]));
  return NULL;
}

/* replyReadlink(req, target: Buffer) */
static napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *data;
  size_t len;
  CHECK(napi_get_buffer_info(env, argv[1], (void **)&data, &len));
  char *s = malloc(len + 1);
  memcpy(s, data, len);
  s[len] = 0;
  fuse_reply_readlink(req_arg(env, argv[0]), s);
  free(s);
  return NULL;
}

/*
 * replyDirents(req, size, plus, names: Buffer, nameEnds: Uint32Array, attrs: Float64Array (14 per
 *              entry), offs: Float64Array, entryTimeout, attrTimeout[, fh, off]) -> entries taken
 * Entry i's name is names[nameEnds[i-1] .. nameEnds[i]) (all names in one buffer: one N-API call
 * for the lot, not one per entry). Packs entries until `size` is full; the caller continues from
 * the offset of the first one left out. With `fh` and `off` (the request's offset; plain readdir
 * only) every entry is packed: those past `size` are kept as the handle's run (see "Directory
 * listings" above) and count as taken.
 */
static napi_value js_reply_dirents(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fuse_req_t req = req_arg(env, argv[0]);
  size_t size = (size_t)dbl(env, argv[1]);
  bool plus;
  CHECK(napi_get_value_bool(env, argv[2], &plus));
  char *names;
  size_t names_len;
  CHECK(napi_get_buffer_info(env, argv[3], (void **)&names, &names_len));
  uint32_t *ends;
  double *attrs, *offs;
  size_t count, n, boff;
  napi_typedarray_type type;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[4], &type, &count, (void **)&ends, &ab, &boff));
  CHECK(napi_get_typedarray_info(env, argv[5], &type, &n, (void **)&attrs, &ab, &boff));
  CHECK(napi_get_typedarray_info(env, argv[6], &type, &n, (void **)&offs, &ab, &boff));
  if (n < count) count = n;
  double entry_timeout = dbl(env, argv[7]);
  double attr_timeout = dbl(env, argv[8]);
  bool keep = argc >= 11 && !plus && count > 0;
  dir_run *r = NULL;
  size_t cap = keep ? 64 * count : (size > 0 ? size : 1);
  char *buf = malloc(cap);
  size_t used = 0;
  uint32_t packed = 0;
  if (keep) {
    r = calloc(1, sizeof(dir_run));
    r->owner = fuse_req_userdata(req);
    r->fh = (uint64_t)dbl(env, argv[9]);
    r->start = (off_t)dbl(env, argv[10]);
    r->ends = malloc(count * sizeof(size_t));
    r->offs = malloc(count * sizeof(off_t));
  }
  char name[256];
  size_t name_start = 0;
  for (uint32_t i = 0; i < count; i++) {
    size_t name_end = ends[i] < names_len ? ends[i] : names_len;
    size_t nl = name_end > name_start ? name_end - name_start : 0;
    if (nl > 255) nl = 255;
    memcpy(name, names + name_start, nl);
    name[nl] = 0;
    name_start = name_end;
    size_t need;
    if (plus) {
      struct fuse_entry_param e;
      memset(&e, 0, sizeof(e));
      stat_from(attrs + 14 * i, &e.attr);
      /* '.' and '..' carry no lookup reference (ino 0 in the entry param). */
      e.ino = (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) ? 0 : e.attr.st_ino;
      e.entry_timeout = e.ino ? entry_timeout : 0;
      e.attr_timeout = e.ino ? attr_timeout : 0;
      need = fuse_add_direntry_plus(req, buf + used, cap - used, name, &e, (off_t)offs[i]);
    } else {
      struct stat st;
      memset(&st, 0, sizeof(st));
      st.st_ino = (ino_t)attrs[14 * i];
      st.st_mode = (mode_t)attrs[14 * i + 1];
      if (keep) {
        need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
        if (used + need > cap) {
          cap = 2 * (used + need);
          buf = realloc(buf, cap);
        }
      }
      need = fuse_add_direntry(req, buf + used, cap - used, name, &st, (off_t)offs[i]);
    }
    if (need > cap - used) break;
    used += need;
    if (keep) {
      r->ends[i] = used;
      r->offs[i] = (off_t)offs[i];
    }
    packed++;
  }
  if (keep) {
    r->buf = buf;
    r->count = packed;
    uint32_t sent = dir_run_fit(r, 0, size);
    if (sent < packed) dir_run_put_and_reply(req, r, sent);
    else {
      fuse_reply_buf(req, r->buf, sent == 0 ? 0 : r->ends[sent - 1]);
      dir_run_free(r);
    }
  } else {
    fuse_reply_buf(req, buf, used);
    free(buf);
  }
  napi_value out;
  napi_create_uint32(env, packed, &out);
  return out;
}

static napi_value init_module(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
    {"unmount", NULL, js_unmount, NULL, NULL, NULL, napi_default, NULL},
    {"replyErr", NULL, js_reply_err, NULL, NULL, NULL, napi_default, NULL},
    {"replyEntry", NULL, js_reply_entry, NULL, NULL, NULL, napi_default, NULL},
    {"replyCreate", NULL, js_reply_create, NULL, NULL, NULL, napi_default, NULL},
    {"replyAttr", NULL, js_reply_attr, NULL, NULL, NULL, napi_default, NULL},
    {"replyOpen", NULL, js_reply_open, NULL, NULL, NULL, napi_default, NULL},
    {"replyBuf", NULL, js_reply_buf, NULL, NULL, NULL, napi_default, NULL},
    {"replyWrite", NULL, js_reply_write, NULL, NULL, NULL, napi_default, NULL},
    {"replyXattr", NULL, js_reply_xattr, NULL, NULL, NULL, napi_default, NULL},
    {"replyStatfs", NULL, js_reply_statfs, NULL, NULL, NULL, napi_default, NULL},
    {"replyLseek", NULL, js_reply_lseek, NULL, NULL, NULL, napi_default, NULL},
    {"replyReadlink", NULL, js_reply_readlink, NULL, NULL, NULL, napi_default, NULL},
    {"replyDirents", NULL, js_reply_dirents, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)

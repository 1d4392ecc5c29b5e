/*
 * razorfs_ll: a libfuse 3 low-level binding for Node.js (N-API), written for razorfs. This header
 * is shared by its parts:
 *
 *   module.c    the exports: functions, the op table and the field table
 *   requests.c  libfuse's callbacks: each request copied into a job and queued
 *   queue.c     the session (mount, unmount, the session loop thread) and the hand-off to JS
 *   replies.c   the reply functions JS answers with
 *   dirents.c   directory listings: replyDirents and the dirent cache
 *   args.c      unpacking the arguments of a call from JS
 *   notify.c    invalidating the kernel's caches (notify_inval_inode/entry) from a thread of its own
 *   kernel.c    the session's read and writev: what libfuse does not pass on (KILLPRIV_V2)
 *
 * Threads. Two ways to run the session, chosen at mount:
 *   - on the JS thread (threads = 0, razorfs's default): /dev/fuse is non-blocking and watched by
 *     the event loop (a uv_poll handle). When it is readable, the JS thread reads the requests
 *     waiting there and processes each with libfuse; a callback's job goes to JS at once, in the
 *     same turn. No other thread is involved, so a request costs one wake-up of one thread.
 *   - on libfuse's multi-threaded session loop (threads >= 1 workers): each request is copied
 *     into a `job` and queued to the JS thread through one thread-safe function (non-blocking: a
 *     worker never waits for JS, except `write`, below).
 * JS answers with one of the reply functions, which call fuse_reply_* directly (libfuse allows
 * replies from any thread, after the request callback has returned).
 * Cache invalidations JS asks for are written to the kernel by a thread of each session's own
 * (notify.c), never by the JS thread, which may be the one a blocked notification waits for.
 *
 * The hand-off. On the JS thread a job's numbers are written into the session's field array (a
 * Float64Array JS gave at mount, read by JS as the request), at the places of `enum field`; its
 * names and bytes are passed as the call's arguments. The addon exports both tables (`ops` and
 * `fields`, name -> number), so the JS side can check that it reads what is written here.
 *
 * Buffers. Read data goes from the JS Buffer straight to fuse_reply_buf (libfuse writes it to the
 * kernel with writev: no copy here). Write data is not copied either: the worker that received
 * it waits until JS has replied, and the JS Buffer over libfuse's memory is detached at the reply.
 * On the JS thread, JS replies to a write before its dispatch returns (the adapter's write is
 * synchronous), and the Buffer is detached when it returns, before libfuse reads the next request
 * into that memory.
 *
 * Request handles are the fuse_req_t pointers passed to JS as numbers (user-space addresses fit
 * in 53 bits). Every request must get exactly one reply; the JS side guarantees it.
 */
#ifndef RAZORFS_LL_H
#define RAZORFS_LL_H

#define FUSE_USE_VERSION 312
#define NAPI_VERSION 8
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <uv.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

/* The operations JS receives, in number order from 0 (the `ops` export is made from this list). */
#define RAZORFS_OPS(X)                                                                              \
  X(INIT) X(LOOKUP) X(GETATTR) X(SETATTR) X(READLINK) X(MKNOD) X(MKDIR) X(UNLINK) X(RMDIR)         \
  X(SYMLINK) X(RENAME) X(LINK) X(OPEN) X(READ) X(WRITE) X(FLUSH) X(RELEASE) X(FSYNC) X(OPENDIR)    \
  X(READDIR) X(READDIRPLUS) X(RELEASEDIR) X(FSYNCDIR) X(STATFS) X(SETXATTR) X(GETXATTR)            \
  X(LISTXATTR) X(REMOVEXATTR) X(ACCESS) X(CREATE) X(FALLOCATE) X(LSEEK) X(COPY_FILE_RANGE) X(ENDED)

#define RAZORFS_OP_ENUM(name) OP_##name,
enum op { RAZORFS_OPS(RAZORFS_OP_ENUM) OP_COUNT };
#undef RAZORFS_OP_ENUM

/*
 * The numbers of a request in the field array, in order from 0 (the `fields` export). Which ones
 * an operation sets is said where its job is made (requests.c); FH is -1 where the request came
 * without an open file.
 */
#define RAZORFS_FIELDS(X)                                                                           \
  X(OP) X(REQ) X(UID) X(GID) X(PID) X(UMASK) X(INO) X(INO2) X(FH) X(FH2) X(SIZE) X(OFF) X(OFF2)    \
  X(MODE) X(FLAGS) X(ARG) X(TOKEN)

#define RAZORFS_FIELD_ENUM(name) F_##name,
enum field { RAZORFS_FIELDS(RAZORFS_FIELD_ENUM) F_COUNT };
#undef RAZORFS_FIELD_ENUM

/* The session's modes (the `modes` argument of mount; MOUNT_MODE in binding.ts):
   MODE_WRITEBACK   the kernel's writeback cache;
   MODE_KEEP_PAGES  the kernel keeps a file's cached pages when a reply shows it with another mtime
                    or size (no FUSE_CAP_AUTO_INVAL_DATA): every change went through this mount,
                    so its pages are not stale.
   MODE_KILLPRIV    the server clears set-user-ID and set-group-ID where the kernel says
                    (FUSE_HANDLE_KILLPRIV_V2, kernel.c): no other host changes the volume. */
#define MODE_WRITEBACK 1
#define MODE_KEEP_PAGES 2
#define MODE_KILLPRIV 4
/* MODE_PASSTHROUGH  the session offers kernel FUSE passthrough (kernel.c): open replies may name a
                     backing file, whose reads and writes the kernel then does itself. */
#define MODE_PASSTHROUGH 8

/* The notices JS queued for the kernel (notify.c) and the thread that writes them. Counters are
   doubles: they go to JS as they are. */
typedef struct notifier {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  struct notice *head, *tail;
  bool started, stop;
  pthread_t thread;
  double queued, pending, sent, absent, failed;
} notifier;

typedef struct session {
  struct fuse_session *se;
  napi_threadsafe_function tsfn;
  pthread_t thread;
  char *mountpoint;
  /* The field array: held by `fields_ref` from mount to the session's end. */
  napi_ref fields_ref;
  double *fields;
  int max_write;
  /* -o max_read=N (0: none): libfuse wants it in the init reply too, or it ends the session. */
  unsigned max_read;
  /* MODE_* bits, from mount */
  int modes;
  int threads;
  int ended;
  /* On the JS thread (threads = 0): the poll handle on /dev/fuse, the buffer libfuse reads each
     request into, what JS is called with, and `dispatch` while a batch is being processed. */
  bool on_js_thread;
  uv_poll_t poll;
  struct fuse_buf buf;
  napi_env env;
  napi_ref dispatch_ref, resource_ref;
  napi_async_context async_context;
  napi_value dispatch;
  notifier notifier;
  /* Inodes known to have no security.capability (caps.c); NULL: none known, every getxattr goes to JS. */
  uint64_t *nocaps;
  /* kernel.c: the INIT request's unique until its reply, and the flags the kernel offered. */
  uint64_t init_unique;
  uint32_t kernel_flags, kernel_flags2;
} session;

/* One request on its way to JS. */
typedef struct job {
  int op;
  fuse_req_t req;
  uid_t uid;
  gid_t gid;
  pid_t pid;
  mode_t umask;
  uint64_t ino, ino2;
  uint64_t fh, fh2;
  bool has_fh;
  uint64_t size;
  int64_t off, off2;
  uint32_t mode;
  int flags;
  int64_t arg;
  char *name, *name2;
  char *data;
  size_t datalen;
  /* setattr: the new attributes (those of `arg`, the to_set mask), and whether the kernel asks
     to clear set-user-ID and set-group-ID (FATTR_KILL_SUIDGID, kernel.c) */
  struct stat st;
  bool kill;
  /* write: the worker waits on this until JS has replied */
  sem_t *done;
} job;

/* requests.c */
extern const struct fuse_lowlevel_ops razorfs_ll_ops;

/* queue.c */
job *job_new(int op, fuse_req_t req);
void job_free(job *j);
void job_enqueue(session *s, job *j);
napi_value js_mount(napi_env env, napi_callback_info info);
napi_value js_unmount(napi_env env, napi_callback_info info);

/* replies.c */
napi_value js_reply_err(napi_env env, napi_callback_info info);
napi_value js_reply_entry(napi_env env, napi_callback_info info);
napi_value js_reply_create(napi_env env, napi_callback_info info);
napi_value js_reply_attr(napi_env env, napi_callback_info info);
napi_value js_reply_open(napi_env env, napi_callback_info info);
napi_value js_reply_buf(napi_env env, napi_callback_info info);
napi_value js_reply_write(napi_env env, napi_callback_info info);
napi_value js_reply_xattr(napi_env env, napi_callback_info info);
napi_value js_reply_statfs(napi_env env, napi_callback_info info);
napi_value js_reply_lseek(napi_env env, napi_callback_info info);
napi_value js_reply_readlink(napi_env env, napi_callback_info info);

/* dirents.c */
napi_value js_reply_dirents(napi_env env, napi_callback_info info);
bool dir_run_serve(fuse_req_t req, uint64_t fh, size_t size, off_t off);
void dir_run_drop(const void *owner, uint64_t fh);
void dir_runs_drop_all(const void *owner);

/* notify.c */
void notify_init(session *s);
void notify_stop(session *s);
napi_value js_notify_inval_inode(napi_env env, napi_callback_info info);
napi_value js_notify_inval_entry(napi_env env, napi_callback_info info);
napi_value js_notify_counts(napi_env env, napi_callback_info info);
bool notify_backing_close(session *s, const uint32_t *ids, size_t count);
session *session_arg(napi_env env, napi_value external);

/* caps.c */
void caps_none(session *s, uint64_t ino);
bool caps_known_none(session *s, uint64_t ino);
void caps_unknown(session *s, uint64_t ino);
void caps_drop_all(session *s);

/* kernel.c */
int kernel_io_install(session *s);
bool request_kills_suidgid(void);
void reply_with_backing(int32_t id);
int kernel_backing_close(session *s, uint32_t id);
napi_value js_backing_open(napi_env env, napi_callback_info info);
napi_value js_backing_close(napi_env env, napi_callback_info info);

/* host.c */
napi_value js_syncfs(napi_env env, napi_callback_info info);
napi_value js_syncfs_ahead(napi_env env, napi_callback_info info);
napi_value js_open_batch(napi_env env, napi_callback_info info);
napi_value js_close_batch(napi_env env, napi_callback_info info);
napi_value js_thread_faults(napi_env env, napi_callback_info info);
napi_value js_drop_cache(napi_env env, napi_callback_info info);
napi_value js_fstat_times(napi_env env, napi_callback_info info);
napi_value js_resident(napi_env env, napi_callback_info info);

/* args.c */
#define ARGS_MAX 12
bool unpack(napi_env env, napi_callback_info info, const char *spec, ...);
void stat_from(const double *a, struct stat *st);

#endif

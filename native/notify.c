/*
 * Invalidating the kernel's caches from the server's side: fuse_lowlevel_notify_inval_inode and
 * fuse_lowlevel_notify_inval_entry, for changes the kernel did not see go by (another host's, on
 * a shared volume).
 *
 * Why a thread. A notification is a write to /dev/fuse that the kernel serves at once, and it may
 * block there: inval_entry takes the directory's lock, which a lookup in that directory holds
 * until its reply; inval_inode with a range waits for the locked pages of a read in progress.
 * With the session on the JS thread, the JS thread is the one that must send those replies, so a
 * notification written from it could wait for itself for good (libfuse's documented deadlock:
 * never notify in the execution path of a related request). So JS only queues a notice here and
 * returns; one thread per session (started at the first notice) writes them in order. Nothing on
 * the JS thread ever waits for it, except at the session's end (notify_stop), when the kernel has
 * ended the connection and no write can block any more.
 */
#include "razorfs_ll.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What a notice asks for: an inode's or a name's invalidation, or (not a notice to the kernel's
   caches, and not counted as one) giving a passthrough backing id back (kernel.c): that ioctl cost
   the JS thread 40-50 µs at the last close of each file. */
enum notice_kind { NOTICE_INODE, NOTICE_ENTRY, NOTICE_BACKING };

typedef struct notice {
  struct notice *next;
  enum notice_kind kind;
  /* inode: the inode; entry: the directory; backing: how many backing ids `name` holds (u32s) */
  uint64_t ino;
  /* inode: the range of the page cache to drop (off < 0: the attributes only; len 0: to the end) */
  int64_t off, len;
  size_t namelen;
  char name[];
} notice;

static void *notify_thread(void *arg) {
  session *s = arg;
  notifier *n = &s->notifier;
  pthread_mutex_lock(&n->lock);
  for (;;) {
    while (n->head == NULL && !n->stop) pthread_cond_wait(&n->wake, &n->lock);
    if (n->stop) break;
    notice *x = n->head;
    n->head = x->next;
    if (n->head == NULL) n->tail = NULL;
    pthread_mutex_unlock(&n->lock);
    if (x->kind == NOTICE_BACKING) {
      const uint32_t *ids = (const uint32_t *)x->name;
      for (uint64_t i = 0; i < x->ino; i++) kernel_backing_close(s, ids[i]);
      free(x);
      pthread_mutex_lock(&n->lock);
      continue;
    }
    int r = x->kind == NOTICE_ENTRY ? fuse_lowlevel_notify_inval_entry(s->se, x->ino, x->name, x->namelen)
                                    : fuse_lowlevel_notify_inval_inode(s->se, x->ino, x->off, x->len);
    free(x);
    pthread_mutex_lock(&n->lock);
    n->pending--;
    /* ENOENT: the kernel holds no such inode, directory or name: nothing cached, nothing to drop. */
    if (r == 0) n->sent++;
    else if (r == -ENOENT) n->absent++;
    else n->failed++;
  }
  /* Stopped: what is still queued is of no use to a session that has ended. */
  while (n->head != NULL) {
    notice *x = n->head;
    n->head = x->next;
    free(x);
  }
  n->tail = NULL;
  n->pending = 0;
  pthread_mutex_unlock(&n->lock);
  return NULL;
}

void notify_init(session *s) {
  pthread_mutex_init(&s->notifier.lock, NULL);
  pthread_cond_init(&s->notifier.wake, NULL);
}

/* Stop the thread and wait for it (the write in progress, if any). Before the session is
   unmounted: libfuse closes the device then, and a later write could reach another file. */
void notify_stop(session *s) {
  notifier *n = &s->notifier;
  pthread_mutex_lock(&n->lock);
  bool started = n->started;
  n->stop = true;
  pthread_cond_signal(&n->wake);
  pthread_mutex_unlock(&n->lock);
  if (started) pthread_join(n->thread, NULL);
}

/* Queue a notice (taken over); false when the session has ended (it is freed). */
static bool enqueue(session *s, notice *x) {
  notifier *n = &s->notifier;
  pthread_mutex_lock(&n->lock);
  bool ok = !n->stop;
  if (ok && !n->started) ok = n->started = pthread_create(&n->thread, NULL, notify_thread, s) == 0;
  if (ok) {
    x->next = NULL;
    if (n->tail != NULL) n->tail->next = x;
    else n->head = x;
    n->tail = x;
    if (x->kind != NOTICE_BACKING) {
      n->pending++;
      n->queued++;
    }
    pthread_cond_signal(&n->wake);
  }
  pthread_mutex_unlock(&n->lock);
  if (!ok) free(x);
  return ok;
}

session *session_arg(napi_env env, napi_value external) {
  session *s;
  if (napi_get_value_external(env, external, (void **)&s) != napi_ok) {
    napi_throw_type_error(env, NULL, "razorfs_ll: argument 1 must be a session");
    return NULL;
  }
  return s;
}

static napi_value boolean(napi_env env, bool b) {
  napi_value out;
  napi_get_boolean(env, b, &out);
  return out;
}

/* notifyInvalInode(session, ino, off, len) -> queued: drop the inode's attributes, and with
   off >= 0 its cached pages from off (len bytes, 0: to the end). */
napi_value js_notify_inval_inode(napi_env env, napi_callback_info info) {
  napi_value external;
  double ino, off, len;
  if (!unpack(env, info, "vddd", &external, &ino, &off, &len)) return NULL;
  session *s = session_arg(env, external);
  if (s == NULL) return NULL;
  notice *x = calloc(1, sizeof(notice));
  x->ino = (uint64_t)ino;
  x->off = (int64_t)off;
  x->len = (int64_t)len;
  return boolean(env, enqueue(s, x));
}

/* notifyInvalEntry(session, parent, name: Buffer) -> queued: drop the name's cached lookup (and
   the directory's attributes, if the kernel had the name). */
napi_value js_notify_inval_entry(napi_env env, napi_callback_info info) {
  napi_value external;
  double parent;
  void *name;
  size_t len;
  if (!unpack(env, info, "vdB", &external, &parent, &name, &len)) return NULL;
  session *s = session_arg(env, external);
  if (s == NULL) return NULL;
  if (len == 0 || len > 255 || memchr(name, '/', len) != NULL || memchr(name, 0, len) != NULL) {
    napi_throw_range_error(env, NULL, "razorfs_ll: a name of 1 to 255 bytes without '/' or NUL");
    return NULL;
  }
  notice *x = calloc(1, sizeof(notice) + len + 1);
  x->kind = NOTICE_ENTRY;
  x->ino = (uint64_t)parent;
  memcpy(x->name, name, len);
  x->namelen = len;
  return boolean(env, enqueue(s, x));
}

/* Give `count` passthrough backing ids back, from the notice thread (one wake for them all); false
   once the session has ended (the kernel dropped every id with the connection). */
bool notify_backing_close(session *s, const uint32_t *ids, size_t count) {
  notice *x = calloc(1, sizeof(notice) + count * sizeof(uint32_t));
  x->kind = NOTICE_BACKING;
  x->ino = count;
  memcpy(x->name, ids, count * sizeof(uint32_t));
  return enqueue(s, x);
}

/* notifyCounts(session) -> [queued, pending, sent, absent, failed]: notices since the mount. */
napi_value js_notify_counts(napi_env env, napi_callback_info info) {
  napi_value external;
  if (!unpack(env, info, "v", &external)) return NULL;
  session *s = session_arg(env, external);
  if (s == NULL) return NULL;
  notifier *n = &s->notifier;
  pthread_mutex_lock(&n->lock);
  double v[5] = {n->queued, n->pending, n->sent, n->absent, n->failed};
  pthread_mutex_unlock(&n->lock);
  napi_value out;
  napi_create_array_with_length(env, 5, &out);
  for (uint32_t i = 0; i < 5; i++) {
    napi_value e;
    napi_create_double(env, v[i], &e);
    napi_set_element(env, out, i, e);
  }
  return out;
}

/*
 * The session and the request queue: mount and unmount, the session loop (on the JS thread, or
 * libfuse's on worker threads), the jobs the callbacks (requests.c) queue, and their hand-off to
 * JS on the JS thread (call_js).
 */
#include "razorfs_ll.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

job *job_new(int op, fuse_req_t req) {
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

void job_free(job *j) {
  free(j->name);
  free(j->name2);
  if (j->op != OP_WRITE) free(j->data);
  free(j);
}

/* Answer a job JS will not see with EIO (and release its worker), so the kernel is not left waiting. */
static void job_fail(job *j) {
  if (j->req != NULL) fuse_reply_err(j->req, EIO);
  if (j->done != NULL) sem_post(j->done);
  job_free(j);
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data);

void job_enqueue(session *s, job *j) {
  if (s->on_js_thread) {
    /* Called from fuse_session_process_buf in on_readable: straight to JS. */
    if (s->dispatch == NULL) job_fail(j);
    else call_js(s->env, s->dispatch, s, j);
    return;
  }
  /* The JS side is gone (shutting down) when the call fails. */
  if (napi_call_threadsafe_function(s->tsfn, j, napi_tsfn_nonblocking) != napi_ok) job_fail(j);
}

/* ---- the hand-off to JS ------------------------------------------------------------------- */

static napi_value num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

/* Names are bytes: they go to JS as Buffers (any byte but '/' and NUL). */
static napi_value bytes(napi_env env, const char *data, size_t len) {
  napi_value out;
  void *copy;
  napi_create_buffer_copy(env, len, len == 0 ? "" : data, &copy, &out);
  return out;
}

static void set(napi_env env, napi_value obj, const char *key, double v) {
  napi_set_named_property(env, obj, key, num(env, v));
}

/* A setattr's fields to change, as an object with only those (SetattrFields in binding.ts). */
static napi_value setattr_fields(napi_env env, const job *j) {
  napi_value a;
  napi_create_object(env, &a);
  int64_t to_set = j->arg;
  const struct stat *st = &j->st;
  if (to_set & FUSE_SET_ATTR_MODE) set(env, a, "mode", st->st_mode);
  if (to_set & FUSE_SET_ATTR_UID) set(env, a, "uid", st->st_uid);
  if (to_set & FUSE_SET_ATTR_GID) set(env, a, "gid", st->st_gid);
  if (to_set & FUSE_SET_ATTR_SIZE) set(env, a, "size", (double)st->st_size);
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) set(env, a, "atimeNow", 1);
  else if (to_set & FUSE_SET_ATTR_ATIME) {
    set(env, a, "atimeSec", (double)st->st_atim.tv_sec);
    set(env, a, "atimeNsec", (double)st->st_atim.tv_nsec);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) set(env, a, "mtimeNow", 1);
  else if (to_set & FUSE_SET_ATTR_MTIME) {
    set(env, a, "mtimeSec", (double)st->st_mtim.tv_sec);
    set(env, a, "mtimeNsec", (double)st->st_mtim.tv_nsec);
  }
  if (to_set & FUSE_SET_ATTR_CTIME) set(env, a, "ctime", 1);
  if (j->kill) set(env, a, "killSuidgid", 1);
  return a;
}

/* A job's numbers into the field array JS reads the request from. */
static void write_fields(double *f, const job *j) {
  f[F_OP] = j->op;
  f[F_REQ] = (double)(uintptr_t)j->req;
  f[F_UID] = j->uid;
  f[F_GID] = j->gid;
  f[F_PID] = j->pid;
  f[F_UMASK] = j->umask;
  f[F_INO] = (double)j->ino;
  f[F_INO2] = (double)j->ino2;
  f[F_FH] = j->has_fh ? (double)j->fh : -1;
  f[F_FH2] = (double)j->fh2;
  f[F_SIZE] = (double)j->size;
  f[F_OFF] = (double)j->off;
  f[F_OFF2] = (double)j->off2;
  f[F_MODE] = j->mode;
  f[F_FLAGS] = j->flags;
  f[F_ARG] = (double)j->arg;
  f[F_TOKEN] = (double)(uintptr_t)j->done;
}

/* Destroy an ended session's libfuse session. Runs on the JS thread with OP_ENDED, which the queue
   delivers after every request queued before it: JS answers requests as it receives them, so
   none is left. */
static void end_session(session *s) {
  caps_drop_all(s);
  if (s->se != NULL) {
    fuse_session_destroy(s->se);
    s->se = NULL;
  }
}

/* Runs on the JS thread for each job: the request to JS as dispatch(first, second), its numbers in
   the field array. */
static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  session *s = context;
  job *j = data;
  if (j->op == OP_ENDED) end_session(s);
  if (env == NULL || s->fields == NULL) {
    job_fail(j);
    return;
  }

  write_fields(s->fields, j);
  napi_value undefined, argv[2];
  napi_get_undefined(env, &undefined);
  argv[0] = argv[1] = undefined;
  if (j->name != NULL) argv[0] = bytes(env, j->name, strlen(j->name));
  if (j->name2 != NULL) argv[1] = bytes(env, j->name2, strlen(j->name2));
  if (j->op == OP_WRITE) napi_create_external_buffer(env, j->datalen, j->data, NULL, NULL, &argv[0]);
  else if (j->op == OP_SETXATTR) argv[1] = bytes(env, j->data, j->datalen);
  else if (j->op == OP_SETATTR) argv[0] = setattr_fields(env, j);

  napi_value result;
  if (napi_call_function(env, undefined, js_cb, 2, argv, &result) != napi_ok) {
    /* The dispatcher threw (it should not: it catches). Clear the exception; the dispatcher
       has not replied, so answer EIO here to keep the mount alive. */
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    if (j->req != NULL) fuse_reply_err(j->req, EIO);
    if (j->done != NULL) sem_post(j->done);
  }
  if (j->op == OP_WRITE && s->on_js_thread) {
    /* The data is libfuse's buffer, which the next request overwrites: JS keeps no view of it. */
    napi_value ab;
    napi_typedarray_type type;
    size_t n, off;
    void *d;
    if (napi_get_typedarray_info(env, argv[0], &type, &n, &d, &ab, &off) == napi_ok) napi_detach_arraybuffer(env, ab);
  }
  if (j->op == OP_ENDED && s->fields_ref != NULL) {
    napi_delete_reference(env, s->fields_ref);
    s->fields_ref = NULL;
    s->fields = NULL;
  }
  job_free(j);
}

/* ---- the session -------------------------------------------------------------------------- */

static void *loop_thread(void *arg) {
  session *s = arg;
  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(cfg, 0);
  fuse_loop_cfg_set_max_threads(cfg, s->threads);
  fuse_loop_cfg_set_idle_threads(cfg, s->threads);
  fuse_session_loop_mt(s->se, cfg);
  fuse_loop_cfg_destroy(cfg);
  notify_stop(s);
  fuse_session_unmount(s->se);
  dir_runs_drop_all(s);
  s->ended = 1;
  /* The session is destroyed on the JS thread when this job arrives (end_session): requests
     queued before it may still be answered by JS, and a reply needs the session. */
  napi_call_threadsafe_function(s->tsfn, job_new(OP_ENDED, NULL), napi_tsfn_blocking);
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  return NULL;
}

/* ---- the session on the JS thread ---------------------------------------------------------- */

/* Requests read in one turn of the event loop, at most (timers and I/O get their turn between). */
#define JS_THREAD_BATCH 64

/* The session is over (unmounted, or the connection aborted): what loop_thread does after the
   loop, then OP_ENDED to JS (which destroys the session, end_session). Inside on_readable's scope. */
static void end_on_js_thread(session *s) {
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, NULL);
  notify_stop(s);
  fuse_session_unmount(s->se);
  dir_runs_drop_all(s);
  s->ended = 1;
  call_js(s->env, s->dispatch, s, job_new(OP_ENDED, NULL));
  free(s->buf.mem);
  s->buf.mem = NULL;
}

/* /dev/fuse is readable: read and process the requests waiting there, each one's job going to JS
   as libfuse calls back (job_enqueue), all in one callback scope (promises settle after it). */
static void on_readable(uv_poll_t *handle, int status, int events) {
  session *s = handle->data;
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value resource;
  napi_get_reference_value(env, s->resource_ref, &resource);
  napi_get_reference_value(env, s->dispatch_ref, &s->dispatch);
  napi_callback_scope callback_scope;
  napi_open_callback_scope(env, resource, s->async_context, &callback_scope);

  bool over = status < 0;
  for (int n = 0; !over && n < JS_THREAD_BATCH; n++) {
    int got = fuse_session_receive_buf(s->se, &s->buf);
    if (got == -EAGAIN) break;
    if (got == -EINTR) continue;
    /* 0: the session exited (ENODEV: unmounted or aborted); below 0: the device failed. */
    if (got <= 0) over = true;
    else fuse_session_process_buf(s->se, &s->buf);
    if (fuse_session_exited(s->se)) over = true;
  }
  if (over) end_on_js_thread(s);
  s->dispatch = NULL;

  napi_close_callback_scope(env, callback_scope);
  napi_close_handle_scope(env, scope);
  if (over) {
    napi_delete_reference(env, s->dispatch_ref);
    napi_delete_reference(env, s->resource_ref);
    napi_async_destroy(env, s->async_context);
    s->dispatch_ref = s->resource_ref = NULL;
    s->async_context = NULL;
  }
}

/* Serve the mounted session from the JS thread (the poll handle keeps the event loop alive). */
static const char *start_on_js_thread(napi_env env, session *s, napi_value dispatch) {
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return "razorfs_ll: no event loop";
  int fd = fuse_session_fd(s->se);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return "razorfs_ll: cannot make /dev/fuse non-blocking";
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "razorfs_ll", NAPI_AUTO_LENGTH, &name);
  if (napi_async_init(env, resource, name, &s->async_context) != napi_ok) return "razorfs_ll: cannot make an async context";
  napi_create_reference(env, dispatch, 1, &s->dispatch_ref);
  napi_create_reference(env, resource, 1, &s->resource_ref);
  s->env = env;
  if (uv_poll_init(loop, &s->poll, fd) != 0) return "razorfs_ll: cannot watch /dev/fuse";
  s->poll.data = s;
  if (uv_poll_start(&s->poll, UV_READABLE, on_readable) != 0) {
    uv_close((uv_handle_t *)&s->poll, NULL);
    return "razorfs_ll: cannot watch /dev/fuse";
  }
  return NULL;
}

/* Undo a mount that failed half-way and throw `message`. */
static napi_value mount_failed(napi_env env, session *s, const char *message) {
  if (s->se != NULL) fuse_session_destroy(s->se);
  if (s->tsfn != NULL) napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
  if (s->fields_ref != NULL) napi_delete_reference(env, s->fields_ref);
  if (s->dispatch_ref != NULL) napi_delete_reference(env, s->dispatch_ref);
  if (s->resource_ref != NULL) napi_delete_reference(env, s->resource_ref);
  if (s->async_context != NULL) napi_async_destroy(env, s->async_context);
  free(s->mountpoint);
  /* A poll handle that was started is closed by the loop later, in this memory: it stays. */
  if (s->poll.data == NULL) free(s);
  napi_throw_error(env, NULL, message);
  return NULL;
}

/* mount(mountpoint, options: string, dispatch, fields: Float64Array, maxWrite, modes, threads[, maxRead]) -> session
   modes: MODE_* bits (razorfs_ll.h). threads: 0 serves the session on the JS thread, N >= 1 on
   libfuse's loop with N workers. */
napi_value js_mount(napi_env env, napi_callback_info info) {
  char mountpoint[4096], options[4096];
  napi_value dispatch, fields;
  double max_write, modes, threads, max_read = 0;
  if (!unpack(env, info, "ssvvddd|d", mountpoint, sizeof(mountpoint), options, sizeof(options), &dispatch, &fields, &max_write,
              &modes, &threads, &max_read)) {
    return NULL;
  }

  session *s = calloc(1, sizeof(session));
  s->max_write = (int)max_write;
  s->modes = (int)modes;
  s->max_read = max_read > 0 ? (unsigned)max_read : 0;
  s->threads = threads < 0 ? 0 : (int)threads;
  s->on_js_thread = s->threads == 0;
  notify_init(s);

  napi_typedarray_type type;
  size_t count, offset;
  napi_value buffer;
  if (napi_get_typedarray_info(env, fields, &type, &count, (void **)&s->fields, &buffer, &offset) != napi_ok ||
      type != napi_float64_array || count < F_COUNT) {
    return mount_failed(env, s, "razorfs_ll: the field array must be a Float64Array of the `fields` table's size");
  }
  napi_create_reference(env, fields, 1, &s->fields_ref);

  napi_value name;
  napi_create_string_utf8(env, "razorfs_ll", NAPI_AUTO_LENGTH, &name);
  if (!s->on_js_thread && napi_create_threadsafe_function(env, dispatch, NULL, name, 0, 1, NULL, NULL, s, call_js, &s->tsfn) != napi_ok) {
    s->tsfn = NULL;
    return mount_failed(env, s, "razorfs_ll: cannot create the request queue");
  }

  char *fuse_argv[4] = {"razorfs", "-o", options, NULL};
  struct fuse_args args = FUSE_ARGS_INIT(options[0] ? 3 : 1, fuse_argv);
  s->se = fuse_session_new(&args, &razorfs_ll_ops, sizeof(razorfs_ll_ops), s);
  if (s->se == NULL) return mount_failed(env, s, "invalid mount options (fuse_session_new failed)");
  if (fuse_session_mount(s->se, mountpoint) != 0) {
    return mount_failed(env, s, "mount failed (is /dev/fuse available, and the mountpoint an empty, unmounted directory?)");
  }
  s->mountpoint = strdup(mountpoint);
  if (kernel_io_install(s) != 0) {
    fuse_session_unmount(s->se);
    return mount_failed(env, s, "razorfs_ll: cannot install the session's read and writev");
  }
  if (s->on_js_thread) {
    const char *failed = start_on_js_thread(env, s, dispatch);
    if (failed != NULL) {
      fuse_session_unmount(s->se);
      return mount_failed(env, s, failed);
    }
  } else {
    /* The queue keeps the event loop alive while the session runs. */
    pthread_create(&s->thread, NULL, loop_thread, s);
    pthread_detach(s->thread);
  }

  napi_value out;
  napi_create_external(env, s, NULL, NULL, &out);
  return out;
}

/* unmount(session): detach the mount; the loop sees the end and reports OP_ENDED. */
napi_value js_unmount(napi_env env, napi_callback_info info) {
  napi_value external;
  session *s;
  if (!unpack(env, info, "v", &external)) return NULL;
  if (napi_get_value_external(env, external, (void **)&s) != napi_ok) {
    napi_throw_type_error(env, NULL, "razorfs_ll: argument 1 must be a session");
    return NULL;
  }
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

/*
 * Host system calls Node does not offer, for the storage layer and the server (not for FUSE):
 * syncfs(2), which makes every file of the data dir's host filesystem durable in one call, on the
 * calling thread or in the libuv pool (syncfsAhead);
 * posix_fadvise(POSIX_FADV_DONTNEED), which lets go of a file's cached pages; and the page faults
 * of the calling thread (getrusage RUSAGE_THREAD), where process.resourceUsage() sums every
 * thread's CPU time too (17 us a call in a serving razorfs).
 */
#include "razorfs_ll.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* syncfs(fd): returns undefined, or throws an Error whose code is the errno's name ("EIO"). */
napi_value js_syncfs(napi_env env, napi_callback_info info) {
  double fd;
  if (!unpack(env, info, "d", &fd)) return NULL;
  if (syncfs((int)fd) != 0) {
    int err = errno;
    const char *name = strerrorname_np(err);
    napi_throw_error(env, name != NULL ? name : "EIO", strerror(err));
  }
  return NULL;
}

/* syncfsAhead(fd) -> Promise: syncfs(fd) in the libuv pool; rejects with an Error whose code is
   the errno's name. The fd must stay open until the promise settles. */
typedef struct syncfs_job {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int err;
} syncfs_job;

static void syncfs_execute(napi_env env, void *data) {
  (void)env;
  syncfs_job *job = data;
  job->err = syncfs(job->fd) == 0 ? 0 : errno;
}

/* Settle the job's promise: resolved, or rejected with an Error whose code is errno `err`'s name. */
static void syncfs_settle(napi_env env, syncfs_job *job, int err) {
  if (err == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
    return;
  }
  const char *name = strerrorname_np(err);
  napi_value code, msg, error;
  napi_create_string_utf8(env, name != NULL ? name : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_reject_deferred(env, job->deferred, error);
}

static void syncfs_complete(napi_env env, napi_status status, void *data) {
  syncfs_job *job = data;
  syncfs_settle(env, job, status == napi_ok ? job->err : ECANCELED);
  napi_delete_async_work(env, job->work);
  free(job);
}

napi_value js_syncfs_ahead(napi_env env, napi_callback_info info) {
  double fd;
  if (!unpack(env, info, "d", &fd)) return NULL;
  syncfs_job *job = calloc(1, sizeof(*job));
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "syncfsAhead: out of memory");
    return NULL;
  }
  job->fd = (int)fd;
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "razorfs.syncfsAhead", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, syncfs_execute, syncfs_complete, job, &job->work) != napi_ok) {
    syncfs_settle(env, job, EAGAIN);
    free(job);
  } else if (napi_queue_async_work(env, job->work) != napi_ok) {
    syncfs_settle(env, job, EAGAIN);
    napi_delete_async_work(env, job->work);
    free(job);
  }
  return promise;
}

/* dropCache(fd): the host's clean cached pages of the file are let go (dirty ones stay). */
napi_value js_drop_cache(napi_env env, napi_callback_info info) {
  double fd;
  if (!unpack(env, info, "d", &fd)) return NULL;
  int err = posix_fadvise((int)fd, 0, 0, POSIX_FADV_DONTNEED);
  if (err != 0) {
    const char *name = strerrorname_np(err);
    napi_throw_error(env, name != NULL ? name : "EIO", strerror(err));
  }
  return NULL;
}

/* threadFaults() -> page faults (minor and major) of the calling thread so far. */
napi_value js_thread_faults(napi_env env, napi_callback_info info) {
  (void)info;
  struct rusage ru;
  napi_value out;
  double faults = getrusage(RUSAGE_THREAD, &ru) == 0 ? (double)ru.ru_minflt + (double)ru.ru_majflt : 0;
  napi_create_double(env, faults, &out);
  return out;
}

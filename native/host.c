/*
 * Host system calls Node does not offer, for the storage layer and the server (not for FUSE):
 * syncfs(2), which makes every file of the data dir's host filesystem durable in one call;
 * posix_fadvise(POSIX_FADV_DONTNEED), which lets go of a file's cached pages; and the page faults
 * of the calling thread (getrusage RUSAGE_THREAD), where process.resourceUsage() sums every
 * thread's CPU time too (17 us a call in a serving razorfs).
 */
#include "razorfs_ll.h"

#include <errno.h>
#include <fcntl.h>
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

/*
 * Host system calls Node's fs module does not offer, for the storage layer (not for FUSE):
 * syncfs(2), which makes every file of the data dir's host filesystem durable in one call.
 */
#include "razorfs_ll.h"

#include <errno.h>
#include <string.h>
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

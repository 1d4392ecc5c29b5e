/*
 * Host system calls Node does not offer, for the storage layer and the server (not for FUSE):
 * syncfs(2), which makes every file of the data dir's host filesystem durable in one call, on the
 * calling thread or in the libuv pool (syncfsAhead); opens and closes of many files in one job of
 * the pool (openBatch, closeBatch); posix_fadvise(POSIX_FADV_DONTNEED), which lets go of a file's cached pages; the page faults
 * of the calling thread (getrusage RUSAGE_THREAD), where process.resourceUsage() sums every
 * thread's CPU time too (17 us a call in a serving razorfs); and two reads Node makes dear on the
 * JS thread of a busy server: a file's size, mtime and blocks (fstatTimes: fs.fstatSync builds a
 * Stats object, 2.7 us a call against fstat's 1.25 here), and the resident set (resident: Node's
 * opens, reads and closes /proc/self/stat, which sums every thread's CPU time; statm is kept open).
 */
#include "razorfs_ll.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* An Error whose code is errno `err`'s name. */
static napi_value errno_error(napi_env env, int err) {
  const char *name = strerrorname_np(err);
  napi_value code, msg, error;
  napi_create_string_utf8(env, name != NULL ? name : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  return error;
}

/* syncfs(fd): returns undefined, or throws an Error whose code is the errno's name ("EIO"). */
napi_value js_syncfs(napi_env env, napi_callback_info info) {
  double fd;
  if (!unpack(env, info, "d", &fd)) return NULL;
  if (syncfs((int)fd) != 0) napi_throw(env, errno_error(env, errno));
  return NULL;
}

/*
 * Host work in the libuv pool, one job a call, so that the JS thread hands over many calls at the
 * cost of one (each job handed to the pool may wake a sleeping thread there, which the JS thread
 * pays): syncfsAhead(fd), openBatch(paths, flags, mode) and closeBatch(fds). Each returns a
 * Promise, or throws where it could not start (then nothing was done). syncfsAhead's descriptor
 * must stay open until it settles, and it rejects only with the error syncfs returned; closeBatch
 * closes its descriptors, or, where it throws or rejects, has not and leaves them the caller's;
 * openBatch's are the caller's once it resolves.
 */
typedef enum { JOB_SYNCFS, JOB_OPEN, JOB_CLOSE } host_job_kind;

typedef struct host_job {
  napi_async_work work;
  napi_deferred deferred;
  host_job_kind kind;
  int fd;      /* syncfs */
  int err;     /* syncfs: 0 or errno */
  int flags;   /* open */
  mode_t mode; /* open */
  char *paths; /* open: `count` NUL-terminated paths, one after another */
  int *fds;    /* open: each path's descriptor or -errno; close: the descriptors */
  size_t count;
} host_job;

static void host_job_free(host_job *job) {
  free(job->paths);
  free(job->fds);
  free(job);
}

static void host_job_execute(napi_env env, void *data) {
  (void)env;
  host_job *job = data;
  switch (job->kind) {
    case JOB_SYNCFS:
      job->err = syncfs(job->fd) == 0 ? 0 : errno;
      break;
    case JOB_OPEN: {
      const char *path = job->paths;
      for (size_t i = 0; i < job->count; i++, path += strlen(path) + 1) {
        int fd = open(path, job->flags | O_CLOEXEC, job->mode);
        job->fds[i] = fd >= 0 ? fd : -errno;
      }
      break;
    }
    case JOB_CLOSE:
      for (size_t i = 0; i < job->count; i++) close(job->fds[i]);
      break;
  }
}

static void host_job_complete(napi_env env, napi_status status, void *data) {
  host_job *job = data;
  /* A job that never ran: a write-back ahead did nothing (resolved: no error of the host's);
     opens and closes were not made (rejected: the caller closes or creates them itself). */
  int err = status != napi_ok ? (job->kind == JOB_SYNCFS ? 0 : ECANCELED) : job->kind == JOB_SYNCFS ? job->err : 0;
  napi_value result;
  if (err != 0) {
    napi_reject_deferred(env, job->deferred, errno_error(env, err));
  } else if (job->kind == JOB_OPEN) {
    napi_value buffer;
    void *out = NULL;
    if (napi_create_arraybuffer(env, job->count * sizeof(int32_t), &out, &buffer) != napi_ok ||
        napi_create_typedarray(env, napi_int32_array, job->count, buffer, 0, &result) != napi_ok) {
      /* Nobody would get the descriptors: closed here. */
      for (size_t i = 0; i < job->count; i++)
        if (job->fds[i] >= 0) close(job->fds[i]);
      napi_reject_deferred(env, job->deferred, errno_error(env, ENOMEM));
    } else {
      for (size_t i = 0; i < job->count; i++) ((int32_t *)out)[i] = job->fds[i];
      napi_resolve_deferred(env, job->deferred, result);
    }
  } else {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_async_work(env, job->work);
  host_job_free(job);
}

/* Queue `job` in the pool: its promise. Where no work or promise can be made, the job is freed
   and NULL returned with an Error thrown (nothing was done); where the work cannot be queued, it
   runs here, on the JS thread. */
static napi_value host_job_queue(napi_env env, host_job *job) {
  napi_value promise, name;
  napi_create_string_utf8(env, "razorfs.host", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, host_job_execute, host_job_complete, job, &job->work) != napi_ok) {
    host_job_free(job);
    napi_throw_error(env, "EAGAIN", "razorfs_ll: cannot make the pool's work");
    return NULL;
  }
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    napi_delete_async_work(env, job->work);
    host_job_free(job);
    napi_throw_error(env, "ENOMEM", "razorfs_ll: cannot make a promise");
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    host_job_execute(env, job);
    host_job_complete(env, napi_ok, job);
  }
  return promise;
}

static host_job *host_job_new(napi_env env, host_job_kind kind) {
  host_job *job = calloc(1, sizeof(*job));
  if (job == NULL) napi_throw_error(env, "ENOMEM", "razorfs_ll: out of memory");
  else job->kind = kind;
  return job;
}

/* syncfsAhead(fd) -> Promise<void>: syncfs(fd) in the pool; rejects with the errno's Error. */
napi_value js_syncfs_ahead(napi_env env, napi_callback_info info) {
  double fd;
  if (!unpack(env, info, "d", &fd)) return NULL;
  host_job *job = host_job_new(env, JOB_SYNCFS);
  if (job == NULL) return NULL;
  job->fd = (int)fd;
  return host_job_queue(env, job);
}

/* openBatch(paths: Buffer of NUL-terminated paths, flags, mode) -> Promise<Int32Array>: each
   path opened in turn in the pool (O_CLOEXEC added), its descriptor or -errno. */
napi_value js_open_batch(napi_env env, napi_callback_info info) {
  void *paths;
  size_t len;
  double flags, mode;
  if (!unpack(env, info, "Bdd", &paths, &len, &flags, &mode)) return NULL;
  if (len == 0 || ((const char *)paths)[len - 1] != '\0') {
    napi_throw_type_error(env, NULL, "razorfs_ll: openBatch wants NUL-terminated paths");
    return NULL;
  }
  host_job *job = host_job_new(env, JOB_OPEN);
  if (job == NULL) return NULL;
  for (size_t i = 0; i < len; i++) job->count += ((const char *)paths)[i] == '\0';
  job->paths = malloc(len);
  job->fds = calloc(job->count, sizeof(int));
  if (job->paths == NULL || job->fds == NULL) {
    host_job_free(job);
    napi_throw_error(env, "ENOMEM", "razorfs_ll: out of memory");
    return NULL;
  }
  memcpy(job->paths, paths, len);
  job->flags = (int)flags;
  job->mode = (mode_t)mode;
  return host_job_queue(env, job);
}

/* closeBatch(fds: Int32Array) -> Promise<void>: each descriptor closed in the pool; what close
   says is not reported (a descriptor is released whatever it says). Throws or rejects only where
   the job never ran: then none is closed. */
napi_value js_close_batch(napi_env env, napi_callback_info info) {
  napi_value arg;
  size_t argc = 1;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  napi_typedarray_type type;
  napi_value buffer;
  size_t count, offset;
  void *data;
  if (argc < 1 || napi_get_typedarray_info(env, arg, &type, &count, &data, &buffer, &offset) != napi_ok || type != napi_int32_array) {
    napi_throw_type_error(env, NULL, "razorfs_ll: closeBatch wants an Int32Array");
    return NULL;
  }
  host_job *job = host_job_new(env, JOB_CLOSE);
  if (job == NULL) return NULL;
  job->fds = malloc((count > 0 ? count : 1) * sizeof(int));
  if (job->fds == NULL) {
    host_job_free(job);
    napi_throw_error(env, "ENOMEM", "razorfs_ll: out of memory");
    return NULL;
  }
  if (count > 0) memcpy(job->fds, data, count * sizeof(int));
  job->count = count;
  return host_job_queue(env, job);
}

/* dropCache(fd): the host's clean cached pages of the file are let go (dirty ones stay). */
napi_value js_drop_cache(napi_env env, napi_callback_info info) {
  double fd;
  if (!unpack(env, info, "d", &fd)) return NULL;
  int err = posix_fadvise((int)fd, 0, 0, POSIX_FADV_DONTNEED);
  if (err != 0) napi_throw(env, errno_error(env, err));
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

/*
 * fstatTimes(fd, out) -> 0, or the errno fstat(fd) failed with (nothing written then). `out` (a
 * Float64Array of 4) gets the size, the mtime's seconds and nanoseconds, and the 512-byte blocks.
 */
napi_value js_fstat_times(napi_env env, napi_callback_info info) {
  double fd;
  double *out;
  size_t n;
  if (!unpack(env, info, "dF", &fd, &out, &n)) return NULL;
  if (n < 4) {
    napi_throw_type_error(env, NULL, "razorfs_ll: fstatTimes wants a Float64Array of 4");
    return NULL;
  }
  struct stat st;
  int err = fstat((int)fd, &st) == 0 ? 0 : errno;
  if (err == 0) {
    out[0] = (double)st.st_size;
    out[1] = (double)st.st_mtim.tv_sec;
    out[2] = (double)st.st_mtim.tv_nsec;
    out[3] = (double)st.st_blocks;
  }
  napi_value rc;
  napi_create_int32(env, err, &rc);
  return rc;
}

/*
 * /proc/self/statm, opened at the first resident() and kept open (-1: not yet, -2: cannot be).
 * Only the JS thread calls resident (the server's resident-set look).
 */
static int statm_fd = -1;

/* resident() -> the resident set in bytes (statm's second field), or -1 where it cannot be read. */
napi_value js_resident(napi_env env, napi_callback_info info) {
  (void)info;
  double bytes = -1;
  if (statm_fd == -1) {
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    /* No /proc (or not allowed): never again. Out of descriptors: tried again next time. */
    statm_fd = fd >= 0 ? fd : (errno == EMFILE || errno == ENFILE || errno == ENOMEM) ? -1 : -2;
  }
  char buf[128];
  ssize_t len = statm_fd >= 0 ? pread(statm_fd, buf, sizeof(buf) - 1, 0) : -1;
  if (len > 0) {
    buf[len] = 0;
    unsigned long size_pages, resident_pages;
    if (sscanf(buf, "%lu %lu", &size_pages, &resident_pages) == 2) bytes = (double)resident_pages * (double)sysconf(_SC_PAGESIZE);
  }
  napi_value out;
  napi_create_double(env, bytes, &out);
  return out;
}

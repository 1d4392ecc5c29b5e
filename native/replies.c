/*
 * The reply functions JS answers requests with (replyDirents is in dirents.c). Each unpacks its
 * arguments and calls one fuse_reply_*; an argument of the wrong kind throws before any reply.
 */
#include "razorfs_ll.h"

#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

/* Open reply flags: 1 keep_cache, 2 direct_io, 4 cache_readdir, 8 noflush; 16 (create only): a new
   file, without security.capability (caps.c). */
static void open_flags(struct fuse_file_info *fi, double fh, double flags) {
  int f = (int)flags;
  memset(fi, 0, sizeof(*fi));
  fi->fh = (uint64_t)fh;
  fi->keep_cache = (f & 1) != 0;
  fi->direct_io = (f & 2) != 0;
  fi->cache_readdir = (f & 4) != 0;
  fi->noflush = (f & 8) != 0;
}

/* A write's token: the semaphore its worker waits on (0: none). */
static void release_worker(double token) {
  if (token != 0) sem_post((sem_t *)(uintptr_t)token);
}

/* replyErr(req, errno[, token]) */
napi_value js_reply_err(napi_env env, napi_callback_info info) {
  fuse_req_t req;
  double err, token = 0;
  if (!unpack(env, info, "rd|d", &req, &err, &token)) return NULL;
  fuse_reply_err(req, (int)err);
  release_worker(token);
  return NULL;
}

/* replyEntry(req, attr, entryTimeout, attrTimeout) */
napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  fuse_req_t req;
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  if (!unpack(env, info, "radd", &req, &e.attr, &e.entry_timeout, &e.attr_timeout)) return NULL;
  e.ino = e.attr.st_ino;
  fuse_reply_entry(req, &e);
  return NULL;
}

/* replyCreate(req, attr, entryTimeout, attrTimeout, fh, openFlags[, backingId]) */
napi_value js_reply_create(napi_env env, napi_callback_info info) {
  fuse_req_t req;
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  double fh, flags, backing = 0;
  if (!unpack(env, info, "radddd|d", &req, &e.attr, &e.entry_timeout, &e.attr_timeout, &fh, &flags, &backing)) return NULL;
  e.ino = e.attr.st_ino;
  struct fuse_file_info fi;
  open_flags(&fi, fh, flags);
  fi.cache_readdir = 0;
  if (((int)flags & 16) != 0) caps_none(fuse_req_userdata(req), e.ino);
  reply_with_backing((int32_t)backing);
  fuse_reply_create(req, &e, &fi);
  return NULL;
}

/* replyAttr(req, attr, attrTimeout) */
napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  fuse_req_t req;
  struct stat st;
  double timeout;
  if (!unpack(env, info, "rad", &req, &st, &timeout)) return NULL;
  fuse_reply_attr(req, &st, timeout);
  return NULL;
}

/* replyOpen(req, fh, openFlags[, backingId]): with a backing id (backingOpen), the kernel reads
   and writes the file through that backing file itself (kernel.c). */
napi_value js_reply_open(napi_env env, napi_callback_info info) {
  fuse_req_t req;
  double fh, flags, backing = 0;
  if (!unpack(env, info, "rdd|d", &req, &fh, &flags, &backing)) return NULL;
  struct fuse_file_info fi;
  open_flags(&fi, fh, flags);
  reply_with_backing((int32_t)backing);
  fuse_reply_open(req, &fi);
  return NULL;
}

/* replyBuf(req, buffer[, length]) */
napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  fuse_req_t req;
  void *data;
  size_t len;
  double want = -1;
  if (!unpack(env, info, "rB|d", &req, &data, &len, &want)) return NULL;
  if (want >= 0 && (size_t)want < len) len = (size_t)want;
  fuse_reply_buf(req, data, len);
  return NULL;
}

/* replyWrite(req, count, token[, buffer]): replies, detaches the buffer, releases the worker. */
napi_value js_reply_write(napi_env env, napi_callback_info info) {
  fuse_req_t req;
  double count, token;
  napi_value buffer = NULL;
  if (!unpack(env, info, "rdd|v", &req, &count, &token, &buffer)) return NULL;
  fuse_reply_write(req, (size_t)count);
  if (buffer != NULL) {
    napi_value ab;
    napi_typedarray_type type;
    size_t n, off;
    void *d;
    if (napi_get_typedarray_info(env, buffer, &type, &n, &d, &ab, &off) == napi_ok) napi_detach_arraybuffer(env, ab);
  }
  release_worker(token);
  return NULL;
}

/* replyStatfs(req, [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax]) */
napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  fuse_req_t req;
  double *a;
  size_t n;
  if (!unpack(env, info, "rF", &req, &a, &n)) return NULL;
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
  fuse_reply_statfs(req, &sv);
  return NULL;
}

/* A reply of one number: replyXattr(req, size), replyLseek(req, off). */
static napi_value reply_number(napi_env env, napi_callback_info info, int (*reply)(fuse_req_t req, double n)) {
  fuse_req_t req;
  double n;
  if (unpack(env, info, "rd", &req, &n)) reply(req, n);
  return NULL;
}

static int xattr_size(fuse_req_t req, double size) {
  return fuse_reply_xattr(req, (size_t)size);
}

static int lseek_offset(fuse_req_t req, double off) {
  return fuse_reply_lseek(req, (off_t)off);
}

napi_value js_reply_xattr(napi_env env, napi_callback_info info) {
  return reply_number(env, info, xattr_size);
}

napi_value js_reply_lseek(napi_env env, napi_callback_info info) {
  return reply_number(env, info, lseek_offset);
}

/* replyReadlink(req, target: Buffer) */
napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  fuse_req_t req;
  void *data;
  size_t len;
  if (!unpack(env, info, "rB", &req, &data, &len)) return NULL;
  char *s = malloc(len + 1);
  memcpy(s, data, len);
  s[len] = 0;
  fuse_reply_readlink(req, s);
  free(s);
  return NULL;
}

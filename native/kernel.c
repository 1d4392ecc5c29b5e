/*
 * What libfuse 3.14 does not pass on from the kernel protocol (linux/fuse.h), seen through the
 * session's own read and writev (fuse_session_custom_io, installed after the mount on the same
 * /dev/fuse descriptor).
 *
 * FUSE_HANDLE_KILLPRIV_V2. Without it the kernel asks for security.capability (a GETXATTR) before
 * every write to a file, to know whether the write must remove it. With it the kernel sets
 * SB_NOSEC and asks once per inode until the inode's next attribute refresh; in return the
 * server clears set-user-ID and set-group-ID itself on a write, a truncate or an open with
 * O_TRUNC by a caller without CAP_FSETID, and on a chown, when the request carries
 * FUSE_WRITE_KILL_SUIDGID, FATTR_KILL_SUIDGID or FUSE_OPEN_KILL_SUIDGID. libfuse 3.14 can neither
 * negotiate the capability nor hands a filesystem those flags, so:
 *   - read: the INIT request's offer is noted; each WRITE, SETATTR, OPEN and CREATE's kill flag is
 *     kept for the callback that libfuse calls next on the same thread (request_kills_suidgid);
 *   - writev: the INIT reply gets the capability when the kernel offered it and the session asked
 *     for it (MODE_KILLPRIV: a volume no other host changes, as with caps.c).
 * The capability itself (security.capability) is still removed by the kernel, which asks for it
 * whenever it has not seen the inode checked since its last refresh.
 *
 * FUSE passthrough (MODE_PASSTHROUGH): writev also agrees to it in the INIT reply when the kernel
 * offered it, and puts FOPEN_PASSTHROUGH and a backing id (backingOpen) into the open or create
 * reply that JS asked for with one (reply_with_backing, same thread). The kernel then reads and
 * writes that file's backing file itself.
 */
#include "razorfs_ll.h"

#include <errno.h>
#include <linux/fuse.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * Kernel FUSE passthrough (protocol 7.40), which Debian 12's linux/fuse.h (7.38) does not declare:
 * FUSE_PASSTHROUGH is init flag bit 37 (bit 5 of flags2); the INIT reply's max_stack_depth is the
 * first word of 7.38's unused[]; an open reply's backing_id is the word after open_flags.
 */
#define PASSTHROUGH_FLAGS2 (1u << 5)
#define FOPEN_PASSTHROUGH_FLAG (1u << 7)
struct backing_map {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
#define DEV_IOC_BACKING_OPEN _IOW(229, 1, struct backing_map)
#define DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

/* The kill flag of the request this thread read last (libfuse processes it on the same thread). */
static __thread bool kill_suidgid;

/* The backing file the open or create reply this thread sends next is to name (0: none). */
static __thread int32_t reply_backing_id;

void reply_with_backing(int32_t id) {
  reply_backing_id = id;
}

bool request_kills_suidgid(void) {
  return kill_suidgid;
}

/* The kill flag of a request, from its bytes (a truncated request: none). */
static bool kills(const struct fuse_in_header *h, const char *arg, size_t len) {
  switch (h->opcode) {
  case FUSE_WRITE:
    return len >= sizeof(struct fuse_write_in) && (((const struct fuse_write_in *)arg)->write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
  case FUSE_SETATTR:
    return len >= sizeof(struct fuse_setattr_in) && (((const struct fuse_setattr_in *)arg)->valid & FATTR_KILL_SUIDGID) != 0;
  case FUSE_OPEN:
    return len >= sizeof(struct fuse_open_in) && (((const struct fuse_open_in *)arg)->open_flags & FUSE_OPEN_KILL_SUIDGID) != 0;
  case FUSE_CREATE:
    return len >= sizeof(struct fuse_create_in) && (((const struct fuse_create_in *)arg)->open_flags & FUSE_OPEN_KILL_SUIDGID) != 0;
  default:
    return false;
  }
}

static ssize_t kernel_read(int fd, void *buf, size_t len, void *userdata) {
  ssize_t n = read(fd, buf, len);
  kill_suidgid = false;
  if (n < (ssize_t)sizeof(struct fuse_in_header)) return n;
  const struct fuse_in_header *h = buf;
  const char *arg = (const char *)buf + sizeof(*h);
  size_t arglen = (size_t)n - sizeof(*h);
  if (h->opcode == FUSE_INIT && arglen >= offsetof(struct fuse_init_in, flags2)) {
    session *s = userdata;
    s->init_unique = h->unique;
    s->kernel_flags = ((const struct fuse_init_in *)arg)->flags;
    if (arglen >= sizeof(struct fuse_init_in) && (s->kernel_flags & FUSE_INIT_EXT))
      s->kernel_flags2 = ((const struct fuse_init_in *)arg)->flags2;
  } else {
    kill_suidgid = kills(h, arg, arglen);
  }
  return n;
}

static ssize_t kernel_writev(int fd, struct iovec *iov, int count, void *userdata) {
  session *s = userdata;
  if (reply_backing_id != 0) {
    /* An open or create reply: its fuse_open_out ends the reply's argument. */
    if (count >= 2 && iov[1].iov_len >= sizeof(struct fuse_open_out)) {
      struct fuse_open_out *o = (struct fuse_open_out *)((char *)iov[1].iov_base + iov[1].iov_len - sizeof(*o));
      /* The kernel takes no page cache flag with passthrough (FOPEN_PASSTHROUGH_MASK in fs/fuse). */
      o->open_flags = (o->open_flags & ~(uint32_t)(FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR)) | FOPEN_PASSTHROUGH_FLAG;
      memcpy(&o->padding, &reply_backing_id, sizeof(int32_t));
    }
    reply_backing_id = 0;
  }
  if (s->init_unique != 0 && count >= 2 && iov[0].iov_len >= sizeof(struct fuse_out_header)) {
    const struct fuse_out_header *h = iov[0].iov_base;
    if (h->unique == s->init_unique) {
      s->init_unique = 0;
      if (h->error == 0 && iov[1].iov_len >= offsetof(struct fuse_init_out, max_background) && (s->modes & MODE_KILLPRIV) &&
          (s->kernel_flags & FUSE_HANDLE_KILLPRIV_V2) != 0) {
        ((struct fuse_init_out *)iov[1].iov_base)->flags |= FUSE_HANDLE_KILLPRIV_V2;
      }
      struct fuse_init_out *out = iov[1].iov_base;
      if (h->error == 0 && iov[1].iov_len >= sizeof(*out) && (s->modes & MODE_PASSTHROUGH) && (s->kernel_flags2 & PASSTHROUGH_FLAGS2) &&
          (out->flags & FUSE_WRITEBACK_CACHE) == 0) {
        out->flags |= FUSE_INIT_EXT;
        out->flags2 |= PASSTHROUGH_FLAGS2;
        out->unused[0] = 1; /* max_stack_depth: the content files' host filesystem is not stacked */
      }
    }
  }
  return writev(fd, iov, count);
}

int kernel_io_install(session *s) {
  const struct fuse_custom_io io = {.read = kernel_read, .writev = kernel_writev};
  return fuse_session_custom_io(s->se, &io, fuse_session_fd(s->se));
}

/* Give backing id `id` back (the notice thread, notify.c); 0 or -errno. */
int kernel_backing_close(session *s, uint32_t id) {
  return ioctl(fuse_session_fd(s->se), DEV_IOC_BACKING_CLOSE, &id) < 0 ? -errno : 0;
}

/* backingOpen(session, fd): the backing id the kernel gives the file open on `fd` (it keeps its
   own reference), or -errno (EPERM: the kernel did not take passthrough at INIT). */
napi_value js_backing_open(napi_env env, napi_callback_info info) {
  napi_value ext;
  double fd;
  if (!unpack(env, info, "vd", &ext, &fd)) return NULL;
  session *s = session_arg(env, ext);
  if (s == NULL) return NULL;
  struct backing_map map = {.fd = (int32_t)fd, .flags = 0, .padding = 0};
  int id = ioctl(fuse_session_fd(s->se), DEV_IOC_BACKING_OPEN, &map);
  napi_value out;
  napi_create_int32(env, id < 0 ? -errno : id, &out);
  return out;
}

/* backingClose(session, ids: Uint32Array) -> queued: the ids are given back by the notice thread
   (notify.c), off the JS thread; opens made with them keep their files. */
napi_value js_backing_close(napi_env env, napi_callback_info info) {
  napi_value ext;
  uint32_t *ids;
  size_t count;
  if (!unpack(env, info, "vU", &ext, &ids, &count)) return NULL;
  session *s = session_arg(env, ext);
  if (s == NULL) return NULL;
  napi_value out;
  napi_get_boolean(env, count > 0 && notify_backing_close(s, ids, count), &out);
  return out;
}

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
 */
#include "razorfs_ll.h"

#include <linux/fuse.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* The kill flag of the request this thread read last (libfuse processes it on the same thread). */
static __thread bool kill_suidgid;

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
  } else {
    kill_suidgid = kills(h, arg, arglen);
  }
  return n;
}

static ssize_t kernel_writev(int fd, struct iovec *iov, int count, void *userdata) {
  session *s = userdata;
  if (s->init_unique != 0 && count >= 2 && iov[0].iov_len >= sizeof(struct fuse_out_header)) {
    const struct fuse_out_header *h = iov[0].iov_base;
    if (h->unique == s->init_unique) {
      s->init_unique = 0;
      if (h->error == 0 && iov[1].iov_len >= offsetof(struct fuse_init_out, max_background) && (s->modes & MODE_KILLPRIV) &&
          (s->kernel_flags & FUSE_HANDLE_KILLPRIV_V2) != 0) {
        ((struct fuse_init_out *)iov[1].iov_base)->flags |= FUSE_HANDLE_KILLPRIV_V2;
      }
    }
  }
  return writev(fd, iov, count);
}

int kernel_io_install(session *s) {
  const struct fuse_custom_io io = {.read = kernel_read, .writev = kernel_writev};
  return fuse_session_custom_io(s->se, &io, fuse_session_fd(s->se));
}

/*
 * The FUSE limit (issue 18): a do-nothing libfuse 3 low-level filesystem in C, served by
 * libfuse's multi-threaded loop (fuse_session_loop_mt, libfuse's default thread limits) with
 * the kernel options razorfs's ll binding asks for (native/requests.c ll_init,
 * src/fuse/ll-adapter.ts): default_permissions, 1 MiB max_write and max_readahead, async read,
 * parallel dirops, export support, readdirplus (adaptive), no writeback cache, entry and
 * attribute timeouts of an hour (LL_TIMEOUTS in src/fuse/mount-options.ts), no negative caching.
 *
 *   cc -O2 -o noop-c bench/noop-c/fs.c bench/noop-c/table.c $(pkg-config --cflags --libs fuse3)
 *   noop-c MOUNTPOINT      prints "mounted MOUNTPOINT", serves until SIGTERM/SIGINT
 *
 * npm run bench builds it in its work dir (bench/run/targets.ts). Like bench/noop-ll.ts it keeps
 * only what lets the workloads run as on a real filesystem: the name tree (a hash of
 * (parent, name) -> inode, each directory's entries in a list), each inode's type, size and
 * link count. Reads return zeros up to the size written, writes are accepted and dropped,
 * everything else succeeds. One mutex guards the table (table.c).
 */
#include "table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char ZEROS[MAX_WRITE];

static void reply_entry_or_err(fuse_req_t req, int err, struct fuse_entry_param *e) {
  if (err != 0) fuse_reply_err(req, err);
  else fuse_reply_entry(req, e);
}

static void nc_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_EXPORT_SUPPORT) conn->want |= FUSE_CAP_EXPORT_SUPPORT;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO) conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  conn->max_write = MAX_WRITE;
  conn->max_readahead = MAX_WRITE;
}

static void nc_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  struct fuse_entry_param e;
  int err = 0;
  pthread_mutex_lock(&lock);
  entry *x = get(parent) == NULL ? NULL : *slot(parent, name, strlen(name));
  if (x == NULL) err = ENOENT;
  else entry_of(x->ino, nodes[x->ino], &e);
  pthread_mutex_unlock(&lock);
  reply_entry_or_err(req, err, &e);
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup) {
  node *n = get(ino);
  if (n == NULL) return;
  n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
  maybe_free(ino);
}

static void nc_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  pthread_mutex_lock(&lock);
  forget_one(ino, nlookup);
  pthread_mutex_unlock(&lock);
  fuse_reply_none(req);
}

static void nc_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < count; i++) forget_one(forgets[i].ino, forgets[i].nlookup);
  pthread_mutex_unlock(&lock);
  fuse_reply_none(req);
}

static void nc_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  struct stat st;
  pthread_mutex_lock(&lock);
  node *n = get(ino);
  if (n != NULL) fill(ino, n, &st);
  pthread_mutex_unlock(&lock);
  if (n == NULL) fuse_reply_err(req, ENOENT);
  else fuse_reply_attr(req, &st, TIMEOUT);
}

static void nc_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  (void)fi;
  struct stat st;
  pthread_mutex_lock(&lock);
  node *n = get(ino);
  if (n != NULL) {
    if (to_set & FUSE_SET_ATTR_SIZE) n->size = attr->st_size;
    if (to_set & FUSE_SET_ATTR_MODE) n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
    if (to_set & FUSE_SET_ATTR_UID) n->uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) n->gid = attr->st_gid;
    fill(ino, n, &st);
  }
  pthread_mutex_unlock(&lock);
  if (n == NULL) fuse_reply_err(req, ENOENT);
  else fuse_reply_attr(req, &st, TIMEOUT);
}

static void nc_readlink(fuse_req_t req, fuse_ino_t ino) {
  char buf[4096] = "x";
  pthread_mutex_lock(&lock);
  node *n = get(ino);
  if (n != NULL && n->target != NULL) snprintf(buf, sizeof(buf), "%s", n->target);
  pthread_mutex_unlock(&lock);
  fuse_reply_readlink(req, buf);
}

static void make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, const char *target) {
  struct fuse_entry_param e;
  pthread_mutex_lock(&lock);
  int err = add(parent, name, mode, target, fuse_req_ctx(req), 0, &e);
  pthread_mutex_unlock(&lock);
  reply_entry_or_err(req, err, &e);
}

static void nc_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  (void)rdev;
  make(req, parent, name, mode, NULL);
}

static void nc_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  make(req, parent, name, S_IFDIR | (mode & 07777), NULL);
}

static void nc_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  make(req, parent, name, S_IFLNK | 0777, link);
}

static void nc_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  struct fuse_entry_param e;
  pthread_mutex_lock(&lock);
  int err = get(ino) == NULL ? ENOENT : add(newparent, newname, 0, NULL, NULL, ino, &e);
  pthread_mutex_unlock(&lock);
  reply_entry_or_err(req, err, &e);
}

static void nc_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  pthread_mutex_lock(&lock);
  int err = del(parent, name, 0);
  pthread_mutex_unlock(&lock);
  fuse_reply_err(req, err);
}

static void nc_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  pthread_mutex_lock(&lock);
  int err = del(parent, name, 1);
  pthread_mutex_unlock(&lock);
  fuse_reply_err(req, err);
}

static void nc_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) {
  int err = 0;
  pthread_mutex_lock(&lock);
  node *d = get(parent), *nd = get(newparent);
  entry *from = d == NULL ? NULL : *slot(parent, name, strlen(name));
  entry *to = nd == NULL ? NULL : *slot(newparent, newname, strlen(newname));
  if (flags & RENAME_EXCHANGE) err = EINVAL;
  else if (from == NULL || nd == NULL) err = ENOENT;
  else if (to != NULL && (flags & RENAME_NOREPLACE)) err = EEXIST;
  else if (to == from) err = 0;
  else if (to != NULL && (err = del(newparent, newname, S_ISDIR(nodes[to->ino]->mode))) != 0) {
    /* err set */
  } else {
    entry **p = slot(parent, name, strlen(name));
    *p = from->hnext;
    unlist(d, from);
    size_t len = strlen(newname);
    entry *e = link_entry(newparent, nd, slot(newparent, newname, len), newname, len, from->ino);
    if (S_ISDIR(nodes[e->ino]->mode) && parent != newparent) {
      d->nlink--;
      nd->nlink++;
    }
    free(from);
  }
  pthread_mutex_unlock(&lock);
  fuse_reply_err(req, err);
}

/* The open reply razorfs's ll adapter gives: keep the page cache, no FLUSH at close. */
static void open_like_razorfs(struct fuse_file_info *fi) {
  fi->keep_cache = 1;
  fi->noflush = 1;
}

static void nc_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  fi->fh = 0;
  open_like_razorfs(fi);
  fuse_reply_open(req, fi);
}

static void nc_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  struct fuse_entry_param e;
  pthread_mutex_lock(&lock);
  int err = add(parent, name, S_IFREG | (mode & 07777), NULL, fuse_req_ctx(req), 0, &e);
  pthread_mutex_unlock(&lock);
  fi->fh = 0;
  open_like_razorfs(fi);
  if (err != 0) fuse_reply_err(req, err);
  else fuse_reply_create(req, &e, fi);
}

static void nc_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)fi;
  pthread_mutex_lock(&lock);
  node *n = get(ino);
  off_t end = n == NULL ? 0 : n->size;
  pthread_mutex_unlock(&lock);
  size_t len = off >= end ? 0 : (size_t)(end - off) < size ? (size_t)(end - off) : size;
  if (len > sizeof(ZEROS)) len = sizeof(ZEROS);
  fuse_reply_buf(req, ZEROS, len);
}

static void nc_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)buf;
  (void)fi;
  pthread_mutex_lock(&lock);
  node *n = get(ino);
  if (n != NULL && off + (off_t)size > n->size) n->size = off + (off_t)size;
  pthread_mutex_unlock(&lock);
  fuse_reply_write(req, size);
}

static void nc_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  (void)fi;
  fuse_reply_err(req, 0);
}

static void nc_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  (void)datasync;
  nc_ok(req, ino, fi);
}

/* An open directory: its entries as they were at opendir. */
typedef struct {
  size_t count;
  fuse_ino_t *inos;
  char **names;
} listing;

static void nc_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  node *d = get(ino);
  if (d == NULL || !S_ISDIR(d->mode)) {
    pthread_mutex_unlock(&lock);
    fuse_reply_err(req, d == NULL ? ENOENT : ENOTDIR);
    return;
  }
  listing *l = malloc(sizeof(listing));
  l->count = d->count + 2;
  l->inos = malloc(l->count * sizeof(fuse_ino_t));
  l->names = malloc(l->count * sizeof(char *));
  l->inos[0] = l->inos[1] = ino;
  l->names[0] = strdup(".");
  l->names[1] = strdup("..");
  size_t i = 2;
  for (entry *e = d->first; e != NULL; e = e->next, i++) {
    l->inos[i] = e->ino;
    l->names[i] = strdup(e->name);
  }
  pthread_mutex_unlock(&lock);
  fi->fh = (uint64_t)(uintptr_t)l;
  fuse_reply_open(req, fi);
}

static void readdir_any(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, int plus) {
  (void)ino;
  listing *l = (listing *)(uintptr_t)fi->fh;
  char *buf = malloc(size);
  size_t used = 0;
  pthread_mutex_lock(&lock);
  for (size_t i = (size_t)off; i < l->count; i++) {
    node *n = get(l->inos[i]);
    size_t got;
    if (plus) {
      struct fuse_entry_param e;
      memset(&e, 0, sizeof(e));
      if (n != NULL && i >= 2) entry_of(l->inos[i], n, &e);
      else if (n != NULL) fill(l->inos[i], n, &e.attr);
      got = fuse_add_direntry_plus(req, buf + used, size - used, l->names[i], &e, (off_t)i + 1);
      if (got > size - used && n != NULL && i >= 2) n->nlookup--; /* did not fit: not sent */
    } else {
      struct stat st;
      memset(&st, 0, sizeof(st));
      st.st_ino = l->inos[i];
      st.st_mode = n == NULL ? S_IFREG : n->mode;
      got = fuse_add_direntry(req, buf + used, size - used, l->names[i], &st, (off_t)i + 1);
    }
    if (got > size - used) break;
    used += got;
  }
  pthread_mutex_unlock(&lock);
  fuse_reply_buf(req, buf, used);
  free(buf);
}

static void nc_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  readdir_any(req, ino, size, off, fi, 0);
}

static void nc_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  readdir_any(req, ino, size, off, fi, 1);
}

static void nc_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  listing *l = (listing *)(uintptr_t)fi->fh;
  for (size_t i = 0; i < l->count; i++) free(l->names[i]);
  free(l->names);
  free(l->inos);
  free(l);
  fuse_reply_err(req, 0);
}

static void nc_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  (void)datasync;
  nc_ok(req, ino, fi);
}

static void nc_statfs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  struct statvfs st;
  memset(&st, 0, sizeof(st));
  st.f_bsize = st.f_frsize = 4096;
  st.f_blocks = st.f_bfree = st.f_bavail = 1 << 30;
  st.f_files = st.f_ffree = st.f_favail = 1 << 30;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

static void nc_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  (void)ino;
  (void)name;
  (void)value;
  (void)size;
  (void)flags;
  fuse_reply_err(req, 0);
}

static void nc_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  (void)ino;
  (void)name;
  (void)size;
  fuse_reply_err(req, ENODATA);
}

static void nc_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  (void)ino;
  if (size == 0) fuse_reply_xattr(req, 0);
  else fuse_reply_buf(req, NULL, 0);
}

static void nc_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  (void)ino;
  (void)name;
  fuse_reply_err(req, ENODATA);
}

static void nc_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  (void)ino;
  (void)mask;
  fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
    .init = nc_init,
    .lookup = nc_lookup,
    .forget = nc_forget,
    .forget_multi = nc_forget_multi,
    .getattr = nc_getattr,
    .setattr = nc_setattr,
    .readlink = nc_readlink,
    .mknod = nc_mknod,
    .mkdir = nc_mkdir,
    .unlink = nc_unlink,
    .rmdir = nc_rmdir,
    .symlink = nc_symlink,
    .rename = nc_rename,
    .link = nc_link,
    .open = nc_open,
    .read = nc_read,
    .write = nc_write,
    .flush = nc_ok,
    .release = nc_ok,
    .fsync = nc_fsync,
    .opendir = nc_opendir,
    .readdir = nc_readdir,
    .readdirplus = nc_readdirplus,
    .releasedir = nc_releasedir,
    .fsyncdir = nc_fsyncdir,
    .statfs = nc_statfs,
    .setxattr = nc_setxattr,
    .getxattr = nc_getxattr,
    .listxattr = nc_listxattr,
    .removexattr = nc_removexattr,
    .access = nc_access,
    .create = nc_create,
};

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: noop-c MOUNTPOINT\n");
    return 16;
  }
  grow_table();
  new_node(0, NULL); /* inode 0: none */
  fuse_ino_t root = new_node(S_IFDIR | 0755, NULL);
  nodes[root]->nlookup = 1; /* the kernel never forgets the root */

  char *fargv[] = {argv[0], "-o", "default_permissions,fsname=noopc,subtype=noopc", NULL};
  struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
  struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
  if (se == NULL) return 1;
  if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, argv[1]) != 0) {
    fuse_session_destroy(se);
    return 1;
  }
  printf("mounted %s\n", argv[1]);
  fflush(stdout);
  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(cfg, 0);
  int ret = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  /* The loop returns the signal that ended it (SIGTERM: a clean stop), or a negative errno. */
  return ret < 0 ? 1 : 0;
}

/*
 * bench/noop-c's name table: inodes by number and a hash of (parent, name) -> entry, each
 * directory's entries in a list. Callers hold `lock` (fs.c's handlers take it around each use).
 */
#ifndef NOOP_C_TABLE_H
#define NOOP_C_TABLE_H

#define FUSE_USE_VERSION 312
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

#define TIMEOUT 3600.0
#define MAX_WRITE (1 << 20)
#define EPOCH_SEC 1700000000

typedef struct entry entry;
typedef struct node {
  mode_t mode;
  uid_t uid;
  gid_t gid;
  off_t size;
  nlink_t nlink;
  uint64_t nlookup;
  char *target; /* symlinks */
  entry *first; /* directories: entries, newest first */
  size_t count;
} node;

struct entry {
  fuse_ino_t parent, ino;
  entry *hnext;            /* hash chain */
  entry *prev, *next;      /* the directory's list */
  size_t len;
  char name[];
};

extern pthread_mutex_t lock;
extern node **nodes; /* by inode number; never reused */

entry **slot(fuse_ino_t parent, const char *name, size_t len);
void grow_table(void);
node *get(fuse_ino_t ino);
fuse_ino_t new_node(mode_t mode, const struct fuse_ctx *ctx);
void maybe_free(fuse_ino_t ino);
void fill(fuse_ino_t ino, const node *n, struct stat *st);
void entry_of(fuse_ino_t ino, node *n, struct fuse_entry_param *e);
entry *link_entry(fuse_ino_t parent, node *d, entry **p, const char *name, size_t len, fuse_ino_t ino);
int add(fuse_ino_t parent, const char *name, mode_t mode, const char *target, const struct fuse_ctx *ctx, fuse_ino_t link_to, struct fuse_entry_param *out);
void unlist(node *d, entry *e);
int del(fuse_ino_t parent, const char *name, int dir);

#endif

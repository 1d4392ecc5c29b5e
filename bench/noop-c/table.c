/* bench/noop-c's name table (table.h). */
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
node **nodes;
static fuse_ino_t nnodes, cap_nodes;
static entry **table; /* (parent, name) -> entry */
static size_t table_size, table_used;

static uint64_t hash(fuse_ino_t parent, const char *name, size_t len) {
  uint64_t h = 1469598103934665603ULL ^ parent;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)name[i]) * 1099511628211ULL;
  return h;
}

entry **slot(fuse_ino_t parent, const char *name, size_t len) {
  entry **p = &table[hash(parent, name, len) & (table_size - 1)];
  while (*p != NULL && !((*p)->parent == parent && (*p)->len == len && memcmp((*p)->name, name, len) == 0)) p = &(*p)->hnext;
  return p;
}

void grow_table(void) {
  size_t old = table_size;
  entry **was = table;
  table_size = old == 0 ? 1024 : old * 2;
  table = calloc(table_size, sizeof(entry *));
  for (size_t i = 0; i < old; i++) {
    for (entry *e = was[i], *next; e != NULL; e = next) {
      next = e->hnext;
      entry **p = &table[hash(e->parent, e->name, e->len) & (table_size - 1)];
      e->hnext = *p;
      *p = e;
    }
  }
  free(was);
}

node *get(fuse_ino_t ino) { return ino < nnodes ? nodes[ino] : NULL; }

fuse_ino_t new_node(mode_t mode, const struct fuse_ctx *ctx) {
  if (nnodes == cap_nodes) {
    cap_nodes = cap_nodes == 0 ? 1024 : cap_nodes * 2;
    nodes = realloc(nodes, cap_nodes * sizeof(node *));
  }
  node *n = calloc(1, sizeof(node));
  n->mode = mode;
  n->uid = ctx == NULL ? 0 : ctx->uid;
  n->gid = ctx == NULL ? 0 : ctx->gid;
  n->nlink = S_ISDIR(mode) ? 2 : 1;
  n->size = S_ISDIR(mode) ? 4096 : 0;
  nodes[nnodes] = n;
  return nnodes++;
}

/* Free an inode that has no name left and that the kernel forgot. */
void maybe_free(fuse_ino_t ino) {
  node *n = get(ino);
  if (n == NULL || n->nlookup > 0 || n->nlink > (S_ISDIR(n->mode) ? 1u : 0u)) return;
  free(n->target);
  free(n);
  nodes[ino] = NULL;
}

void fill(fuse_ino_t ino, const node *n, struct stat *st) {
  memset(st, 0, sizeof(*st));
  st->st_ino = ino;
  st->st_mode = n->mode;
  st->st_nlink = n->nlink;
  st->st_uid = n->uid;
  st->st_gid = n->gid;
  st->st_size = n->size;
  st->st_blocks = (n->size + 511) / 512;
  st->st_blksize = 4096;
  st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = EPOCH_SEC;
}

/* An entry reply's attributes; counts the lookup (the caller holds the lock). */
void entry_of(fuse_ino_t ino, node *n, struct fuse_entry_param *e) {
  memset(e, 0, sizeof(*e));
  e->ino = ino;
  e->attr_timeout = TIMEOUT;
  e->entry_timeout = TIMEOUT;
  fill(ino, n, &e->attr);
  n->nlookup++;
}

/* A new entry `name` -> ino in directory `d` (inode `parent`), put at hash slot `*p` and first in d's list. */
entry *link_entry(fuse_ino_t parent, node *d, entry **p, const char *name, size_t len, fuse_ino_t ino) {
  entry *e = malloc(sizeof(entry) + len + 1);
  e->parent = parent;
  e->ino = ino;
  e->len = len;
  memcpy(e->name, name, len + 1);
  e->hnext = NULL;
  *p = e;
  e->prev = NULL;
  e->next = d->first;
  if (d->first != NULL) d->first->prev = e;
  d->first = e;
  d->count++;
  return e;
}

int add(fuse_ino_t parent, const char *name, mode_t mode, const char *target, const struct fuse_ctx *ctx, fuse_ino_t link_to,
               struct fuse_entry_param *out) {
  node *d = get(parent);
  if (d == NULL) return ENOENT;
  if (!S_ISDIR(d->mode)) return ENOTDIR;
  size_t len = strlen(name);
  entry **p = slot(parent, name, len);
  if (*p != NULL) return EEXIST;
  fuse_ino_t ino = link_to;
  if (ino == 0) {
    ino = new_node(mode, ctx);
    if (target != NULL) {
      nodes[ino]->target = strdup(target);
      nodes[ino]->size = (off_t)strlen(target);
    }
    if (S_ISDIR(mode)) d->nlink++;
  } else {
    nodes[ino]->nlink++;
  }
  link_entry(parent, d, p, name, len, ino);
  if (++table_used > table_size) grow_table();
  entry_of(ino, nodes[ino], out);
  return 0;
}

/* Take entry `e` out of directory `d`'s list (not out of the hash). */
void unlist(node *d, entry *e) {
  if (e->prev != NULL) e->prev->next = e->next;
  else d->first = e->next;
  if (e->next != NULL) e->next->prev = e->prev;
  d->count--;
}

/* Unlink `name` from `parent`; `dir`: rmdir (the directory must be empty). */
int del(fuse_ino_t parent, const char *name, int dir) {
  node *d = get(parent);
  if (d == NULL) return ENOENT;
  entry **p = slot(parent, name, strlen(name));
  entry *e = *p;
  if (e == NULL) return ENOENT;
  node *n = nodes[e->ino];
  if (dir && !S_ISDIR(n->mode)) return ENOTDIR;
  if (!dir && S_ISDIR(n->mode)) return EISDIR;
  if (dir && n->count > 0) return ENOTEMPTY;
  *p = e->hnext;
  unlist(d, e);
  table_used--;
  if (S_ISDIR(n->mode)) {
    d->nlink--;
    n->nlink = 1;
  } else {
    n->nlink--;
  }
  fuse_ino_t ino = e->ino;
  free(e);
  maybe_free(ino);
  return 0;
}


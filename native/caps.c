/*
 * The kernel asks for security.capability before every write and chown (a GETXATTR, to know
 * whether to clear it: without FUSE_HANDLE_KILLPRIV_V2, which libfuse 3.14 cannot negotiate, it
 * asks again after each refresh of the file's attributes). A file this mount created has none
 * until a setxattr through this mount gives it one, so for those the addon answers ENODATA
 * itself, without a hand-off to JS: a fifth of the requests of an untar.
 *
 * What it knows is a direct-mapped table of inode numbers (a slot holds the last one that hashed
 * to it, so an inode pushed out only goes back to asking JS): exact, never a false "none". JS marks
 * a create reply as a new file (OPEN_NEW_FILE) only where every change to the image comes through
 * this mount (an image shared with other hosts can get a capability elsewhere at any time) and
 * only when the create made the file (one that existed may have a capability).
 */
#include "razorfs_ll.h"

#include <stdlib.h>

/* Slots of the table (a power of two): 2 MiB, touched only as inodes are created. */
#define CAPS_SLOTS (1u << 18)

/* The table, made at the first new file (replies run on the JS thread; workers only read it). */
static uint64_t *table_of(session *s) {
  return __atomic_load_n(&s->nocaps, __ATOMIC_ACQUIRE);
}

/* `ino` was just made by this mount (a create reply with OPEN_NEW_FILE). */
void caps_none(session *s, uint64_t ino) {
  uint64_t *t = table_of(s);
  if (t == NULL) {
    if (s->ended || (t = calloc(CAPS_SLOTS, sizeof(uint64_t))) == NULL) return;
    __atomic_store_n(&s->nocaps, t, __ATOMIC_RELEASE);
  }
  if (ino != 0) __atomic_store_n(&t[ino & (CAPS_SLOTS - 1)], ino, __ATOMIC_RELAXED);
}

bool caps_known_none(session *s, uint64_t ino) {
  uint64_t *t = table_of(s);
  return t != NULL && ino != 0 && __atomic_load_n(&t[ino & (CAPS_SLOTS - 1)], __ATOMIC_RELAXED) == ino;
}

/* A setxattr of security.capability on `ino` is on its way to JS: ask JS from now on. */
void caps_unknown(session *s, uint64_t ino) {
  uint64_t *t = table_of(s);
  if (t == NULL) return;
  uint64_t expected = ino;
  __atomic_compare_exchange_n(&t[ino & (CAPS_SLOTS - 1)], &expected, 0, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* The session ended: no request is served any more. */
void caps_drop_all(session *s) {
  free(s->nocaps);
  s->nocaps = NULL;
}

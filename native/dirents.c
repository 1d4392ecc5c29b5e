/*
 * Directory listings: replyDirents packs the entries JS answers a readdir or readdirplus with;
 * and the dirent cache.
 *
 * The dirent cache. A plain readdir (not readdirplus) answered by JS may carry more entries than
 * the kernel asked for; the rest stay packed here, per directory handle, and the worker threads
 * answer the kernel's next requests on that handle from it without a trip to JS, as libfuse's
 * high-level API does. Offset 0 (rewinddir), an offset outside the packed run, and readdirplus
 * always go to JS; releasedir drops the handle's run.
 */
#include "razorfs_ll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One directory handle's packed run of entries: records of fuse_add_direntry, back to back.
   Entry i ends at byte ends[i] and carries offset offs[i] (the kernel's next request on the
   handle asks from that offset). The run follows offset `start`. */
typedef struct dir_run {
  const void *owner; /* the session */
  uint64_t fh;
  off_t start;
  char *buf;
  size_t *ends;
  off_t *offs;
  uint32_t count;
  struct dir_run *next;
} dir_run;

#define DIR_RUN_BUCKETS 64
static dir_run *dir_runs[DIR_RUN_BUCKETS];
static pthread_mutex_t dir_runs_lock = PTHREAD_MUTEX_INITIALIZER;

static void dir_run_free(dir_run *r) {
  free(r->buf);
  free(r->ends);
  free(r->offs);
  free(r);
}

/* Unlink the run of `fh` and return it (or NULL). Call with dir_runs_lock held. */
static dir_run *dir_run_take(const void *owner, uint64_t fh) {
  dir_run **p = &dir_runs[fh % DIR_RUN_BUCKETS];
  for (; *p != NULL; p = &(*p)->next) {
    if ((*p)->fh == fh && (*p)->owner == owner) {
      dir_run *r = *p;
      *p = r->next;
      return r;
    }
  }
  return NULL;
}

void dir_run_drop(const void *owner, uint64_t fh) {
  pthread_mutex_lock(&dir_runs_lock);
  dir_run *r = dir_run_take(owner, fh);
  pthread_mutex_unlock(&dir_runs_lock);
  if (r != NULL) dir_run_free(r);
}

/* Answer `req` with the first `sent` entries of a new run and keep the rest as the handle's run.
   The run is in place before the reply reaches the kernel: the kernel's next request on the
   handle may come at once, on another worker thread. */
static void dir_run_put_and_reply(fuse_req_t req, dir_run *r, uint32_t sent) {
  pthread_mutex_lock(&dir_runs_lock);
  dir_run *old = dir_run_take(r->owner, r->fh);
  r->next = dir_runs[r->fh % DIR_RUN_BUCKETS];
  dir_runs[r->fh % DIR_RUN_BUCKETS] = r;
  fuse_reply_buf(req, r->buf, sent == 0 ? 0 : r->ends[sent - 1]);
  pthread_mutex_unlock(&dir_runs_lock);
  if (old != NULL) dir_run_free(old);
}

/* Entries [from, to) of a run that fit in `size` bytes, starting at `from`. */
static uint32_t dir_run_fit(const dir_run *r, uint32_t from, size_t size) {
  size_t base = from == 0 ? 0 : r->ends[from - 1];
  uint32_t to = from;
  while (to < r->count && r->ends[to] - base <= size) to++;
  return to;
}

/* Answer a plain readdir from the handle's run; false when the run does not cover `off`. */
bool dir_run_serve(fuse_req_t req, uint64_t fh, size_t size, off_t off) {
  if (off == 0) return false;
  const void *owner = fuse_req_userdata(req);
  bool served = false;
  pthread_mutex_lock(&dir_runs_lock);
  dir_run *r = dir_runs[fh % DIR_RUN_BUCKETS];
  while (r != NULL && (r->fh != fh || r->owner != owner)) r = r->next;
  if (r != NULL) {
    /* The first entry to send follows the one whose offset is `off` (offsets increase). */
    uint32_t from = UINT32_MAX;
    if (off == r->start) from = 0;
    else {
      uint32_t lo = 0, hi = r->count;
      while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->offs[mid] < off) lo = mid + 1;
        else hi = mid;
      }
      if (lo < r->count && r->offs[lo] == off) from = lo + 1;
    }
    if (from < r->count) {
      uint32_t to = dir_run_fit(r, from, size);
      if (to > from) {
        size_t base = from == 0 ? 0 : r->ends[from - 1];
        fuse_reply_buf(req, r->buf + base, r->ends[to - 1] - base);
        served = true;
      }
    }
  }
  pthread_mutex_unlock(&dir_runs_lock);
  return served;
}

/* Drop every run of a session (at its end). */
void dir_runs_drop_all(const void *owner) {
  pthread_mutex_lock(&dir_runs_lock);
  for (int b = 0; b < DIR_RUN_BUCKETS; b++) {
    dir_run **p = &dir_runs[b];
    while (*p != NULL) {
      dir_run *r = *p;
      if (r->owner == owner) {
        *p = r->next;
        dir_run_free(r);
      } else p = &r->next;
    }
  }
  pthread_mutex_unlock(&dir_runs_lock);
}

/*
 * replyDirents(req, size, plus, names: Buffer, nameEnds: Uint32Array, attrs: Float64Array (14 per
 *              entry), offs: Float64Array, entryTimeout, attrTimeout[, fh, off]) -> entries taken
 * Entry i's name is names[nameEnds[i-1] .. nameEnds[i]) (all names in one buffer: one N-API call
 * for the lot, not one per entry). Packs entries until `size` is full; the caller continues from
 * the offset of the first one left out. With `fh` and `off` (the request's offset; plain readdir
 * only) every entry is packed: those past `size` are kept as the handle's run (see "The dirent
 * cache" above) and count as taken.
 */
napi_value js_reply_dirents(napi_env env, napi_callback_info info) {
  fuse_req_t req;
  double size_arg, entry_timeout, attr_timeout, fh = NAN, start = NAN;
  bool plus;
  char *names;
  size_t names_len, count, n_attrs, n_offs;
  uint32_t *ends;
  double *attrs, *offs;
  if (!unpack(env, info, "rdbBUFFdd|dd", &req, &size_arg, &plus, (void **)&names, &names_len, &ends, &count, &attrs, &n_attrs,
              &offs, &n_offs, &entry_timeout, &attr_timeout, &fh, &start)) {
    return NULL;
  }
  size_t size = (size_t)size_arg;
  if (n_offs < count) count = n_offs;
  if (n_attrs / 14 < count) count = n_attrs / 14;
  bool keep = !isnan(fh) && !isnan(start) && !plus && count > 0;
  dir_run *r = NULL;
  size_t cap = keep ? 64 * count : (size > 0 ? size : 1);
  char *buf = malloc(cap);
  size_t used = 0;
  uint32_t packed = 0;
  if (keep) {
    r = calloc(1, sizeof(dir_run));
    r->owner = fuse_req_userdata(req);
    r->fh = (uint64_t)fh;
    r->start = (off_t)start;
    r->ends = malloc(count * sizeof(size_t));
    r->offs = malloc(count * sizeof(off_t));
  }
  char name[256];
  size_t name_start = 0;
  for (uint32_t i = 0; i < count; i++) {
    size_t name_end = ends[i] < names_len ? ends[i] : names_len;
    size_t nl = name_end > name_start ? name_end - name_start : 0;
    if (nl > 255) nl = 255;
    memcpy(name, names + name_start, nl);
    name[nl] = 0;
    name_start = name_end;
    size_t need;
    if (plus) {
      struct fuse_entry_param e;
      memset(&e, 0, sizeof(e));
      stat_from(attrs + 14 * i, &e.attr);
      /* '.' and '..' carry no lookup reference (ino 0 in the entry param). */
      e.ino = (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) ? 0 : e.attr.st_ino;
      e.entry_timeout = e.ino ? entry_timeout : 0;
      e.attr_timeout = e.ino ? attr_timeout : 0;
      need = fuse_add_direntry_plus(req, buf + used, cap - used, name, &e, (off_t)offs[i]);
    } else {
      struct stat st;
      memset(&st, 0, sizeof(st));
      st.st_ino = (ino_t)attrs[14 * i];
      st.st_mode = (mode_t)attrs[14 * i + 1];
      if (keep) {
        need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
        if (used + need > cap) {
          cap = 2 * (used + need);
          buf = realloc(buf, cap);
        }
      }
      need = fuse_add_direntry(req, buf + used, cap - used, name, &st, (off_t)offs[i]);
    }
    if (need > cap - used) break;
    used += need;
    if (keep) {
      r->ends[i] = used;
      r->offs[i] = (off_t)offs[i];
    }
    packed++;
  }
  if (keep) {
    r->buf = buf;
    r->count = packed;
    uint32_t sent = dir_run_fit(r, 0, size);
    if (sent < packed) dir_run_put_and_reply(req, r, sent);
    else {
      fuse_reply_buf(req, r->buf, sent == 0 ? 0 : r->ends[sent - 1]);
      dir_run_free(r);
    }
  } else {
    fuse_reply_buf(req, buf, used);
    free(buf);
  }
  napi_value out;
  napi_create_uint32(env, packed, &out);
  return out;
}


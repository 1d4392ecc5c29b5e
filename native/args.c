/*
 * Unpacking the arguments of a call from JS: one function for every exported function, instead
 * of the same N-API calls in each.
 */
#include "razorfs_ll.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Throws a TypeError naming the argument; returns false. */
static bool bad_arg(napi_env env, size_t i, const char *expected) {
  char message[128];
  snprintf(message, sizeof(message), "razorfs_ll: argument %zu must be %s", i + 1, expected);
  napi_throw_type_error(env, NULL, message);
  return false;
}

static bool typed_array(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *count) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  return napi_get_typedarray_info(env, v, &type, count, data, &buffer, &offset) == napi_ok && type == want;
}

/* The 14 numbers of an attribute array (see AttrArray in src/fuse/ll/binding.ts) into a stat. */
void stat_from(const double *a, struct stat *st) {
  memset(st, 0, sizeof(*st));
  st->st_ino = (ino_t)a[0];
  st->st_mode = (mode_t)a[1];
  st->st_nlink = (nlink_t)a[2];
  st->st_uid = (uid_t)a[3];
  st->st_gid = (gid_t)a[4];
  st->st_rdev = (dev_t)a[5];
  st->st_size = (off_t)a[6];
  st->st_blocks = (blkcnt_t)a[7];
  st->st_blksize = 4096;
  st->st_atim.tv_sec = (time_t)a[8];
  st->st_atim.tv_nsec = (long)a[9];
  st->st_mtim.tv_sec = (time_t)a[10];
  st->st_mtim.tv_nsec = (long)a[11];
  st->st_ctim.tv_sec = (time_t)a[12];
  st->st_ctim.tv_nsec = (long)a[13];
}

/* One argument by its letter (see unpack); false when it is of another kind. */
static bool unpack_one(napi_env env, char kind, napi_value v, bool absent, va_list *ap) {
  switch (kind) {
    case 'r': {
      fuse_req_t *out = va_arg(*ap, fuse_req_t *);
      double d;
      if (absent) return true;
      if (napi_get_value_double(env, v, &d) != napi_ok) return false;
      *out = (fuse_req_t)(uintptr_t)d;
      return true;
    }
    case 'd': {
      double *out = va_arg(*ap, double *);
      return absent || napi_get_value_double(env, v, out) == napi_ok;
    }
    case 'b': {
      bool *out = va_arg(*ap, bool *);
      return absent || napi_get_value_bool(env, v, out) == napi_ok;
    }
    case 'B': {
      void **data = va_arg(*ap, void **);
      size_t *len = va_arg(*ap, size_t *);
      return absent || napi_get_buffer_info(env, v, data, len) == napi_ok;
    }
    case 'U': {
      uint32_t **data = va_arg(*ap, uint32_t **);
      size_t *count = va_arg(*ap, size_t *);
      return absent || typed_array(env, v, napi_uint32_array, (void **)data, count);
    }
    case 'F': {
      double **data = va_arg(*ap, double **);
      size_t *count = va_arg(*ap, size_t *);
      return absent || typed_array(env, v, napi_float64_array, (void **)data, count);
    }
    case 'a': {
      struct stat *st = va_arg(*ap, struct stat *);
      double *a;
      size_t n;
      if (absent) return true;
      if (!typed_array(env, v, napi_float64_array, (void **)&a, &n)) return false;
      if (n >= 14) stat_from(a, st);
      else memset(st, 0, sizeof(*st));
      return true;
    }
    case 's': {
      char *out = va_arg(*ap, char *);
      size_t cap = va_arg(*ap, size_t);
      size_t len;
      return absent || napi_get_value_string_utf8(env, v, out, cap, &len) == napi_ok;
    }
    case 'v': {
      napi_value *out = va_arg(*ap, napi_value *);
      if (!absent) *out = v;
      return true;
    }
    default:
      return false;
  }
}

static const char *kind_name(char kind) {
  switch (kind) {
    case 'r': return "a request handle (a number)";
    case 'd': return "a number";
    case 'b': return "a boolean";
    case 's': return "a string";
    case 'B': return "a Buffer";
    case 'U': return "a Uint32Array";
    case 'F': case 'a': return "a Float64Array";
    default: return "something else";
  }
}

/*
 * Unpack the arguments of the current call by `spec`, one letter an argument, each followed in
 * the variable arguments by where it goes:
 *
 *   r  fuse_req_t *               a request handle (a number)
 *   d  double *                   a number
 *   b  bool *                     a boolean
 *   s  char *, size_t             a string, into a buffer of that size (cut to fit)
 *   B  void **, size_t *          a Buffer: its bytes and length
 *   U  uint32_t **, size_t *      a Uint32Array: its elements and count
 *   F  double **, size_t *        a Float64Array: its elements and count
 *   a  struct stat *              an attribute array (a Float64Array of 14; all zero if shorter)
 *   v  napi_value *               any value, as it is
 *   |  the arguments after this may be left out or undefined (their places keep what they hold)
 *
 * Throws a TypeError and returns false when an argument is missing or of another kind; the caller
 * then returns at once, without a reply (the JS side answers the request with EIO).
 */
bool unpack(napi_env env, napi_callback_info info, const char *spec, ...) {
  size_t argc = ARGS_MAX;
  napi_value argv[ARGS_MAX];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "razorfs_ll: cannot read the arguments");
    return false;
  }

  va_list ap;
  va_start(ap, spec);
  bool optional = false;
  bool ok = true;
  size_t i = 0;
  for (const char *c = spec; *c != 0 && ok; c++) {
    if (*c == '|') {
      optional = true;
      continue;
    }
    bool absent = i >= argc;
    if (!absent && optional) {
      napi_valuetype type;
      absent = napi_typeof(env, argv[i], &type) != napi_ok || type == napi_undefined;
    }
    if (absent && !optional) ok = bad_arg(env, i, kind_name(*c));
    else if (!unpack_one(env, *c, absent ? NULL : argv[i], absent, &ap)) ok = bad_arg(env, i, kind_name(*c));
    i++;
  }
  va_end(ap);
  return ok;
}

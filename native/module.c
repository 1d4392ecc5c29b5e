/*
 * The addon's exports: mount, unmount, the reply functions, the cache invalidations (notify.c),
 * syncfs, syncfsAhead, openBatch, closeBatch, dropCache, threadFaults, fstatTimes and resident (host.c), and two tables made from the lists in
 * razorfs_ll.h, so that JS reads requests by the numbers written here: `ops` (operation name ->
 * number) and `fields` (field name -> index in the field array).
 */
#include "razorfs_ll.h"

#define RAZORFS_NAME(name) #name,
static const char *const OP_NAMES[] = {RAZORFS_OPS(RAZORFS_NAME)};
static const char *const FIELD_NAMES[] = {RAZORFS_FIELDS(RAZORFS_NAME)};
#undef RAZORFS_NAME

/* A frozen object {names[i]: i}. */
static napi_value table(napi_env env, const char *const *names, int count) {
  napi_value obj;
  napi_create_object(env, &obj);
  for (int i = 0; i < count; i++) {
    napi_value v;
    napi_create_int32(env, i, &v);
    napi_set_named_property(env, obj, names[i], v);
  }
  napi_object_freeze(env, obj);
  return obj;
}

static napi_value init_module(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
    {"unmount", NULL, js_unmount, NULL, NULL, NULL, napi_default, NULL},
    {"replyErr", NULL, js_reply_err, NULL, NULL, NULL, napi_default, NULL},
    {"replyEntry", NULL, js_reply_entry, NULL, NULL, NULL, napi_default, NULL},
    {"replyCreate", NULL, js_reply_create, NULL, NULL, NULL, napi_default, NULL},
    {"replyAttr", NULL, js_reply_attr, NULL, NULL, NULL, napi_default, NULL},
    {"replyOpen", NULL, js_reply_open, NULL, NULL, NULL, napi_default, NULL},
    {"replyBuf", NULL, js_reply_buf, NULL, NULL, NULL, napi_default, NULL},
    {"replyWrite", NULL, js_reply_write, NULL, NULL, NULL, napi_default, NULL},
    {"replyXattr", NULL, js_reply_xattr, NULL, NULL, NULL, napi_default, NULL},
    {"replyStatfs", NULL, js_reply_statfs, NULL, NULL, NULL, napi_default, NULL},
    {"replyLseek", NULL, js_reply_lseek, NULL, NULL, NULL, napi_default, NULL},
    {"replyReadlink", NULL, js_reply_readlink, NULL, NULL, NULL, napi_default, NULL},
    {"replyDirents", NULL, js_reply_dirents, NULL, NULL, NULL, napi_default, NULL},
    {"notifyInvalInode", NULL, js_notify_inval_inode, NULL, NULL, NULL, napi_default, NULL},
    {"notifyInvalEntry", NULL, js_notify_inval_entry, NULL, NULL, NULL, napi_default, NULL},
    {"notifyCounts", NULL, js_notify_counts, NULL, NULL, NULL, napi_default, NULL},
    {"syncfs", NULL, js_syncfs, NULL, NULL, NULL, napi_default, NULL},
    {"syncfsAhead", NULL, js_syncfs_ahead, NULL, NULL, NULL, napi_default, NULL},
    {"openBatch", NULL, js_open_batch, NULL, NULL, NULL, napi_default, NULL},
    {"closeBatch", NULL, js_close_batch, NULL, NULL, NULL, napi_default, NULL},
    {"threadFaults", NULL, js_thread_faults, NULL, NULL, NULL, napi_default, NULL},
    {"dropCache", NULL, js_drop_cache, NULL, NULL, NULL, napi_default, NULL},
    {"fstatTimes", NULL, js_fstat_times, NULL, NULL, NULL, napi_default, NULL},
    {"resident", NULL, js_resident, NULL, NULL, NULL, napi_default, NULL},
    {"backingOpen", NULL, js_backing_open, NULL, NULL, NULL, napi_default, NULL},
    {"backingClose", NULL, js_backing_close, NULL, NULL, NULL, napi_default, NULL},
    {"ops", NULL, NULL, NULL, NULL, table(env, OP_NAMES, OP_COUNT), napi_enumerable, NULL},
    {"fields", NULL, NULL, NULL, NULL, table(env, FIELD_NAMES, F_COUNT), napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)

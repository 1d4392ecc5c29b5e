{
  "targets": [
    {
      "target_name": "razorfs_ll",
      "sources": ["native/module.c", "native/requests.c", "native/queue.c", "native/replies.c", "native/dirents.c", "native/args.c", "native/notify.c", "native/host.c", "native/caps.c", "native/kernel.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "<!@(pkg-config --cflags fuse3)"],
      "libraries": ["<!@(pkg-config --libs fuse3)"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS"]
    }
  ]
}

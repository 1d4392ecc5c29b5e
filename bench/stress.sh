#!/usr/bin/env bash
# Stress run against a real razorfs mount (issue 8: "no crash or dead mount in a 10-minute mixed
# stress run"). Usage: bench/stress.sh [SECONDS] [BINDING]   (defaults: 600 ll)
# Needs stress-ng (apt-get install -y stress-ng). Prints the stress-ng summary, then checks that the
# mount is still alive, that the server exits cleanly on SIGTERM and that the image is consistent.
set -euo pipefail
secs=${1:-600}
binding=${2:-ll}
here=$(cd "$(dirname "$0")/.." && pwd)
command -v stress-ng >/dev/null || { echo "stress-ng is not installed: apt-get install -y stress-ng" >&2; exit 1; }
root=$(mktemp -d /tmp/razorfs-stress-XXXXXX)
mkdir -p "$root/mnt"
node "$here/bin/run.js" mount -f --binding "$binding" --data-dir "$root/data" "$root/mnt" >"$root/server.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; fusermount3 -u -z "$root/mnt" 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "^mounted" "$root/server.log" && break; sleep 0.1; done
grep -q "^mounted" "$root/server.log" || { cat "$root/server.log"; exit 1; }
echo "== stress-ng for ${secs}s on $root/mnt (binding $binding)"
stress-ng --temp-path "$root/mnt" --timeout "${secs}s" --metrics-brief \
  --dir 2 --rename 2 --xattr 2 --hdd 2 --hdd-bytes 64M --link 1 --symlink 1 --chmod 1 --utime 1 \
  --verify 2>&1 | tail -20
status=${PIPESTATUS[0]}
echo "== stress-ng exit status: $status"
ls "$root/mnt" >/dev/null && echo "== mount alive after the run"
kill -TERM $server
wait $server && echo "== server exited 0"
trap - EXIT
grep -E "unexpected error" "$root/server.log" && { echo "unexpected errors in the server log" >&2; exit 1; }
node "$here/bin/run.js" fsck -n -f "$root/data" && echo "== fsck clean" || echo "== fsck exit $?"
rm -rf "$root"
exit "$status"

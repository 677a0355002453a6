#!/bin/sh
# make bench: runs every benchmark program once and prints its table.
# Environment from make: GI_BUILD (build dir), GI_SHARED (../shared).
set -u
bin=$GI_BUILD/bin
status=0
for b in bench-ipc bench-matmul bench-engine bench-text bench-gid; do
	[ -x "$bin/$b" ] || continue
	echo "== $b"
	"$bin/$b" || status=1
	echo
done
exit $status

#!/bin/sh
# make demo: start gid on the default model and a temporary socket, run four
# concurrent `gi run` clients, print their outputs and `gi stats`, then stop
# gid with SIGTERM and check that it exited cleanly.
#
# Environment: GI_BUILD (build dir, default ./build), GI_SHARED (shared
# models, default ../shared), GI_MODEL (a GGUF file to serve instead of the
# default), GI_DEMO_TOKENS (tokens per client, default 48).
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
build=${GI_BUILD:-$here/build}
shared=${GI_SHARED:-$here/../shared}
bin=$build/bin
tokens=${GI_DEMO_TOKENS:-48}

say() { printf '== %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

for p in gid gi; do
	[ -x "$bin/$p" ] || die "$bin/$p is missing: run make first"
done

tmp=$(mktemp -d /tmp/gi-demo-XXXXXX) || die "mktemp failed"
sock=$tmp/gid.sock
gid_pid=
cleanup() {
	if [ -n "$gid_pid" ] && kill -0 "$gid_pid" 2>/dev/null; then
		kill -KILL "$gid_pid" 2>/dev/null
		wait "$gid_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- model -----------------------------------------------------------------
if [ -n "${GI_MODEL:-}" ]; then
	model=$GI_MODEL
	[ -r "$model" ] || die "GI_MODEL=$model is not readable"
elif [ -r "$shared/models/stories260K.gguf" ]; then
	model=$shared/models/stories260K.gguf
else
	[ -x "$bin/gi-mkmodel" ] || die "no model: set GI_MODEL, provide $shared/models/stories260K.gguf, or build gi-mkmodel"
	model=$tmp/generated.gguf
	say "no stories260K.gguf under $shared/models: generating a small random model"
	"$bin/gi-mkmodel" --out "$model" --preset small >"$tmp/mkmodel.log" 2>&1 ||
		{ cat "$tmp/mkmodel.log" >&2; die "gi-mkmodel failed"; }
fi

# ---- start gid -------------------------------------------------------------
say "starting gid on $(basename "$model") (socket $sock)"
"$bin/gid" --model "$model" --socket "$sock" >"$tmp/gid.log" 2>&1 &
gid_pid=$!

say "waiting for gid to accept sessions"
i=0
until "$bin/gi" stats --json --socket "$sock" >/dev/null 2>&1; do
	if ! kill -0 "$gid_pid" 2>/dev/null; then
		wait "$gid_pid"
		rc=$?
		gid_pid=
		sed 's/^/   gid| /' "$tmp/gid.log" >&2
		die "gid exited with status $rc before it was ready"
	fi
	i=$((i + 1))
	[ "$i" -le 300 ] || { sed 's/^/   gid| /' "$tmp/gid.log" >&2; die "gid not ready after 30 s"; }
	sleep 0.1
done
say "gid is ready (pid $gid_pid) after $((i / 10)).$((i % 10)) s"

# ---- four concurrent clients -----------------------------------------------
set -- "Once upon a time" "The little dog" "Lily and Tom went to the park" "One day, a bird"
say "running $# clients at once, $tokens tokens each"
n=0
pids=
for prompt in "$@"; do
	n=$((n + 1))
	printf '%s' "$prompt" >"$tmp/prompt.$n"
	"$bin/gi" run --socket "$sock" --max-tokens "$tokens" "$prompt" >"$tmp/out.$n" 2>"$tmp/err.$n" &
	pids="$pids $!"
done
status=0
n=0
for pid in $pids; do
	n=$((n + 1))
	wait "$pid"
	rc=$?
	printf -- '-- client %d (exit %d): %s\n' "$n" "$rc" "$(cat "$tmp/prompt.$n")"
	cat "$tmp/out.$n"
	if [ "$rc" -ne 0 ]; then
		sed 's/^/   stderr| /' "$tmp/err.$n"
		status=1
	fi
done
[ "$status" -eq 0 ] || say "some clients failed"

say "gi stats"
"$bin/gi" stats --socket "$sock" || status=1

# ---- stop gid --------------------------------------------------------------
say "stopping gid (SIGTERM)"
kill -TERM "$gid_pid"
i=0
while kill -0 "$gid_pid" 2>/dev/null && [ "$i" -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if kill -0 "$gid_pid" 2>/dev/null; then
	sed 's/^/   gid| /' "$tmp/gid.log" >&2
	die "gid did not exit within 10 s of SIGTERM"
fi
wait "$gid_pid"
rc=$?
gid_pid=
if [ "$rc" -ne 0 ]; then
	sed 's/^/   gid| /' "$tmp/gid.log" >&2
	die "gid exited with status $rc after SIGTERM"
fi
[ -e "$sock" ] && { say "gid left its socket file behind"; status=1; }
say "gid exited cleanly"
[ "$status" -eq 0 ] && say "demo OK" || say "demo FAILED"
exit "$status"

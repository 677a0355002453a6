#!/bin/sh
# gid's command line and start-up: --help, flag errors, the device check,
# journald priority prefixes, and the privilege drop (--user).
set -u
gid=${GI_BUILD:-build}/bin/gid
model=${GI_SHARED:-../shared}/models/stories260K.gguf
[ -x "$gid" ] || { echo "skip: $gid not built"; exit 77; }
[ -r "$model" ] || { echo "skip: $model missing"; exit 77; }
dir=$(mktemp -d /tmp/gid-cli-XXXXXX)
chmod 755 "$dir"
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$gid" --help > "$dir/out" 2>&1 || fail "--help exit $?"
grep -q -- "--model PATH" "$dir/out" || fail "--help does not describe --model"

"$gid" --socket "$dir/s" > "$dir/out" 2>&1
[ $? -eq 2 ] || fail "no model: exit code"
grep -q "no model" "$dir/out" || fail "no model: message: $(cat "$dir/out")"

"$gid" --model "$model" --bogus 1 > "$dir/out" 2>&1
[ $? -eq 2 ] || fail "unknown flag: exit code"
grep -q "unknown flag '--bogus'" "$dir/out" || fail "unknown flag: $(cat "$dir/out")"

"$gid" --model "$model" --threads many > "$dir/out" 2>&1
[ $? -eq 2 ] || fail "bad value: exit code"
grep -q "threads" "$dir/out" || fail "bad value: $(cat "$dir/out")"

"$gid" --model "$model" --device cuda --socket "$dir/s" --user "" > "$dir/out" 2>&1
[ $? -eq 1 ] || fail "--device cuda: exit code"
grep -q "CUDA" "$dir/out" || fail "--device cuda: $(cat "$dir/out")"

"$gid" --model "$dir/missing.gguf" --socket "$dir/s" --user "" > "$dir/out" 2>&1
[ $? -eq 1 ] || fail "missing model: exit code"
grep -q "missing.gguf" "$dir/out" || fail "missing model: $(cat "$dir/out")"

# journald: every line carries a <N> priority prefix.
JOURNAL_STREAM=8:1234 "$gid" --model "$dir/missing.gguf" --socket "$dir/s" --user "" > "$dir/out" 2>&1
grep -q '^<3>' "$dir/out" || fail "journald prefix: $(cat "$dir/out")"
grep -v -q '^<[0-7]>' "$dir/out" && fail "line without priority: $(cat "$dir/out")"

# Privilege drop: root -> nobody after the socket is bound and the model loaded.
if [ "$(id -u)" = 0 ] && id nobody > /dev/null 2>&1; then
	"$gid" --model "$model" --socket "$dir/s" --user nobody --threads 1 > "$dir/out" 2>&1 &
	pid=$!
	i=0
	while [ ! -S "$dir/s" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	sleep 0.2
	uid=$(awk '/^Uid:/ { print $2 $3 $4 $5 }' /proc/$pid/status)
	[ "$uid" = "65534655346553465534" ] || fail "uid after drop: $uid"
	grep -q "NoNewPrivs:	1" /proc/$pid/status || fail "no_new_privs not set"
	kill -TERM $pid
	wait $pid || fail "exit after drop: $?"
	pid=
else
	echo "skipped: privilege drop to nobody (needs root and a user nobody)"
fi

# A stale socket file (nobody answers; the dropped gid could not remove it
# from a root-owned directory) is replaced; a live one is not: a second gid
# on it refuses to start.
[ -e "$dir/s" ] || : > "$dir/s"
"$gid" --model "$model" --socket "$dir/s" --user "" --threads 1 > "$dir/out" 2>&1 &
pid=$!
i=0
while ! grep -q "ready" "$dir/out" && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
grep -q "ready" "$dir/out" || fail "start on a stale socket: $(cat "$dir/out")"
# Default socket permissions: owner and group only.
[ "$(stat -c %a "$dir/s")" = 660 ] || fail "socket mode $(stat -c %a "$dir/s"), want 660"
"$gid" --model "$model" --socket "$dir/s" --user "" > "$dir/out2" 2>&1
[ $? -eq 1 ] || fail "second gid: exit code"
grep -q "another gid" "$dir/out2" || fail "second gid: $(cat "$dir/out2")"
kill -TERM $pid
wait $pid || fail "first gid exit: $?"
pid=
echo "ok"

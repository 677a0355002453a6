#!/bin/sh
# Runs every test program given as arguments, then the integration scripts
# (tests/**/test_*.sh), the TSan builds ($GI_TSAN_TESTS) and the fuzzers
# ($GI_FUZZERS, each for $GI_FUZZ_SECONDS, seeded from fuzz/corpus/NAME and
# the generated $GI_BUILD/fuzz/corpus/NAME). Exit code 77 means skipped.
# Ends with "N passed, N failed, N skipped" so CI can see that tests ran.
here=$(cd "$(dirname "$0")" && pwd)
pass=0 fail=0 skip=0 failed_names=""
log=$(mktemp -d /tmp/gi-check-XXXXXX)

run_one() { # name, command...
	name=$1; shift
	start=$(date +%s)
	"$@" > "$log/$name.out" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass + 1)); status=PASS ;;
	77) skip=$((skip + 1)); status=SKIP ;;
	*) fail=$((fail + 1)); status=FAIL; failed_names="$failed_names $name" ;;
	esac
	summary=$(grep -E '^[0-9]+%: Checks: ' "$log/$name.out" | tail -1)
	printf '%-4s %-32s %4ss  %s\n' "$status" "$name" "$secs" "$summary"
	if [ "$status" = FAIL ]; then
		sed 's/^/    | /' "$log/$name.out" | tail -40
	else
		# a whole program skipped (77), or a passing one that skipped a
		# part it could not run here: show the reason either way
		grep -iw -e skip -e skipped "$log/$name.out" | head -3 | sed 's/^/    | /'
	fi
}

for t in "$@"; do
	run_one "$(basename "$t")" "$t"
done
for s in $(find "$here" -name 'test_*.sh' | sort); do
	run_one "$(basename "$s" .sh)" sh "$s"
done
for t in $GI_TSAN_TESTS; do
	run_one "tsan:$(basename "$t")" env TSAN_OPTIONS=halt_on_error=1 "$t"
done
for f in $GI_FUZZERS; do
	name=$(basename "$f")
	corpus="$log/corpus-$name"
	mkdir -p "$corpus"
	seeds=""
	for d in "$here/../fuzz/corpus/$name" "$GI_BUILD/fuzz/corpus/$name"; do
		[ -d "$d" ] && seeds="$seeds $d"
	done
	run_one "fuzz:$name" "$f" -max_total_time="${GI_FUZZ_SECONDS:-8}" -timeout=10 \
		-rss_limit_mb=2048 "$corpus" $seeds
done
rm -rf "$log"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] || { echo "failed:$failed_names"; exit 1; }

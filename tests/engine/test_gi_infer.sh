#!/bin/sh
# gi-infer end to end on stories260K: greedy --json output equals the first
# golden case (prompt and output ids), alone and with --batch 4 and 1 or 2
# threads; the streamed text equals the golden text; bad options fail.
bin=$GI_BUILD/bin/gi-infer
model=$GI_SHARED/models/stories260K.gguf
golden=$GI_SHARED/golden/stories260K_greedy.json
[ -x "$bin" ] || { echo "skip: $bin is not built"; exit 77; }
[ -r "$model" ] && [ -r "$golden" ] || { echo "skip: no stories260K model or golden file"; exit 77; }

# first case of the golden file: "prompt_ids": [...] and "output_ids": [...]
want_prompt=$(grep -m1 '"prompt_ids"' "$golden" | sed 's/.*"prompt_ids": \(\[[^]]*\]\).*/\1/')
want_out=$(grep -m1 '"output_ids"' "$golden" | sed 's/.*"output_ids": \(\[[^]]*\]\).*/\1/')
want_text=$(grep -m1 '"output_text"' "$golden" | sed 's/.*"output_text": "\(.*\)",$/\1/')
fail=0
for args in "--threads 1" "--threads 2" "--threads 2 --batch 4"; do
	out=$("$bin" --model "$model" --prompt "Once upon a time" --max-tokens 32 --json $args) || {
		echo "FAIL: gi-infer $args exited with $?"; fail=1; continue; }
	case $out in
	*"\"prompt_ids\": $want_prompt"*"\"output_ids\": $want_out"*) ;;
	*) echo "FAIL: gi-infer $args: $out"; echo "  want prompt $want_prompt output $want_out"; fail=1 ;;
	esac
done
text=$("$bin" --model "$model" --prompt "Once upon a time" --max-tokens 32 2>/dev/null)
[ "$text" = "$want_text" ] || { echo "FAIL: streamed text '$text', want '$want_text'"; fail=1; }
if "$bin" --model "$model" --prompt x --temp -1 >/dev/null 2>&1; then
	echo "FAIL: --temp -1 accepted"; fail=1
fi
if "$bin" --model /nonexistent.gguf --prompt x >/dev/null 2>&1; then
	echo "FAIL: a missing model loaded"; fail=1
fi
[ $fail = 0 ] && echo "gi-infer: golden case 1 reproduced"
exit $fail

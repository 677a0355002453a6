#!/bin/sh
# Writes the seed corpus of fuzz_gguf into DIR: small valid GGUF files made by
# gi-mkmodel (synthetic vocabulary, random weights) and an empty v3 header.
# Generated at build time so no model file is committed.
#   usage: fuzz-seeds.sh GI_MKMODEL DIR
set -eu
mk=$1 dir=$2
mkdir -p "$dir"
"$mk" --dim 32 --layers 1 --heads 2 --kv-heads 1 --ffn 64 --ctx 64 --vocab-size 259 --type q4_0 --seed 1 --out "$dir/tiny-q4_0.gguf"
"$mk" --dim 32 --layers 1 --heads 2 --kv-heads 1 --ffn 32 --ctx 64 --vocab-size 259 --type q8_0 --seed 2 --out "$dir/tiny-q8_0.gguf"
"$mk" --dim 8 --layers 2 --heads 2 --kv-heads 2 --ffn 16 --ctx 32 --vocab-size 260 --type f32 --seed 3 --out "$dir/tiny-f32.gguf"
"$mk" --dim 8 --layers 1 --heads 2 --kv-heads 1 --ffn 16 --ctx 32 --vocab-size 300 --type bf16 --seed 4 --out "$dir/tiny-bf16.gguf"
printf 'GGUF\003\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0' > "$dir/empty-v3.gguf"

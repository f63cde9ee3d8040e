#!/usr/bin/env bash
# Builds troupe (Release) and runs `troupe bench tokenizer`: load time and encode MB/s of the llama3
# and qwen3 tokenizers next to @lenml/tokenizers (bench/tokenizer; `npm ci` there on first use).
#   scripts/bench-tokenizer.sh [extra options for `troupe bench tokenizer`, e.g. --megabytes 8]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target troupe >/dev/null
"$build/bin/troupe" bench tokenizer "$@"

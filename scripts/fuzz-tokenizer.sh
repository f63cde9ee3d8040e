#!/usr/bin/env bash
# Builds the tokenizer libFuzzer targets (clang, ASan + UBSan) and runs each for a while.
#   scripts/fuzz-tokenizer.sh [SECONDS_PER_TARGET=60]
# Needs clang (Debian's clang-14) and ../shared (or $TROUPE_SHARED_DIR) for the encode target.
# Not part of the CMake build or CTest. Corpora and crash files go to build-fuzz/. The encode
# target's first input also loads the three tokenizers (~10 s under ASan): libFuzzer reports it as
# the "slowest unit"; that is not a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=build-fuzz
mkdir -p "$out"
export TROUPE_SHARED_DIR=${TROUPE_SHARED_DIR:-$(cd .. && pwd)/shared}
cxx=${CXX_FUZZ:-clang++}
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I.)
libs=($(pkg-config --libs libpcre2-8 libutf8proc) -lfmt)

for target in load encode; do
  echo "== building tokenizer_${target}_fuzz"
  "$cxx" "${flags[@]}" tests/fuzz/tokenizer_${target}_fuzz.cpp model/tokenizer/*.cpp "${libs[@]}" \
    -o "$out/tokenizer_${target}_fuzz"
done

# Seeds: real tokenizer files (small ones) for the loader, reference texts for encode.
mkdir -p "$out/corpus-load" "$out/corpus-encode"
if [ -f "$TROUPE_SHARED_DIR/models/aidreams260K/tokenizer.json" ]; then
  cp "$TROUPE_SHARED_DIR/models/aidreams260K/tokenizer.json" "$out/corpus-load/aidreams260K.json"
fi
for name in llama3 qwen3 spm32k; do
  ref="$TROUPE_SHARED_DIR/tokenizers/$name/reference.json"
  [ -f "$ref" ] && python3 - "$ref" "$out/corpus-encode" "$name" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))["cases"]
for i, case in enumerate(cases):
    for which in range(3):
        open(f"{sys.argv[2]}/{sys.argv[3]}-{i}-{which}", "wb").write(bytes([which]) + case["text"].encode())
PY
done

status=0
for target in load encode; do
  echo "== running tokenizer_${target}_fuzz for ${seconds}s"
  (cd "$out" && ./tokenizer_${target}_fuzz -max_total_time="$seconds" -max_len=4096 -timeout=10 \
      -rss_limit_mb=4096 -print_final_stats=1 corpus-$target 2>&1 | tee fuzz-$target.log | grep -E "^(#[0-9]+ +DONE|stat::|==[0-9]+== ?ERROR|SUMMARY|Slowest unit)" ) || status=1
done
exit $status

#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ (clang, ASan + UBSan, -fno-sanitize-recover) and runs each.
#   scripts/fuzz.sh [SECONDS_PER_TARGET=60] [TARGET...]     each target for SECONDS
#   scripts/fuzz.sh --runs=N [TARGET...]                    each target for N executions
#   scripts/fuzz.sh --build-only [TARGET...]
# TARGET is a tests/fuzz/<TARGET>_fuzz.cpp name (default: all of them):
#   tokenizer_load tokenizer_encode  tokenizer.json; real tokenizers encoding arbitrary bytes
#   safetensors                      a .safetensors file / header (model/safetensors_file.*)
#   gguf                             a GGUF file's header and tensor index (model/gguf_file.*)
#   model_config                     a Hugging Face config.json (model/model_config.*)
#   cluster_config                   a node config TOML (actors/cluster_config.*)
#   intermediate_tensors             a pipeline stage's wire header (comm/intermediate_tensors.*)
#   actor_messages                   every control-plane message type as CAF deserialises it (actors/messages.hpp)
# Needs clang (Debian's clang-14) and ../shared (or $TROUPE_SHARED_DIR) for the tokenizer encode
# target and the seeds. Not part of the CMake build or CTest. Everything goes to build-fuzz/: the
# instrumented sources (obj/, libtroupe_fuzz.a: scripts/fuzz.mk), the targets, seeds/<target> (real
# headers and configs, the examples, serialised messages: generated each run), corpus/<target>
# (what the fuzzer keeps), crashes/ (failing inputs), and <target>.log. Exits non-zero when a target
# found something. The encode target loads three tokenizers first (~10 s under ASan).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=(-max_total_time=60)
build_only=0
case "${1:-}" in
  --runs=*) mode=(-runs="${1#--runs=}"); shift ;;
  --build-only) build_only=1; shift ;;
  [0-9]*) mode=(-max_total_time="$1"); shift ;;
esac
all=(tokenizer_load tokenizer_encode safetensors gguf model_config cluster_config intermediate_tensors actor_messages)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi
for t in "${targets[@]}"; do
  [ -f "tests/fuzz/${t}_fuzz.cpp" ] || { echo "no fuzz target tests/fuzz/${t}_fuzz.cpp" >&2; exit 2; }
done

out=build-fuzz
export TROUPE_SHARED_DIR=${TROUPE_SHARED_DIR:-$(cd .. && pwd)/shared}
shared=$TROUPE_SHARED_DIR
cxx=${CXX_FUZZ:-clang++}
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
jobs=${FUZZ_BUILD_JOBS:-2}

# The sources, instrumented (coverage + sanitizers), into one archive (scripts/fuzz.mk, incremental).
echo "== building build-fuzz/libtroupe_fuzz.a (-j$jobs)"
mkdir -p "$out"
make -f scripts/fuzz.mk OUT="$out" CXX="$cxx" -j "$jobs" >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
libs=("$out/libtroupe_fuzz.a" -lcaf_io -lcaf_core -lucp -lucs -lfmt $(pkg-config --libs libpcre2-8 libutf8proc)
      -lpthread -lrt)
for t in "${targets[@]}"; do
  echo "== building ${t}_fuzz"
  "$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer $sanitize -I. "tests/fuzz/${t}_fuzz.cpp" "${libs[@]}" -o "$out/${t}_fuzz"
done
[ "$build_only" = 1 ] && exit 0

# Seeds, regenerated each run (the corpus directories keep what the fuzzer found).
seeds() {
  local t=$1 dir=$out/seeds/$1
  rm -rf "$dir" && mkdir -p "$dir" "$out/corpus/$t"
  case $t in
    tokenizer_load)
      [ -f "$shared/models/aidreams260K/tokenizer.json" ] && cp "$shared/models/aidreams260K/tokenizer.json" "$dir/" ;;
    tokenizer_encode)
      for name in llama3 qwen3 spm32k; do
        ref="$shared/tokenizers/$name/reference.json"
        [ -f "$ref" ] && python3 - "$ref" "$dir" "$name" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))["cases"]
for i, case in enumerate(cases):
    for which in range(3):
        open(f"{sys.argv[2]}/{sys.argv[3]}-{i}-{which}", "wb").write(bytes([which]) + case["text"].encode())
PY
      done ;;
    safetensors)  # the header bytes of the real checkpoints only, in both of the target's forms
      for f in "$shared"/models/*/model.safetensors; do
        [ -f "$f" ] && python3 - "$f" "$dir/$(basename "$(dirname "$f")")" <<'PY'
import os, struct, sys
path, seed = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    prefix = f.read(8)
    header = f.read(struct.unpack("<Q", prefix)[0])
data = os.path.getsize(path) - 8 - len(header)
open(seed + "-file", "wb").write(b"\0" + prefix + header)  # truncated before the data: an error
open(seed + "-header", "wb").write(b"\1" + struct.pack("<I", min(data, 2**32 - 1)) + header)
PY
      done ;;
    gguf)  # the real GGUF files up to the end of their tensor index (their data is cut: an error)
      for f in "$shared"/models/gguf/*.gguf; do
        [ -f "$f" ] && head -c 16384 "$f" >"$dir/$(basename "$f")"
      done ;;
    model_config)
      for f in "$shared"/models/*/config.json; do [ -f "$f" ] && cp "$f" "$dir/$(basename "$(dirname "$f")").json"; done ;;
    cluster_config)
      cp examples/cluster/*.toml "$dir/" ;;
    intermediate_tensors)  # what a stage sends: hidden_states and residual, f32 [T, hidden]
      python3 - "$dir" <<'PY'
import struct, sys
def header(entries):
    out = struct.pack("<II", 0x49544E31, len(entries))
    for name, dtype, shape in entries:
        out += struct.pack("<I", len(name)) + name + struct.pack("<BB", dtype, len(shape))
        out += b"".join(struct.pack("<q", d) for d in shape)
    return out
for tokens, hidden in [(1, 64), (7, 64), (128, 2048)]:
    entries = [(b"hidden_states", 0, [tokens, hidden]), (b"residual", 0, [tokens, hidden])]
    open(f"{sys.argv[1]}/stage-{tokens}x{hidden}", "wb").write(header(entries))
open(f"{sys.argv[1]}/bf16-3d", "wb").write(header([(b"x", 1, [2, 3, 4])]))
PY
      ;;
    actor_messages)
      TROUPE_FUZZ_WRITE_SEEDS="$dir" "$out/actor_messages_fuzz" >/dev/null 2>&1 ;;
  esac
}

max_len() {
  case $1 in safetensors | gguf) echo 16384 ;; *) echo 4096 ;; esac
}

status=0
mkdir -p "$out/crashes"
for t in "${targets[@]}"; do
  seeds "$t"
  echo "== running ${t}_fuzz (${mode[*]})"
  ./"$out/${t}_fuzz" "${mode[@]}" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$out/crashes/$t-" "$out/corpus/$t" "$out/seeds/$t" >"$out/$t.log" 2>&1 || status=1
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+== ?ERROR|SUMMARY|.*runtime error|Slowest unit)" \
    "$out/$t.log" || true
done
exit $status

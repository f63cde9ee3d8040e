#!/usr/bin/env bash
# The main job on the embedded default: launch a local cluster (tp=2 x pp=2, four ranks as node
# processes on loopback) serving aidreams260K from ../shared — or a `make-model` tiny checkpoint
# when ../shared is absent — and stream a few requests through the actor API.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
troupe=$build/bin/troupe
config=$root/examples/cluster/local-4.toml
model_args=()
prompts=()
shared=${TROUPE_SHARED_DIR:-$root/../shared}
if [ -f "$shared/models/aidreams260K/model.safetensors" ]; then
  model_args=(--model "$shared/models/aidreams260K")
else
  tiny=$build/models/tiny
  [ -f "$tiny/model.safetensors" ] || $troupe make-model --preset tiny --dtype f32 --out "$tiny"
  model_args=(--model "$tiny")
  prompts=(--prompt-ids 1,5,7 --prompt-ids 1,42)
  echo "(../shared is absent: serving a random-weight tiny model, so the output is token ids)"
fi
log=$(mktemp)
$troupe cluster --config "$config" "${model_args[@]}" 2>"$log" &
cluster=$!
trap 'kill -INT $cluster 2>/dev/null; wait $cluster 2>/dev/null; rm -f "$log"' EXIT
$build/bin/submit_requests --config "$config" --max-tokens 40 "${prompts[@]}" || { cat "$log" >&2; exit 1; }

#!/usr/bin/env bash
# The main job on the embedded default: serve a small model and print its output.
# Uses ../shared/models/aidreams260K when present, else a `make-model` tiny checkpoint.
set -euo pipefail
build=${1:-build}
troupe=$build/bin/troupe
shared=${TROUPE_SHARED_DIR:-$(cd "$(dirname "$0")/.." && pwd)/../shared}
model=$shared/models/aidreams260K
if [ ! -f "$model/model.safetensors" ]; then
  model=$build/models/tiny
  [ -f "$model/model.safetensors" ] || $troupe make-model --preset tiny --dtype f32 --out "$model"
fi
echo "== troupe generate --model $model"
$troupe generate --model "$model" --prompt-ids 1 --max-tokens 48

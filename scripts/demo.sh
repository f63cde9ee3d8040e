#!/usr/bin/env bash
# The main job on the embedded default: serve a small model and print its output.
set -euo pipefail
build=${1:-build}
troupe=$build/bin/troupe
echo "troupe $( $troupe --help >/dev/null 2>&1 && echo built )"

#!/usr/bin/env bash
# Prints the README's two commands (the lines of its first code block, comments stripped): the first
# runs the main job, the second the whole test suite. .ci/run and fresh-machine-check.sh run them as
# written, so the README cannot drift from what is checked.
set -euo pipefail
readme="$(dirname "$0")/../README.md"
awk '/^```/ {n++; next} n == 1 {sub(/ *#.*/, ""); if ($0 != "") print}' "$readme"

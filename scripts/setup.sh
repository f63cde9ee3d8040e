#!/usr/bin/env bash
# Installs what troupe builds and tests with, from Debian's packages only. Idempotent: packages
# already present are skipped, so repeated `make` runs cost nothing.
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libcaf-dev libssl-dev libucx-dev ucx-utils libboost-dev
  doctest-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev libtoml11-dev libcli11-dev
  libfmt-dev libdnnl-dev
  gnuplot-nox clang clang-format
  curl nodejs npm
)
# Node and npm (the openai client test) count as present when their commands are: a machine with
# NodeSource's nodejs has npm inside it, and Debian's npm package conflicts with that nodejs.
command_of() { case "$1" in nodejs) echo node ;; npm) echo npm ;; esac; }
missing=()
for p in "${packages[@]}"; do
  cmd=$(command_of "$p")
  [ -n "$cmd" ] && command -v "$cmd" >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"

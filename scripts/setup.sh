#!/usr/bin/env bash
# Installs what troupe builds and tests with, from Debian's packages only. Idempotent: packages
# already present are skipped, so repeated `make` runs cost nothing.
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libcaf-dev libucx-dev ucx-utils libboost-dev
  doctest-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev libtoml11-dev libcli11-dev
  libfmt-dev libdnnl-dev
  gnuplot-nox clang clang-format
  curl nodejs npm
)
missing=()
for p in "${packages[@]}"; do
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

#!/usr/bin/env bash
# Builds troupe with CUDA + NCCL and runs the GPU-dependent tests (the NCCL backend). Runs on any
# machine with an NVIDIA GPU, the CUDA toolkit and NCCL (default /usr/local/cuda).
# Usage: scripts/gpu-check.sh [build-dir]   (default build-cuda)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-cuda}
jobs=${JOBS:-$(nproc)}
nvidia-smi -L || { echo "gpu-check: no NVIDIA GPU visible (nvidia-smi failed)"; exit 1; }
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTROUPE_CUDA=ON
cmake --build "$build" -j"$jobs" --target comm_tests
# The NCCL cases print "SKIP nccl" when they could not run; on a GPU machine that is a failure.
out=$("$build"/bin/comm_tests -tc='nccl*' -s 2>&1) || { echo "$out"; exit 1; }
echo "$out" | tail -n 20
if echo "$out" | grep -q "SKIP nccl"; then
  echo "gpu-check: the NCCL tests were skipped although a GPU is present"
  exit 1
fi
echo "gpu-check: NCCL tests passed"

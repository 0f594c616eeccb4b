#!/usr/bin/env bash
# On the GPU machine (CUDA + PyTorch, no MLIR): build the runtime-only tree,
# then check every prepared kernel against the float64 reference, with
# compute-sanitizer memcheck and racecheck on each sm_90a kernel.
#   scripts/gpu/run.sh OUT_DIR [FILTERS]  (after scripts/gpu/prepare.sh here)
# SANITIZE= (empty) skips compute-sanitizer; FILTERS as run_gpu_checks.py --only.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-gpu-results}}
SANITIZE=${SANITIZE-1}
only=${2:-}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
cmake -G Ninja -S . -B build-rt -DATTN_RUNTIME_ONLY=ON -DATTN_ENABLE_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build-rt attn-exec attn_runtime_shared >/dev/null
PYTHONUNBUFFERED=1 python3 test/gpu/run_gpu_checks.py --exec build-rt/bin/attn-exec \
  --kernels gpu-kernels --out "$out" ${SANITIZE:+--sanitize} --only "$only" 2>&1 | tee "$out/log.txt" | grep -v '^{' 

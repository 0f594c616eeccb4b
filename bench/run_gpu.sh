#!/usr/bin/env bash
# On the GPU machine (CUDA, PyTorch, Triton, no MLIR, no network): build
# libattn_runtime.so (runtime-only tree, as scripts/gpu/run.sh), install carried
# wheels from .whl/ into /tmp/site if there are any, and run bench/bench.py.
#   bash bench/run_gpu.sh OUT [bench.py options, e.g. --only linear]
# Needs (carry them): gpu-kernels/ (scripts/gpu/prepare.sh here) and third_party/
# (nlohmann_json for the build; fla/ for the flash-linear-attention rows).
# Writes OUT/bench.{json,md,png,log}, OUT/gpu.txt and OUT/build.log.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/run_gpu.sh OUT [bench.py options]}
shift
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw --format=csv | tee "$out/gpu.txt"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
t0=$(date +%s)
{ cmake -G Ninja -S . -B build-rt -DATTN_RUNTIME_ONLY=ON -DATTN_ENABLE_TESTS=OFF -DCMAKE_BUILD_TYPE=Release &&
  ninja -C build-rt attn_runtime_shared; } >"$out/build.log" 2>&1 || {
  echo "runtime build failed (bench runs the peers only; ours will record the error):"; tail -20 "$out/build.log"; }
echo "runtime build: $(($(date +%s) - t0)) s"
export ATTN_RUNTIME_LIB=$PWD/build-rt/lib/libattn_runtime.so
export ATTN_COMMIT=${ATTN_COMMIT:-$(git rev-parse HEAD 2>/dev/null || true)}
set +e
PYTHONUNBUFFERED=1 python3 bench/bench.py --out "$out" "$@" 2>&1 | tee "$out/bench.log"
rc=${PIPESTATUS[0]}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw --format=csv,noheader | tee -a "$out/gpu.txt"
exit "$rc"

#!/usr/bin/env bash
# On the GPU machine (CUDA, numpy, no MLIR), after scripts/gpu/prepare.sh on the
# machine with the compiler (carry gpu-kernels and third_party): the tuning mode.
#   1. builds the runtime-only tree (build-rt: attn-exec, libattn_runtime.so);
#   2. checks every tuning candidate in gpu-kernels/tune (attn-compile
#      --tune-candidates: bench kernels dense D=128, dense D=64, causal D=128)
#      against the float64 reference, as scripts/gpu/run.sh does for the
#      default kernels: candidates are kernel shapes no other run verifies;
#   3. tunes each group at a benchmark shape (B=$TUNE_B, S=$TUNE_S, the spec's
#      heads) with attn-exec --kernel-dir and a fresh cache file: the timing
#      table (median of $TUNE_REPEAT launches per candidate after 3 warm-ups,
#      CUDA events, scratch outputs) and the chosen kernel, which it then runs;
#   4. runs the same again: the choice must come from the cache (nothing timed);
#   5. keeps the cache file (OUT/tuning.json) and a summary (OUT/summary.txt).
# Every step has its own time limit (a hung kernel cannot stall the run; the
# runtime also gives each candidate's launches 30 s, polling its CUDA events);
# exit status 1 when any step failed. TUNE_CHECKS=0 skips step 2, TUNE=0 steps 3-5
# (to split the work over two calls).
#   bash scripts/gpu/tune.sh OUT
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${1:?usage: scripts/gpu/tune.sh OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)
TUNE_B=${TUNE_B:-4}
TUNE_S=${TUNE_S:-4096}
TUNE_REPEAT=${TUNE_REPEAT:-20}
status=0
step() { echo "== $*" | tee -a "$out/summary.txt"; }
note() { echo "$*" | tee -a "$out/summary.txt"; }
: > "$out/summary.txt"

if [ ! -d gpu-kernels/tune ]; then
  note "no gpu-kernels/tune: run scripts/gpu/prepare.sh on the compiler machine and carry gpu-kernels"
  exit 1
fi
timeout 30 nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv \
  | tee "$out/gpu.txt"

step "build (runtime only)"
if ! timeout "${BUILD_TIMEOUT:-300}" bash -c '
    cmake -G Ninja -S . -B build-rt -DATTN_RUNTIME_ONLY=ON -DATTN_ENABLE_TESTS=OFF \
      -DCMAKE_BUILD_TYPE=Release && ninja -C build-rt attn-exec attn_runtime_shared' \
    > "$out/build.log" 2>&1; then
  note "build failed:"; tail -30 "$out/build.log"
  exit 1
fi
exe=$PWD/build-rt/bin/attn-exec

if [ "${TUNE_CHECKS:-1}" = 1 ]; then
  step "correctness of every candidate (test/gpu/run_gpu_checks.py)"
  PYTHONUNBUFFERED=1 timeout "${CHECK_TIMEOUT:-300}" python3 test/gpu/run_gpu_checks.py \
    --exec "$exe" --kernels gpu-kernels/tune --out "$out/checks" > "$out/checks.log" 2>&1
  rc=$?
  pass=$(grep -c '^PASS' "$out/checks.log"); fail=$(grep -c '^FAIL' "$out/checks.log")
  note "checks: exit $rc, $pass cases passed, $fail failed"
  grep '^FAIL' "$out/checks.log" | head -20 | tee -a "$out/summary.txt"
  [ "$rc" = 0 ] && [ "$fail" = 0 ] || status=1
fi
[ "${TUNE:-1}" = 1 ] || { note "tune.sh: exit $status (TUNE=0: no tuning)"; exit "$status"; }

export ATTN_TUNING_CACHE=$out/tuning.json
rm -f "$ATTN_TUNING_CACHE" "$ATTN_TUNING_CACHE.lock"
work=$(mktemp -d /tmp/attn-tune-XXXXXX)
trap 'rm -rf "$work"' EXIT
for group in gpu-kernels/tune/*/; do
  name=$(basename "$group")
  manifest=$(find "$group" -name '*.json' | sort | head -1)
  step "$name: inputs B=$TUNE_B S=$TUNE_S"
  if ! timeout 300 python3 - "$manifest" "$work/$name.in" "$TUNE_B" "$TUNE_S" <<'PY' >> "$out/summary.txt" 2>&1
import json, sys, os
import numpy as np
sys.path.insert(0, os.path.join("test", "exec"))
from attn_numpy import PySpec, make_inputs, save_inputs
man, dest, B, S = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
raw = json.load(open(man))["spec"]
spec = PySpec(raw)
shape = raw["shape"]
hq, hkv, d = shape["heads_q"], shape.get("heads_kv", shape["heads_q"]), shape["head_dim"]
dv = shape.get("head_dim_v", d)
files, _ = make_inputs(spec, np.random.default_rng(0), B, hq, hkv, S, S, d, dv)
save_inputs(dest, files)
print(f"inputs: B={B} Hq={hq} Hkv={hkv} S={S} D={d} Dv={dv}")
PY
  then
    note "$name: could not make inputs"; status=1; continue
  fi
  step "$name: tune (fresh cache)"
  timeout "${TUNE_TIMEOUT:-300}" "$exe" --kernel-dir "$group" --inputs "$work/$name.in" \
    --outputs "$work/$name.out" --device cuda --tune-repeat "$TUNE_REPEAT" \
    > "$out/tune_$name.txt" 2>&1
  rc=$?
  cat "$out/tune_$name.txt" | tee -a "$out/summary.txt"
  if [ "$rc" != 0 ] || ! grep -q 'source=timed' "$out/tune_$name.txt"; then
    note "$name: tuning failed (exit $rc)"; status=1; continue
  fi
  step "$name: again (must be a cache hit)"
  timeout 120 "$exe" --kernel-dir "$group" --inputs "$work/$name.in" \
    --outputs "$work/$name.out" --device cuda > "$out/tune_${name}_cached.txt" 2>&1
  rc=$?
  grep '^tuned:' "$out/tune_${name}_cached.txt" | tee -a "$out/summary.txt"
  if [ "$rc" != 0 ] || ! grep -q 'source=cache' "$out/tune_${name}_cached.txt"; then
    note "$name: the second run did not take the cached choice (exit $rc)"
    tail -5 "$out/tune_${name}_cached.txt"; status=1
  fi
  rm -rf "$work/$name.in" "$work/$name.out"
done
step "cache file $ATTN_TUNING_CACHE"
cat "$ATTN_TUNING_CACHE" 2>/dev/null | head -80 | tee -a "$out/summary.txt"
note "tune.sh: exit $status"
exit "$status"

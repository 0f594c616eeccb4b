#!/usr/bin/env bash
# One GPU call that builds, checks and times (after scripts/gpu/prepare.sh here;
# carry gpu-kernels and third_party):
#   1. scripts/gpu/run.sh: runtime-only build, correctness of the kernels
#      selected by $CHECKS (default: every tensor-core sm_90a kernel) against
#      float64; then compute-sanitizer memcheck + racecheck on $SANITIZE_KERNELS;
#   2. SASS evidence for the Hopper kernels (HGMMA, UTMALDG counts) and their
#      resource usage;
#   3. the PyTorch binding's GPU tests (test/gpu/test_torch_ops.py);
#   4. (with $FIRST_CALL_ARGS) first-call latency, ours vs FlexAttention;
#   5. bench/run_gpu.sh with $BENCH_ARGS (default: dense and causal at 4k).
# Each step has its own time limit so one slow step cannot take the others.
#   bash scripts/gpu/all.sh OUT      (everything ends up in OUT/results.tar.gz)
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: scripts/gpu/all.sh OUT}
mkdir -p "$out"
SANITIZE= timeout "${CHECK_TIMEOUT:-300}" bash scripts/gpu/run.sh "$out/checks" "${CHECKS:-tc_sm_90a/}"
echo "checks: exit $?"
# compute-sanitizer (memcheck, racecheck) is slow: only on $SANITIZE_KERNELS.
SANITIZE=1 timeout "${SANITIZE_TIMEOUT:-150}" bash scripts/gpu/run.sh "$out/sanitizer" \
  "${SANITIZE_KERNELS:-tc_sm_90a/dense,tc_sm_90a/causal}" | tail -8
echo "sanitizer: exit $?"
{
  for cubin in gpu-kernels/tc_sm_90a/*.cubin gpu-kernels/bench/*.cubin; do
    [ -f "$cubin" ] || continue
    sass=$(cuobjdump -sass "$cubin" 2>/dev/null)
    echo "$cubin: HGMMA $(grep -c HGMMA <<<"$sass"), UTMALDG $(grep -c UTMALDG <<<"$sass"), HMMA $(grep -c 'HMMA' <<<"$sass"), LDL/STL $(grep -cE 'LDL|STL' <<<"$sass")"
  done
} > "$out/sass.txt" 2>&1
cat "$out/sass.txt"
# The PyTorch binding's GPU tests (kernels prebuilt by prepare.sh).
if [ "${TORCH_TESTS:-1}" = 1 ] && [ -f test/gpu/test_torch_ops.py ] && [ -d gpu-kernels/torch ]; then
  ATTN_RUNTIME_LIB=$PWD/build-rt/lib/libattn_runtime.so ATTN_KERNEL_PATH=$PWD/gpu-kernels/torch/sm_90a \
    timeout "${TORCH_TIMEOUT:-150}" python3 -m pytest -q -x test/gpu/test_torch_ops.py -p no:cacheprovider \
    > "$out/torch_tests.txt" 2>&1
  echo "torch tests: exit $?"; tail -15 "$out/torch_tests.txt"
fi
# First-call latency of our PyTorch op next to FlexAttention's ($FIRST_CALL_ARGS,
# e.g. "--variants causal --repeats 1"; skipped when empty).
if [ -n "${FIRST_CALL_ARGS:-}" ]; then
  read -r -a first_args <<<"$FIRST_CALL_ARGS"
  ATTN_RUNTIME_LIB=$PWD/build-rt/lib/libattn_runtime.so timeout "${FIRST_CALL_TIMEOUT:-90}" \
    python3 bench/first_call_latency.py --kernels gpu-kernels/torch/sm_90a --out "$out/first_call" \
    "${first_args[@]}" 2>&1 | tail -12
  echo "first call: exit $?"
fi
read -r -a bench_args <<<"${BENCH_ARGS:---only dense,causal --seq 4096}"
timeout "${BENCH_TIMEOUT:-240}" bash bench/run_gpu.sh "$out/bench" "${bench_args[@]}"
echo "bench: exit $?"
# The device tool brings back only a few files per call: one archive.
tar czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")" && rm -rf "$out" &&
  mkdir -p "$out" && mv "$out.tar.gz" "$out/results.tar.gz"

#!/usr/bin/env bash
# The runtime (what ships to the GPU machine and sits under the C API, DLPack and
# the PyTorch binding: spec parser, manifests, npy I/O, the float64 reference,
# argument checks) under AddressSanitizer + UndefinedBehaviorSanitizer: a
# runtime-only build (no MLIR, ~6 min on 2 cores) in build-asan/, its unit
# tests, and the execution tests on --device reference. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
cmake -S . -B build-asan -G Ninja -DATTN_RUNTIME_ONLY=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
ninja -C build-asan -j2 attn-unit-tests attn-exec >/dev/null
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
./build-asan/bin/attn-unit-tests --gtest_brief=1
# --device cuda with a spec is the full build's (test_unavailable_devices checks
# its message); the runtime-only build says something else there.
ASAN_OPTIONS=detect_leaks=0 ATTN_EXEC="$PWD/build-asan/bin/attn-exec" ATTN_EXEC_DEVICES=reference \
  python3 -m pytest -q test/exec -k "not test_unavailable_devices"
echo "sanitizers: runtime unit tests and reference exec tests clean"

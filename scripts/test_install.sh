#!/usr/bin/env bash
# The installed package works for outside programs: install the runtime,
# generate a kernel library with attn-compile, and build examples/cpp against
# both with find_package(Attn). (Running it needs a GPU; CI only builds it.)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install build --prefix "$work/prefix" >/dev/null
build/bin/attn-compile examples/causal.json -o "$work/kernels" --header "$work/kernels/kernels.h" --cubin -q
cmake -G Ninja -S examples/cpp -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DATTN_KERNELS_DIR="$work/kernels" -DCUDAToolkit_ROOT="${CUDA_HOME:-/usr/local/cuda}" >/dev/null
ninja -C "$work/build" >/dev/null
test -x "$work/build/run_causal"
echo "install test: examples/cpp builds against the installed attn runtime and a generated kernel library"

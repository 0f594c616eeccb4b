#!/usr/bin/env bash
# The second README command: builds if needed, then runs the whole test suite:
# lit (dialect, passes, specs), GoogleTest (parsers, npy, reference) and the
# execution tests (attn-exec cpu and reference against numpy float64), the install
# test, and the runtime under ASan + UBSan (scripts/test_sanitizers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ninja -C build check-attn
./build/bin/attn-unit-tests --gtest_brief=1
./build/bin/attn-jit-tests --gtest_brief=1
ATTN_EXEC="$PWD/build/bin/attn-exec" python3 -m pytest -q test/exec test/python
bash scripts/test_install.sh
bash scripts/test_sanitizers.sh

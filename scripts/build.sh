#!/usr/bin/env bash
# Configures (once) and builds everything into build/ with Ninja, two jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  cmake --preset default >/dev/null
fi
ninja -C build -j2

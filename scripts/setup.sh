#!/usr/bin/env bash
# The first README command: install, build, and compile every example variant
# as far as the pipeline goes today, printing a summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
python3 scripts/compile_examples.py

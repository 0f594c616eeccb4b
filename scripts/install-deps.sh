#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test the project.
# The CUDA toolkit (/usr/local/cuda or $CUDA_HOME) is the one prerequisite
# this script does not install: it is not in Debian's main archive.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  cmake ninja-build g++ ccache lld \
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools \
  nlohmann-json3-dev libgtest-dev python3 python3-pip >/dev/null
# Python test helpers only (no torch: the CPU tests need numpy and pytest).
python3 -m pip install --quiet --disable-pip-version-check numpy pytest ml_dtypes \
  || python3 -m pip install --quiet --break-system-packages numpy pytest ml_dtypes

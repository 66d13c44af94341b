#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, end-to-end
# with real BPF, browser) with ctest. Run as root: the end-to-end tests load
# BPF programs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd build
ctest --output-on-failure --timeout 600 "$@"

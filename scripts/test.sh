#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the unit,
# end-to-end (real BPF) and browser tests with ctest in build/; then the
# unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer
# (scripts/sanitize.sh, build-asan/); then each libFuzzer target for a
# short bounded run on its seed corpus and regressions (scripts/fuzz.sh,
# build-fuzz/, FUZZ_SECONDS each, default 15). Run as root: the end-to-end
# tests load BPF programs. Arguments go to the first ctest (e.g. -L unit);
# STACKWATCH_QUICK=1 skips the sanitizer and fuzz stages (local iteration
# only: CI runs them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure --timeout 600 "$@")
if [[ "${STACKWATCH_QUICK:-0}" == 1 ]]; then
  echo "test: STACKWATCH_QUICK=1: sanitizer and fuzz stages skipped" >&2
  exit 0
fi
bash scripts/sanitize.sh
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" bash scripts/fuzz.sh
echo "test: all stages passed (ctest, sanitizers, fuzzing)"

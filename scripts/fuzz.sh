#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz/ (tests/fuzz/) and
# runs each for a bounded time on its seed corpus and its regressions
# (ctest -L fuzz). FUZZ_SECONDS=N sets the time per target (default 20);
# FUZZ_SEED=N the libFuzzer seed (default 1: the same inputs every run, as
# CI wants; 0: a random one, for exploring).
# New inputs that libFuzzer finds go to build-fuzz/tests/fuzz/found/, crashing
# ones to build-fuzz/tests/fuzz/artifacts/: copy a crashing input into
# tests/fuzz/regressions/<target>/ so it is replayed on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTACKWATCH_FUZZ=ON -DSTACKWATCH_FUZZ_SECONDS="${FUZZ_SECONDS:-20}" -DSTACKWATCH_FUZZ_SEED="${FUZZ_SEED:-1}" \
  -DSTACKWATCH_BPF=OFF -DSTACKWATCH_BUILD_TESTS=OFF -DSTACKWATCH_BUILD_BENCH=OFF "$@" >/dev/null
cmake --build "$build" -j"${JOBS:-$(nproc)}" --target fuzz_targets
cd "$build"
ctest -L fuzz --output-on-failure

#!/usr/bin/env bash
# Builds the tree with AddressSanitizer and UndefinedBehaviorSanitizer into
# build-asan/ and runs the unit tests there. Exits non-zero on any finding:
# a failing test, or a sanitizer report from any process a test started
# (reports go to build-asan/sanitizer-logs/, so one from a child process
# whose exit status a test ignores still counts).
# Usage: scripts/sanitize.sh [extra cmake -D options]; JOBS=N to limit the build.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-asan
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTACKWATCH_SANITIZE=address,undefined -DSTACKWATCH_BPF=OFF -DSTACKWATCH_BUILD_BENCH=OFF "$@" >/dev/null
cmake --build "$build" -j"${JOBS:-$(nproc)}"

logs="$PWD/$build/sanitizer-logs"
rm -rf "$logs"
mkdir -p "$logs"
# halt_on_error + abort_on_error: the first finding kills the process, so the
# test fails; detect_leaks: a leak is a finding too (LeakSanitizer, at exit).
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:log_path=$logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
status=0
(cd "$build" && ctest -L unit --output-on-failure --timeout 600) || status=$?

shopt -s nullglob
reports=("$logs"/*)
if [[ ${#reports[@]} -gt 0 ]]; then
  echo "stackwatch: ${#reports[@]} sanitizer report(s):" >&2
  for r in "${reports[@]}"; do
    echo "== $r" >&2
    cat "$r" >&2
  done
  status=1
fi
if [[ $status -eq 0 ]]; then
  echo "sanitize: unit tests clean under address,undefined"
fi
exit $status

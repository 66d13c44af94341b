#!/usr/bin/env bash
# Installs what is missing, builds, and profiles this machine for 10 seconds
# while the bundled demo workload runs; then shows where the time went.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "Building stackwatch..."
bash scripts/build.sh
out=stackwatch-out
build/demo/stackwatch-demo 12 &
demo=$!
trap 'kill $demo 2>/dev/null || true' EXIT
sleep 0.5
build/profiler/stackwatch record -d 10 -i 5 --top 3 -o "$out"
wait $demo || true
trap - EXIT
echo
echo "== Hottest on-CPU paths of the demo (samples) =="
grep '^stackwatch-demo;' "$out/oncpu.folded" | sort -t' ' -k2 -nr | head -5 || true
if [[ -s "$out/offcpu.folded" ]]; then
  echo
  echo "== Longest off-CPU paths of the demo (microseconds blocked) =="
  grep '^stackwatch-demo;' "$out/offcpu.folded" | sort -t' ' -k2 -nr | head -5 || true
fi
echo
echo "Outputs in $out/:"
ls -1 "$out"

#!/usr/bin/env bash
# Runs the browser test: installs its node_modules (playwright-core, which
# drives the system's Chromium; no browser download) into WORKDIR if needed,
# draws the graphs with the stackwatch binary, then runs flamegraph_test.js.
#
# usage: run_browser_test.sh STACKWATCH_BINARY WORKDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stackwatch=$1
work=$2
mkdir -p "$work"
if [[ ! -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
  echo "FAIL: no Chromium at ${CHROMIUM:-/usr/bin/chromium} (install the Debian package chromium)" >&2
  exit 1
fi
# Reinstall when the lock file changes; npm ci installs exactly what it pins.
if ! cmp -s "$here/package-lock.json" "$work/package-lock.json" || [[ ! -d $work/node_modules/playwright-core ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
"$stackwatch" flamegraph "$here/known.folded" -o "$work/graph.svg" --title "Browser test"
"$stackwatch" flamegraph "$here/known.folded" -o "$work/icicle.svg" --inverted --colors cool
cp "$here/flamegraph_test.js" "$work/"
cd "$work"
exec node flamegraph_test.js graph.svg icicle.svg screenshot.png

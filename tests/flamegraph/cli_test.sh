#!/usr/bin/env bash
# `stackwatch flamegraph` end to end, without a browser: SVG from folded and
# bpftrace input, differential, icicle, pprof, stdin/stdout, and one-line
# errors a user can act on. Fails on the first broken check.
#
# usage: cli_test.sh STACKWATCH_BINARY WORKDIR
set -euo pipefail
sw=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

printf 'app;main;work 60\napp;main;idle 40\n' > cur.folded
printf 'app;main;work 20\napp;main;idle 80\n' > base.folded

"$sw" flamegraph cur.folded -o plain.svg --title 'On <CPU>' --subtitle 'pid 1 & friends'
grep -q '<text id="title" x="600.00" y="24.00">On &lt;CPU&gt;</text>' plain.svg || fail "title not escaped"
grep -q '>pid 1 &amp; friends</text>' plain.svg || fail "subtitle missing"
grep -q '<title>work (60 samples, 60.00%)</title>' plain.svg || fail "work frame missing"
[[ $(grep -c '^<g><title>' plain.svg) -eq 5 ]] || fail "expected 5 frames"

# Differential: work grew (red), idle shrank (blue); widths from cur.folded.
"$sw" flamegraph cur.folded --diff base.folded -o diff.svg
grep -q '<title>work (60 samples, 60.00%; +40.00%)</title><rect [^>]*fill="rgb(255,0,0)"' diff.svg || fail "work not red"
grep -q '<title>idle (40 samples, 40.00%; -40.00%)</title><rect [^>]*fill="rgb(0,0,255)"' diff.svg || fail "idle not blue"

# Off-CPU: microseconds; icicle: root on top.
"$sw" flamegraph cur.folded --colors cool --inverted -o off.svg
grep -q '<title>work (60 us, 60.00%)</title>' off.svg || fail "off-CPU graphs say us"
grep -q 'inv: true' off.svg || fail "icicle flag not in the script config"

# stdin to stdout.
"$sw" flamegraph - < cur.folded > stdout.svg
grep -q '<title>all (100 samples, 100.00%)</title>' stdout.svg || fail "stdin/stdout"

# bpftrace map output.
printf 'Attaching 1 probe...\n\n@[\n    do_syscall_64+56\n,\n    write+20\n    main+42\n, app]: 7\n' > bt.txt
"$sw" flamegraph bt.txt -o bt.svg
grep -q '<title>do_syscall_64 (7 samples, 100.00%)</title>' bt.svg || fail "bpftrace input"

# pprof: gzip magic.
"$sw" flamegraph cur.folded --format pprof -o prof.pb.gz
[[ $(head -c2 prof.pb.gz | od -An -tx1 | tr -d ' ') == 1f8b ]] || fail "pprof is not gzipped"

# Errors: one line, non-zero, naming the problem.
printf 'app;main 1\nbroken line\n' > bad.folded
if "$sw" flamegraph bad.folded -o x.svg 2> err.txt; then fail "bad input accepted"; fi
[[ $(wc -l < err.txt) -eq 1 ]] || fail "error is not one line: $(cat err.txt)"
grep -q 'bad.folded: line 2' err.txt || fail "error does not name file and line: $(cat err.txt)"
[[ ! -e x.svg ]] || fail "an output was written for bad input"
if "$sw" flamegraph missing.folded 2> err.txt; then fail "missing file accepted"; fi
grep -q 'cannot open missing.folded' err.txt || fail "missing file message: $(cat err.txt)"
if "$sw" flamegraph cur.folded --colors purple 2> err.txt; then fail "bad palette accepted"; fi
echo "cli test passed"

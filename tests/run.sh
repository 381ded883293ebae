#!/usr/bin/env bash
# Runs every test and ends with one line "N passed, N failed".
#   unit tests:        $BUILD/tests/test_*   (cmocka; each test case counts)
#   integration tests: tests/integration/*.sh  (each "ok"/"not ok" line counts)
# A test that exits 77 is skipped (e.g. a dataset that is missing) and says why.
# Usage: tests/run.sh [FILTER]   (FILTER: substring of the test file name)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export LOGSIFT="$PWD/$BUILD/logsift" LSF_TOOLS="$PWD/$BUILD/tools" LSF_BUILD="$PWD/$BUILD"
export LSF_SHARED="${LSF_SHARED:-$(cd .. && pwd)/shared}"
filter=${1:-}
passed=0 failed=0 skipped=0
failures=()

count_output() { # $1 = name, $2 = log file, $3 = exit status
    local name=$1 log=$2 rc=$3 p f
    if [ "$rc" = 77 ]; then
        skipped=$((skipped + 1))
        echo "SKIP $name: $(tail -n 1 "$log")"
        return
    fi
    # cmocka: "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)"
    p=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    # TAP-style lines from scripts and tools
    local tp tf
    tp=$(grep -c '^ok ' "$log")
    tf=$(grep -c '^not ok ' "$log")
    p=$(( ${p:-0} + tp )); f=$(( ${f:-0} + tf ))
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi   # crashed or failed without saying
    if [ "$p" = 0 ] && [ "$f" = 0 ]; then p=1; fi     # a test that passed silently
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" != 0 ]; then
        failures+=("$name")
        echo "FAIL $name ($p passed, $f failed); log:"
        sed 's/^/    /' "$log" | tail -n 40
    else
        echo "PASS $name ($p)"
    fi
}

logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=unit/$(basename "$t")
    case "$name" in *"$filter"*) ;; *) continue ;; esac
    log="$logdir/$(basename "$t").log"
    (cd tests && timeout 300 "../$t") >"$log" 2>&1
    count_output "$name" "$log" $?
done

for t in tests/integration/*.sh; do
    [ -f "$t" ] || continue
    [ "$(basename "$t")" = lib.sh ] && continue   # helpers, sourced by the tests
    name=integration/$(basename "$t" .sh)
    case "$name" in *"$filter"*) ;; *) continue ;; esac
    log="$logdir/$(basename "$t").log"
    timeout 600 bash "$t" >"$log" 2>&1
    count_output "$name" "$log" $?
done

[ "$skipped" = 0 ] || echo "($skipped skipped)"
[ ${#failures[@]} = 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

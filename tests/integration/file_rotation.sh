# file_rotation.sh - the file input follows a log through rename-and-create and
# copytruncate rotations (every LINES/10 lines) while logsift is killed with
# SIGKILL in the middle and restarted: every line arrives, and the only
# duplicates are re-reads of the undelivered tail, which logsift counts
# (`replayed`). LSF_ROTATION_LINES sets LINES (default 100000; `make
# test-soak` runs the full 1,000,000).
. "$(dirname "$0")/lib.sh"
LINES=${LSF_ROTATION_LINES:-100000}
EVERY=$((LINES / 10))
SECS=${LSF_ROTATION_SECONDS:-$((LINES / 20000 + 3))}
mkdir -p "$T/logs"
log=$T/logs/app.log
: >"$log"

conf() { # $1 = run number
    cat <<YAML
log_level: debug
state_dir: $T
inputs:
  - type: file
    name: app
    path: $log
    follow: true
    poll_interval: 50ms
    rotate_wait: 2s
    checkpoint_interval: 200ms
    format: raw
sinks:
  - type: file
    path: $T/out$1.json
YAML
}

lsf_start run1 < <(conf 1) || finish
python3 "$LIB_DIR/../tools/rotwriter.py" "$log" "$LINES" "$EVERY" "$SECS" >"$T/writer.out" 2>&1 &
WPID=$!
BG_PIDS+=("$WPID")
# SIGKILL once about 40% of the lines are out (mid-stream, rotations behind and ahead).
wait_lines "$T/out1.json" $((LINES * 4 / 10)) 60
stop_pid "${LSF_PID[run1]}" 5 KILL
check "run 1 was killed by SIGKILL" test "$STOP_RC" = 137
sleep 0.5 # the writer goes on (and may rotate) while logsift is down
lsf_start run2 < <(conf 2) || finish
wait "$WPID"
note "$(tail -n 1 "$T/writer.out")"
check "the writer rotated the log 9 times" grep -q ', 9 rotations' "$T/writer.out"

# count LINES: every seq present; prints "missing dups maxcount" for the two outputs
tally() {
    python3 - "$LINES" "$T/out1.json" "$T/out2.json" <<'PY'
import json, re, sys
total = int(sys.argv[1])
seen = [0] * total
for path in sys.argv[2:]:
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        continue
    for line in f:
        try:
            m = re.match(r"seq=(\d+) ", json.loads(line)["message"])
        except (ValueError, KeyError):
            continue  # a line torn by SIGKILL: its record was never acknowledged
        if m:
            seen[int(m.group(1))] += 1
print(sum(1 for c in seen if c == 0), sum(c - 1 for c in seen if c > 1), max(seen))
PY
}
done_all() { [ "$(tally | cut -d' ' -f1)" = 0 ]; }
wait_until 120 done_all
settle "$T/out2.json"
read -r missing dups maxc < <(tally)
check "all $LINES lines arrived (missing: $missing)" test "$missing" = 0
check "no line arrived more than twice (max $maxc)" test "$maxc" -le 2
lsf_stop run2
check "run 2 exits 0 on SIGTERM" test "$LSF_RC" = 0
replayed=$(counter "$T/run2.err" '^app\.replayed$')
note "duplicates: $dups; counted as replayed by run 2: $replayed"
check "duplicates ($dups) are only the re-read undelivered tail counted as replayed ($replayed)" \
    test "$dups" -le "$replayed"
check "run 2 resumed from a checkpoint, not from the start" test "$replayed" -lt $((LINES / 2))
check "copytruncate rotations were followed through the copy" \
    test "$(counter "$T/run1.err" '^app\.copytruncate_followed$')$(counter "$T/run2.err" '^app\.copytruncate_followed$')" != 00
check "no line was truncated or split" test "$(counter "$T/run2.err" '^app\.truncated$')" = 0
finish

# reopen.sh - the file sink reopens its path on SIGHUP (logrotate's
# "move, then signal"): lines before the move stay in the moved file, lines
# after the reopen land in a new file at the path, none lost or doubled; a
# SIGHUP without a move appends to the same file (never truncates it).
. "$(dirname "$0")/lib.sh"
need_sendlines

lsf_start ro <<EOF || finish
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/tcp.port
sinks:
  - type: file
    path: $T/out.json
EOF
out=$T/out.json
TP=$(port "$T/tcp.port")
PID=${LSF_PID[ro]}
send() { "$SENDLINES" --tcp "127.0.0.1:$TP" --count "$1" --prefix "$2" >>"$T/send.out" 2>&1; }

send 100 before
wait_lines "$out" 100 20
mv "$out" "$out.1"
kill -HUP "$PID"

# The reopen happens on logsift's main thread some time after the signal: send
# probe lines (one connection, one every 50 ms) until one lands in the new file.
exec 7<>"/dev/tcp/127.0.0.1/$TP"
probes=0
probe() {
    printf '<13>Mar  3 10:00:01 host app[1]: probe conn=0 seq=%d\n' "$probes" >&7
    probes=$((probes + 1))
    has_lines "$out" 1
}
wait_until 15 probe
check "reopen: after SIGHUP a new file appears at the path" test -s "$out"
exec 7>&-
note "$probes probe lines until the reopen showed"

send 200 after
wait_until 20 has_events 200 "$out" 'message~=after conn='
settle "$out"
check "reopen: lines before the move are all in the moved file" ev seq "$out.1" before 1 100
check "reopen: lines after the reopen are all in the new file" ev seq "$out" after 1 200
check "reopen: no line before the move went to the new file" \
    test "$(ev count "$out" 'message~=before conn=')" = 0
cat "$out.1" "$out" >"$T/all.json"
check "reopen: every probe line is in one of the files, once" ev seq "$T/all.json" probe 1 "$probes"
all_valid_json "reopen (moved file)" "$out.1"
all_valid_json "reopen (new file)" "$out"

# SIGHUP with nothing moved: the same file continues.
n=$(lines "$out")
kill -HUP "$PID"
# (the reopen may race with the next lines: they must land in the file either way)
send 50 again
wait_until 20 has_events 50 "$out" 'message~=again conn='
check "reopen: SIGHUP without a move keeps the earlier lines" ev seq "$out" after 1 200
check "reopen: ... and appends the new ones" ev seq "$out" again 1 50
check "reopen: file grew by exactly 50 lines" test "$(lines "$out")" = $((n + 50))

check "reopen: logsift still running after two SIGHUPs" alive "$PID"
lsf_stop ro
check "reopen: logsift exits 0 on SIGTERM" test "$LSF_RC" = 0
finish

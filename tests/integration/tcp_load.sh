# tcp_load.sh - 10,000 lines over 8 concurrent TCP connections arrive exactly
# once and in order per connection, newline and octet-counted, into inputs with
# framing auto, newline and octet_counted; all four senders run at once.
. "$(dirname "$0")/lib.sh"
need_sendlines

lsf_start load <<EOF || finish
log_level: debug
inputs:
  - type: syslog_tcp
    name: auto
    listen: "127.0.0.1:0"
    port_file: $T/auto.port
  - type: syslog_tcp
    name: newline
    framing: newline
    listen: "127.0.0.1:0"
    port_file: $T/newline.port
  - type: syslog_tcp
    name: octet
    framing: octet_counted
    listen: "127.0.0.1:0"
    port_file: $T/octet.port
sinks:
  - type: file
    path: $T/out.json
EOF
out=$T/out.json
N=10000 CONNS=8 PER=$((10000 / 8))

# name|port file|sendlines options
runs=("auto_nl|auto|" "auto_oc|auto|--octet" "nl|newline|" "oc|octet|--octet")
pids=()
for r in "${runs[@]}"; do
    IFS='|' read -r prefix pf opt <<<"$r"
    # shellcheck disable=SC2086
    timeout 120 "$SENDLINES" --tcp "127.0.0.1:$(port "$T/$pf.port")" --conns $CONNS --count $N \
        --prefix "$prefix" $opt >"$T/send_$prefix.out" 2>&1 &
    pids+=($!)
done
i=0
for r in "${runs[@]}"; do
    wait "${pids[$i]}" || not_ok "sendlines ${r%%|*} failed: $(tail -n 1 "$T/send_${r%%|*}.out")"
    i=$((i + 1))
done

wait_lines "$out" $((4 * N)) 90
settle "$out"
check "load: $((4 * N)) lines in, as many events out" test "$(lines "$out")" = $((4 * N))
for r in "${runs[@]}"; do
    prefix=${r%%|*}
    check "load $prefix: every conn/seq pair exactly once, in order per connection" \
        ev seq "$out" "$prefix" $CONNS $PER
done
expect_event "load: fields of a sendlines line" "$out" 'message=nl conn=3 seq=7' -- \
    host.name=host process.name=app 'process.pid:=1' 'log.syslog.priority:=13' \
    'log.source.address~/^127\.0\.0\.1:[0-9]+$' 'tags!'
all_valid_json "load" "$out"

lsf_stop load
check "load: logsift exits 0 on SIGTERM" test "$LSF_RC" = 0
for c in framing_errors truncated incomplete; do
    check "load: counter $c is 0" test "$(counter "$T/load.err" "\\.$c\$")" = 0
done
check "load: counters say $((4 * N)) received" test "$(counter "$T/load.err" '\.received$')" = $((4 * N))
finish

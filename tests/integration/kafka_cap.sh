# kafka_cap.sh - the spool's size cap holds the inputs instead of dropping:
# with the brokers away and spool_max_size 1 MiB, a TCP sender of 20,000
# events is stopped (logsift stops reading) once the spool is full; the spool
# stays near its cap; when the brokers come back, the spool drains, the sender
# finishes, and every event arrives exactly once and in order.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/../tools/kafka_helpers.sh"
need_kafka

N=20000
note "runs: $N events into a 1 MiB spool with the brokers down, then the brokers come back"
broker_start --topic logs:1
SPOOL=$T/spool
lsf_start cap <<EOF || finish
log_level: debug
queue_batches: 8
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/cap.port
sinks:
  - type: kafka
    name: k
    brokers: [$BOOT]
    topic: logs
    spool_dir: $SPOOL
    spool_max_size: 1MiB
    spool_segment_size: 64KiB
    retry_interval: 200ms
EOF
check "cap: the brokers went down" broker_down
"$SENDLINES" --tcp "127.0.0.1:$(port "$T/cap.port")" --count $N --prefix cap >"$T/send.out" 2>&1 &
SEND_PID=$!
BG_PIDS+=("$SEND_PID")
full() { grep -q 'reached spool_max_size' "$T/cap.err"; }
check "cap: logsift says the spool is full and holds the inputs" wait_until 30 full
sleep 1
bytes=$(spool_stat "$SPOOL" bytes)
records=$(spool_stat "$SPOOL" records)
note "spool while held: $records records, $bytes bytes (cap 1048576)"
check "cap: the sender is held, not finished" alive "$SEND_PID"
check "cap: the spool stays within its cap (plus what librdkafka handed back)" \
    test "$bytes" -le $((1048576 + 262144))
check "cap: not every event fit" test "$records" -lt $N
check "cap: the brokers came back" broker_up
wait "$SEND_PID" || not_ok "sendlines: $(tail -n 1 "$T/send.out")"
wait_topic logs $N 60
wait_until 20 spool_empty "$SPOOL"
topic_dump logs "$T/logs.json"
check "cap: all $N events arrived exactly once, in order" ids "$T/logs.json" cap $N 1
lsf_stop cap
check "cap: logsift exits 0" test "$LSF_RC" = 0
check "cap: spool_full counted" test "$(counter "$T/cap.err" '^k\.spool_full$')" -ge 1
check "cap: nothing failed" test "$(counter "$T/cap.err" '^k\.failed$')" = 0
finish

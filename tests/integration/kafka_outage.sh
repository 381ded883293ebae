# kafka_outage.sh - the brokers go away in the middle of a stream and come
# back: every event arrives, none twice, in order per connection; the spool
# was used while they were away and is empty (no segment files) afterwards.
# Default: 60,000 events at 10,000/s with the brokers down for 3 s from the
# 2nd second; LSF_KAFKA_FULL=1 (make test-kafka-full): 200,000 events at
# 10,000/s with the brokers down for 10 s from the 7th second. Either way the
# stream goes on after they are back.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/../tools/kafka_helpers.sh"
need_kafka

if [ -n "${LSF_KAFKA_FULL:-}" ]; then
    N=200000 RATE=10000 DOWN=10
else
    N=60000 RATE=10000 DOWN=3
fi
CONNS=2
note "runs: $N events at $RATE/s over $CONNS TCP connections; the brokers are down for ${DOWN}s in the middle"
broker_start --topic logs:4
SPOOL=$T/spool

lsf_start outage <<EOF || finish
log_level: debug
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/outage.port
sinks:
  - type: kafka
    name: k
    brokers: [$BOOT]
    topic: logs
    spool_dir: $SPOOL
    retry_interval: 500ms
EOF
"$SENDLINES" --tcp "127.0.0.1:$(port "$T/outage.port")" --conns $CONNS --count "$N" \
    --rate "$RATE" --prefix out >"$T/send.out" 2>&1 &
SEND_PID=$!
BG_PIDS+=("$SEND_PID")
# Down when about a third has been sent.
sleep "$(python3 -c "print($N / $RATE / 3)")"
check "outage: the brokers went down" broker_down
sleep "$DOWN"
spooled=$(spool_stat "$SPOOL" records)
note "records in the spool after ${DOWN}s without brokers: $spooled"
check "outage: events were spooled while the brokers were away" test "${spooled:-0}" -gt 0
check "outage: the brokers came back" broker_up
wait "$SEND_PID" || not_ok "sendlines: $(tail -n 1 "$T/send.out")"
wait_topic logs "$N" 90
wait_until 20 spool_empty "$SPOOL"
topic_dump logs "$T/logs.json"
check "outage: all $N events arrived, each once, in order per connection" ids "$T/logs.json" out "$N" $CONNS
check "outage: the spool is empty afterwards" test "$(spool_stat "$SPOOL" records)" = 0
check "outage: no segment file is left" test -z "$(find "$SPOOL" -name '*.spool')"
lsf_stop outage
check "outage: logsift exits 0" test "$LSF_RC" = 0
sp=$(counter "$T/outage.err" '^k\.spooled$')
rp=$(counter "$T/outage.err" '^k\.replayed$')
note "counters: spooled $sp, replayed $rp, produced directly $(counter "$T/outage.err" '^k\.produced$'), outages $(counter "$T/outage.err" '^k\.outages$')"
check "outage: every spooled event was replayed" test "$sp" -gt 0 -a "$rp" = "$sp"
check "outage: delivered counts every event once" test "$(counter "$T/outage.err" '^k\.delivered$')" = "$N"
check "outage: nothing failed" test "$(counter "$T/outage.err" '^k\.failed$')" = 0
check "outage: logsift said it was spooling" grep -q 'spooling to' "$T/outage.err"
check "outage: logsift said it replayed the spool" grep -q 'spool replayed' "$T/outage.err"
finish

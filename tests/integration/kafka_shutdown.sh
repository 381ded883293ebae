# kafka_shutdown.sh - a clean shutdown does not wait for ever on a slow
# broker: with every answer 3 s late and flush_timeout 1s, SIGTERM returns
# within a few seconds, exit 0, and what the broker had not confirmed is in
# the spool (in-flight messages flagged maybe-sent). The next start delivers
# it: every event arrives; duplicates only among the maybe-sent ones.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/../tools/kafka_helpers.sh"
need_kafka

N=2000
note "runs: $N events to a broker answering 3 s late, SIGTERM with flush_timeout 1s, restart"
broker_start --topic logs:1
SPOOL=$T/spool
cat >"$T/sd.conf" <<EOF
log_level: debug
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/sd.port
sinks:
  - type: kafka
    name: k
    brokers: [$BOOT]
    topic: logs
    spool_dir: $SPOOL
    spool_after: 30s
    flush_timeout: 1s
EOF
lsf_start sd1 <"$T/sd.conf" || finish
# Connected first, then slow.
echo '<13>Mar  3 10:00:01 host app[1]: warm-up' | send_tcp "$(port "$T/sd.port")"
wait_topic logs 1 20
check "shutdown: the broker answers 3 s late" broker_ctl "rtt all 3000"
"$SENDLINES" --tcp "127.0.0.1:$(port "$T/sd.port")" --count $N --prefix sd >"$T/send.out" 2>&1 ||
    not_ok "sendlines: $(tail -n 1 "$T/send.out")"
sleep 0.5
t0=$(now_ms)
lsf_stop sd1 20
took=$(($(now_ms) - t0))
note "SIGTERM to exit: $took ms"
check "shutdown: logsift exits 0" test "$LSF_RC" = 0
check "shutdown: it did not wait for the slow broker (under 8 s)" test "$took" -lt 8000
S=$(spool_stat "$SPOOL" records)
M=$(spool_stat "$SPOOL" maybe_sent)
note "spool after the shutdown: $S records, $M maybe sent"
check "shutdown: what was not confirmed is in the spool" test "${S:-0}" -gt 0
check "shutdown: logsift said so" grep -q "records wait in the spool" "$T/sd1.err"
broker_ctl "rtt all 0"
rm -f "$T/sd.port"
lsf_start sd2 <"$T/sd.conf" || finish
wait_until 30 spool_empty "$SPOOL"
wait_topic logs $((N + 1)) 30
topic_dump logs "$T/logs.json"
out=$(ids "$T/logs.json" sd $N 1 --allow-dups)
rc=$?
printf '%s\n' "$out" | grep '^#'
DUPS=$(printf '%s\n' "$out" | sed -n 's/^DUPS=//p')
note "duplicates: $DUPS (maybe sent: $M)"
if [ "$rc" = 0 ]; then ok "shutdown: every event arrived after the restart"; else not_ok "shutdown: every event arrived after the restart"; fi
check "shutdown: duplicates only among the maybe-sent" test "$DUPS" -le "$M"
lsf_stop sd2
check "shutdown: the second run exits 0" test "$LSF_RC" = 0
finish

# kafka_kill.sh - SIGKILL while events are spooled, restart, delivery.
#  1. 10,000 events go to Kafka; the brokers go away; 30,000 more are
#     spooled; logsift is killed with SIGKILL.
#  2. The brokers come back; logsift restarts and replays the spool; it is
#     killed again as soon as the replay has committed part of the spool.
#  3. logsift restarts again and delivers the rest.
# Every event must arrive. Duplicates may only be events that were in flight
# at a kill: messages purged from librdkafka when the brokers went away that
# may have reached them (the spool's maybe_sent), and records the replay had
# delivered but not yet committed when it was killed. The test prints both
# and the duplicates it found.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/../tools/kafka_helpers.sh"
need_kafka

N1=10000 N2=30000 CONNS=2
note "runs: $N1 events delivered, $N2 spooled with the brokers down, SIGKILL, restart with the brokers back, SIGKILL during the replay, restart"
broker_start --topic logs:4
SPOOL=$T/spool
cat >"$T/kill.conf" <<EOF
log_level: debug
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/kill.port
sinks:
  - type: kafka
    name: k
    brokers: [$BOOT]
    topic: logs
    spool_dir: $SPOOL
    spool_segment_size: 256KiB
    retry_interval: 200ms
    kafka:
      batch.num.messages: 200
EOF
start() { rm -f "$T/kill.port"; lsf_start "$1" <"$T/kill.conf"; }
send() { # PREFIX COUNT
    "$SENDLINES" --tcp "127.0.0.1:$(port "$T/kill.port")" --conns $CONNS --count "$2" \
        --prefix "$1" >"$T/send-$1.out" 2>&1 || not_ok "sendlines $1: $(tail -n 1 "$T/send-$1.out")"
}
records() { spool_stat "$SPOOL" records; }
stable_at_least() { # N: the spool holds at least N records and did not change for 300 ms
    local a b
    a=$(records)
    sleep 0.3
    b=$(records)
    [ "${a:-0}" -ge "$1" ] && [ "$a" = "$b" ]
}

start run1 || finish
send before $N1
wait_topic logs $N1 30
check "kill: the brokers went down" broker_down
send spooled $N2
wait_until 30 stable_at_least $N2
S1=$(records)
M1=$(spool_stat "$SPOOL" maybe_sent)
note "spool before the first SIGKILL: $S1 records ($M1 maybe sent)"
check "kill: all $N2 events are in the spool before the kill" test "$S1" -ge $N2
stop_pid "${LSF_PID[run1]}" 5 KILL
check "kill: the spool survived SIGKILL" test "$(records)" = "$S1"

# A slower broker (50 ms per request) so the replay takes long enough to be
# killed in the middle.
check "kill: the broker answers 50 ms late" broker_ctl "rtt all 50"
check "kill: the brokers came back" broker_up
start run2 || finish
committed_some() { local r; r=$(records); [ -n "$r" ] && [ "$r" -lt "$S1" ]; }
wait_until 30 committed_some
stop_pid "${LSF_PID[run2]}" 5 KILL
R2=$(records)
broker_ctl "rtt all 0"
T2=$(topic_count logs)
# What the replay delivered but had not committed when it was killed.
INFLIGHT=$((T2 - N1 - (S1 - R2)))
[ "$INFLIGHT" -lt 0 ] && INFLIGHT=0
note "second SIGKILL during the replay: $R2 records left, ~$INFLIGHT delivered but not yet committed"

start run3 || finish
wait_until 30 spool_empty "$SPOOL"
wait_topic logs $((N1 + N2)) 30
topic_dump logs "$T/logs.json"
check "kill: every event before the outage arrived exactly once" ids "$T/logs.json" before $N1 $CONNS
out=$(ids "$T/logs.json" spooled $N2 $CONNS --allow-dups)
rc=$?
printf '%s\n' "$out" | grep '^#'
DUPS=$(printf '%s\n' "$out" | sed -n 's/^DUPS=//p')
note "duplicates: $DUPS (in flight at the kills: $M1 maybe sent at the outage + $INFLIGHT replayed but not committed)"
if [ "$rc" = 0 ]; then ok "kill: every spooled event arrived"; else not_ok "kill: every spooled event arrived"; fi
check "kill: duplicates are only events that were in flight" test "$DUPS" -le $((M1 + INFLIGHT))
lsf_stop run3
check "kill: the last run exits 0" test "$LSF_RC" = 0
check "kill: the spool is empty at the end" test -z "$(find "$SPOOL" -name '*.spool')"
check "kill: the restart said it found spooled records" grep -q 'left in .* by the last run' "$T/run3.err"
finish

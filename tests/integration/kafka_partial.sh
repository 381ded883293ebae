# kafka_partial.sh - one broker of three goes away: the leader of the
# partition logsift writes to. Messages for it wait, but the other brokers
# answer, so the sink does not declare an outage and does not spool: it says
# that messages wait although the brokers answer, librdkafka keeps retrying,
# and when the broker is back every event arrives exactly once, in order.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/../tools/kafka_helpers.sh"
need_kafka

N1=1000 N2=5000
note "runs: 3 brokers; the leader of the written partition goes away for 4 s while $N2 events are sent"
broker_start --brokers 3 --topic logs:3
SPOOL=$T/spool
lsf_start partial <<EOF || finish
log_level: debug
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/partial.port
sinks:
  - type: kafka
    name: k
    brokers: [$BOOT]
    topic: logs
    spool_dir: $SPOOL
    spool_after: 1s
EOF
send() { # PREFIX COUNT
    "$SENDLINES" --tcp "127.0.0.1:$(port "$T/partial.port")" --count "$2" --prefix "$1" \
        >"$T/send-$1.out" 2>&1 || not_ok "sendlines $1: $(tail -n 1 "$T/send-$1.out")"
}
send one $N1
wait_topic logs $N1 30
# Every line has host "host", so one partition holds them: find its leader.
part=$(timeout 20 "$KCAT" -b "$BOOT" -C -t logs -o beginning -c 1 -e -q -f '%p')
leader=$(timeout 20 "$KCAT" -b "$BOOT" -L -t logs | sed -n "s/.*partition $part, leader \([0-9]*\),.*/\1/p")
note "the events go to partition $part, led by broker $leader"
check "partial: the leader went away" broker_ctl "down $leader"
send two $N2
waiting() { grep -q 'messages unconfirmed for .* although the brokers answer' "$T/partial.err"; }
check "partial: logsift says messages wait although the brokers answer" wait_until 20 waiting
sleep 2
check "partial: no outage was declared" not grep -q 'spooling to' "$T/partial.err"
check "partial: the leader came back" broker_ctl "up $leader"
wait_topic logs $((N1 + N2)) 60
topic_dump logs "$T/logs.json"
check "partial: the events before arrived exactly once" ids "$T/logs.json" one $N1 1
check "partial: the events sent while the leader was away arrived exactly once, in order" \
    ids "$T/logs.json" two $N2 1
lsf_stop partial
check "partial: logsift exits 0" test "$LSF_RC" = 0
check "partial: nothing was spooled" test "$(counter "$T/partial.err" '^k\.spooled$')" = 0
check "partial: every event delivered" \
    test "$(counter "$T/partial.err" '^k\.delivered$')" = $((N1 + N2))
finish

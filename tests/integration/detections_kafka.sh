# detections_kafka.sh - alerts through Kafka: a running logsift with the
# default packs' detections publishes to the project's test broker; the kafka
# sink routes the alerts (event.kind: alert) to the alerts topic, and
# `logsift tail --brokers --topic` shows them:
#  - --from-beginning: the alert already in the topic;
#  - by default from the end: only alerts produced after tail started;
#  - --json prints the alert as published.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/../tools/kafka_helpers.sh"
need_kafka
PACKS=$(cd "$LIB_DIR/../../rules/packs" && pwd)
broker_start --topic events:2 --topic alerts:2

burst() { # IP START_SECOND: ten failed ssh logins in ten seconds
    local i
    for i in $(seq 0 9); do
        printf '<38>1 2026-03-03T12:00:%02dZ web1 sshd 42 - - Failed password for root from %s port %d ssh2\n' \
            $(($2 + i)) "$1" $((40000 + i))
    done
}

lsf_start k <<EOF || finish
log_level: debug
state_dir: $T
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/k.port
transforms:
  - {type: rules, packs: [$PACKS]}
  - {type: detections, packs: [$PACKS], disable: [host.silent]}
sinks:
  - type: kafka
    brokers: [$BOOT]
    topic: events
    alerts_topic: alerts
EOF
burst 203.0.113.50 0 | send_tcp "$(port "$T/k.port")"
wait_topic alerts 1 30
wait_topic events 10 30
check "kafka: the alert went to the alerts topic, the events to the events topic" \
    test "$(topic_count alerts)" = 1 -a "$(topic_count events)" = 10

out=$(timeout 30 "$LOGSIFT" tail --brokers "$BOOT" --topic alerts --from-beginning --max 1 2>"$T/tail1.err")
note "$out"
check "tail --from-beginning: the alert in the topic" \
    grep -q '^2026-03-03 12:00:09Z  HIGH      ssh.bruteforce  source.ip=203.0.113.50  count=10' <<<"$out"

# from the end: start tail, wait until it follows, then make a new alert
bg "$LOGSIFT" tail --brokers "$BOOT" --topic alerts --max 1 --json >"$T/tail2.out" 2>"$T/tail2.err"
TAIL=$BG_PID
wait_until 30 grep -q 'following alerts' "$T/tail2.err" || not_ok "tail: following the topic"
burst 203.0.113.51 20 | send_tcp "$(port "$T/k.port")"
wait_until 30 not alive "$TAIL"
sed 's/^/# /' "$T/tail2.err"
expect_event "tail from the end: only the new alert, as JSON" "$T/tail2.out" rule.id=ssh.bruteforce \
    -- alert.key=source.ip=203.0.113.51 event.kind=alert alert.count:=10
check "tail from the end: nothing else" test "$(lines "$T/tail2.out")" = 1
lsf_stop k
check "logsift exits 0" test "$LSF_RC" = 0
finish

# kafka_sink.sh - the kafka sink against the project's test broker, read back
# with kcat (an independent client):
#  - 100,000 events over TCP syslog (4 connections) reach the events topic
#    exactly once each and in order per connection, keyed by host.name;
#  - routing: event.kind alert -> alerts topic, pipeline_error -> dead-letter
#    topic; topic templates from fields, a missing field -> `_unknown`
#    (counted); the key from another field;
#  - a message Kafka refuses for good lands, wrapped with the reason, in the
#    dead-letter topic (topic authorization failed) or, when that cannot take
#    it either (larger than message.max.bytes), in the dead-letter file;
#    counted, nothing silently lost.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/../tools/kafka_helpers.sh"
need_kafka

N=${LSF_KAFKA_EXACT_N:-100000}
CONNS=4
note "runs: $N events over $CONNS TCP connections into one broker, then routing and dead letters"
broker_start --topic logs:4

lsf_start exact <<EOF || finish
log_level: debug
state_dir: $T
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/exact.port
sinks:
  - type: kafka
    name: k
    brokers: [$BOOT]
    topic: logs
EOF
"$SENDLINES" --tcp "127.0.0.1:$(port "$T/exact.port")" --conns $CONNS --count "$N" --prefix once \
    >"$T/send.out" 2>&1 || not_ok "sendlines: $(tail -n 1 "$T/send.out")"
wait_topic logs "$N" 60
topic_dump logs "$T/logs.json"
check "exactly once: $N events in the topic, each once, in order per connection" \
    ids "$T/logs.json" once "$N" $CONNS
check "exactly once: the topic holds nothing else" test "$(lines "$T/logs.json")" = "$N"
keys=$(timeout 60 "$KCAT" -b "$BOOT" -C -t logs -e -q -f '%k\n' | sort | uniq -c | awk '{print $2"="$1}')
check "exactly once: every message is keyed by host.name" test "$keys" = "host=$N"
lsf_stop exact
check "exactly once: logsift exits 0" test "$LSF_RC" = 0
for c in produced delivered; do
    check "exactly once: counter $c is $N" test "$(counter "$T/exact.err" "^k\\.$c\$")" = "$N"
done
for c in spooled failed dead_lettered; do
    check "exactly once: counter $c is 0" test "$(counter "$T/exact.err" "^k\\.$c\$")" = 0
done

# ---- routing, templates, keys, dead letters ------------------------------------
lsf_start route <<EOF || finish
log_level: debug
state_dir: $T
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/route.port
sinks:
  - type: kafka
    name: r
    brokers: [$BOOT]
    topic: "ev-{host.name}"
    alerts_topic: "al-{process.name}"
    dead_letter_topic: dead
    key_field: user.name
    dead_letter_file: $T/dead.jsonl
    kafka:
      message.max.bytes: 2000
EOF
big=$(head -c 3000 /dev/zero | tr '\0' 'x')
# The broker refuses the next produce request for good.
broker_ctl "produce_error TOPIC_AUTHORIZATION_FAILED"
echo '<13>Mar  3 10:00:01 forbidden app[1]: nobody may write here' | send_tcp "$(port "$T/route.port")"
wait_topic dead 1 20
{
    echo '<13>Mar  3 10:00:01 web1 app[1]: plain line'
    echo '<13>Mar  3 10:00:01 web1 app[1]: {"event":{"kind":"alert"},"user":{"name":"bob"},"message":"alert one"}'
    echo '<13>Mar  3 10:00:01 web2 app[1]: {"event":{"kind":"pipeline_error"},"message":"broken"}'
    echo '{"message":"no host at all"}'
    echo "<13>Mar  3 10:00:01 web1 app[1]: big $big"
} | send_tcp "$(port "$T/route.port")"
wait_topic ev-web1 1 20
wait_topic ev-_unknown 1 20
wait_topic al-app 1 20
wait_topic dead 2 20
topic_dump ev-web1 "$T/ev-web1.json"
topic_dump ev-_unknown "$T/ev-unknown.json"
topic_dump al-app "$T/al-app.json"
topic_dump dead "$T/dead.json"
expect_event "template: the plain line went to ev-web1" "$T/ev-web1.json" 'message=plain line' -- host.name=web1
expect_event "template: a missing field becomes _unknown" "$T/ev-unknown.json" 'message=no host at all' -- 'host.name!'
expect_event "routing: event.kind alert goes to the alerts topic" "$T/al-app.json" 'message=alert one' -- event.kind=alert
expect_event "routing: event.kind pipeline_error goes to the dead-letter topic" "$T/dead.json" 'message=broken'
expect_event "dead letter: a message refused for good goes to the dead-letter topic with its reason" \
    "$T/dead.json" 'error.code=TOPIC_AUTHORIZATION_FAILED' -- 'kafka.topic=ev-forbidden' \
    'event.kind=pipeline_error' 'event.original~=nobody may write here'
check "key: the alert is keyed by user.name" \
    test "$(timeout 20 "$KCAT" -b "$BOOT" -C -t al-app -e -q -f '%k')" = bob
wait_until 10 test -s "$T/dead.jsonl"
expect_event "dead letter: the oversized message is in the file with its reason" "$T/dead.jsonl" \
    'error.code=MSG_SIZE_TOO_LARGE' -- 'kafka.topic=ev-web1' 'event.original~=big xxxx' \
    'error.message?'
lsf_stop route
check "routing: logsift exits 0" test "$LSF_RC" = 0
check "routing: topic_field_missing counted once" test "$(counter "$T/route.err" '^r\.topic_field_missing$')" = 1
check "routing: dead_lettered counted twice (topic and file)" \
    test "$(counter "$T/route.err" '^r\.dead_lettered$')" = 2
check "routing: 4 delivered, none failed" \
    test "$(counter "$T/route.err" '^r\.delivered$')/$(counter "$T/route.err" '^r\.failed$')" = 4/0
check "routing: key_missing counted for the events without user.name" \
    test "$(counter "$T/route.err" '^r\.key_missing$')" = 5
finish

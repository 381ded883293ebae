# kafka_config.sh - Kafka settings that are wrong give a clear error at
# start-up, with the file:line:column of the mistake, or a documented
# fallback:
#  - a broker list entry that is not host:port, an unknown librdkafka
#    property, an invalid property value, a property that has its own key,
#    acks other than all with the idempotent producer, a bad topic template,
#    a kafka input without topics: logsift run exits 1 with file:line:col;
#  - brokers nobody answers at (a valid address with nothing listening):
#    logsift starts, says it cannot reach Kafka, spools every event (no loss)
#    and says at exit that they wait in the spool;
#  - `logsift help kafka` lists the settings.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/../tools/kafka_helpers.sh"
need_kafka

# expect_error NAME LINE COL PATTERN: `logsift run` on $T/NAME.yaml fails with
# "NAME.yaml:LINE:COL: ...PATTERN...".
expect_error() {
    local name=$1 want="$T/$1.yaml:$2:$3: " pat=$4 out rc
    out=$(timeout 20 "$LOGSIFT" run -c "$T/$name.yaml" 2>&1 >/dev/null)
    rc=$?
    printf '%s\n' "$out" | sed 's/^/# /' | head -n 3
    if [ "$rc" = 1 ] && printf '%s\n' "$out" | grep -qF -- "$want" &&
        printf '%s\n' "$out" | grep -q -- "$pat"; then
        ok "config: $name is refused at $2:$3 ($pat)"
    else
        not_ok "config: $name is refused at $2:$3 ($pat) (exit $rc)"
    fi
}
conf() { # NAME, YAML on stdin after a TCP input and "sinks:\n  - type: kafka"
    {
        printf 'state_dir: %s\ninputs:\n  - type: syslog_tcp\n    listen: "127.0.0.1:0"\nsinks:\n  - type: kafka\n' "$T"
        cat
    } >"$T/$1.yaml"
}

conf bad_broker <<'EOF'
    brokers: [127.0.0.1:9092, kafka2]
EOF
expect_error bad_broker 7 31 "brokers: 'kafka2': want host:port"

conf bad_port <<'EOF'
    brokers: ["kafka1:99999"]
EOF
expect_error bad_port 7 15 "the port must be 1-65535"

conf unknown_prop <<'EOF'
    brokers: [127.0.0.1:9092]
    kafka:
      security.protocol: PLAINTEXT
      no.such.property: 1
EOF
expect_error unknown_prop 10 7 "unknown librdkafka property 'no.such.property'"

conf bad_value <<'EOF'
    brokers: [127.0.0.1:9092]
    kafka:
      message.timeout.ms: soon
EOF
expect_error bad_value 9 7 "kafka: message.timeout.ms: "

conf nested_bad <<'EOF'
    brokers: [127.0.0.1:9092]
    kafka:
      ssl:
        nonsense: x
EOF
expect_error nested_bad 10 9 "unknown librdkafka property 'ssl.nonsense'"

conf reserved <<'EOF'
    brokers: [127.0.0.1:9092]
    kafka:
      acks: "1"
EOF
expect_error reserved 9 7 "'acks' is set by this stage's 'acks' key"

conf acks_idem <<'EOF'
    brokers: [127.0.0.1:9092]
    acks: "1"
EOF
expect_error acks_idem 8 11 "needs idempotence: false"

conf bad_template <<'EOF'
    brokers: [127.0.0.1:9092]
    topic: "logs-{host.name"
EOF
expect_error bad_template 8 12 "'{' without a closing '}'"

conf bad_topic_char <<'EOF'
    brokers: [127.0.0.1:9092]
    alerts_topic: "alerts/high"
EOF
expect_error bad_topic_char 8 19 "'/' is not allowed in a Kafka topic name"

cat >"$T/no_topics.yaml" <<EOF
inputs:
  - type: kafka
    brokers: [127.0.0.1:9092]
sinks:
  - type: stdout
EOF
expect_error no_topics 2 5 "missing required key 'topics'"

cat >"$T/input_reserved.yaml" <<EOF
inputs:
  - type: kafka
    brokers: [127.0.0.1:9092]
    topics: [raw]
    kafka:
      enable.auto.commit: true
sinks:
  - type: stdout
EOF
expect_error input_reserved 6 7 "cannot be set here: logsift commits offsets once their events were delivered"

check "config: logsift help kafka lists the settings" \
    sh -c "'$LOGSIFT' help kafka | grep -q 'spool_max_size' && '$LOGSIFT' help kafka | grep -q 'consumer group'"

# ---- a valid address where nothing answers ----------------------------------------
# Port 1 on loopback: connection refused at once.
lsf_start nobroker <<EOF || finish
log_level: debug
state_dir: $T
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/nobroker.port
sinks:
  - type: kafka
    name: k
    brokers: [127.0.0.1:1]
    spool_dir: $T/nb-spool
EOF
"$SENDLINES" --tcp "127.0.0.1:$(port "$T/nobroker.port")" --count 500 --prefix nb >"$T/send.out" 2>&1 ||
    not_ok "sendlines: $(tail -n 1 "$T/send.out")"
has_500() { [ "$(spool_stat "$T/nb-spool" records)" = 500 ]; }
check "no broker: every event is spooled" wait_until 20 has_500
check "no broker: logsift says Kafka cannot be reached and where it spools" \
    grep -q "k: Kafka is not taking messages (.*); spooling to $T/nb-spool" "$T/nobroker.err"
check "no broker: the reason names the address" grep -q "127.0.0.1:1" "$T/nobroker.err"
lsf_stop nobroker
check "no broker: logsift still exits 0 on SIGTERM" test "$LSF_RC" = 0
check "no broker: at exit it says the events wait in the spool" \
    grep -q "500 records wait in the spool" "$T/nobroker.err"
check "no broker: nothing failed" test "$(counter "$T/nobroker.err" '^k\.failed$')" = 0
finish

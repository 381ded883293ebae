# kafka_consume.sh - the kafka input commits an offset only after its events
# were delivered: a worker killed with SIGKILL in the middle of a stream and
# started again loses nothing (the events after its last commit are read
# again: duplicates, counted, never gaps); kafka.* metadata fields when asked.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/../tools/kafka_helpers.sh"
need_kafka

N=20000 RATE=5000
note "runs: $N events at $RATE/s into raw (3 partitions); the consuming worker is killed at 2 s and restarted"
broker_start --topic raw:3
edge_start raw "" || finish
cat >"$T/w.conf" <<EOF
log_level: debug
inputs:
  - type: kafka
    name: consume
    brokers: [$BOOT]
    topics: [raw]
    group: consume-test
    metadata: true
    commit_interval: 100ms
    kafka:
      session.timeout.ms: 6000
sinks:
  - type: file
    path: $T/out.json
EOF
lsf_start w1 <"$T/w.conf" || finish
assigned() { grep -q 'consume: assigned 3 partition' "$T/$1.err"; }
wait_until 30 assigned w1
"$SENDLINES" --tcp "127.0.0.1:$(port "$T/edge.port")" --count $N --rate $RATE --prefix c \
    >"$T/send.out" 2>&1 &
SEND_PID=$!
BG_PIDS+=("$SEND_PID")
sleep 2
before=$(lines "$T/out.json")
stop_pid "${LSF_PID[w1]}" 5 KILL
note "worker killed after writing $before events"
check "consume: the worker was killed in the middle of the stream" \
    test "$before" -gt 0 -a "$before" -lt $N
lsf_start w2 <"$T/w.conf" || finish
wait "$SEND_PID" || not_ok "sendlines: $(tail -n 1 "$T/send.out")"
complete() { ids "$T/out.json" c "$N" 1 --allow-dups >/dev/null; }
wait_until 60 complete
out=$(ids "$T/out.json" c $N 1 --allow-dups)
rc=$?
printf '%s\n' "$out" | grep '^#'
if [ "$rc" = 0 ]; then ok "consume: no event lost across the SIGKILL"; else not_ok "consume: no event lost across the SIGKILL"; fi
note "events read again after the kill (after the last commit): $(printf '%s\n' "$out" | sed -n 's/^DUPS=//p')"
expect_event "consume: metadata fields name topic, partition and offset" "$T/out.json" \
    'message=c conn=0 seq=7' -- 'kafka.topic=raw' 'kafka.partition?' 'kafka.offset?'
lsf_stop w2
check "consume: the restarted worker exits 0" test "$LSF_RC" = 0
check "consume: it committed offsets" test "$(counter "$T/w2.err" '^consume\.offsets_committed$')" -gt 0
finish

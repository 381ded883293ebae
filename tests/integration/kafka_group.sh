# kafka_group.sh - the scale-out topology: an edge logsift takes syslog over
# TCP and publishes to the 6-partition topic `raw` keyed by host.name; two
# worker logsifts consume `raw` as one consumer group (kafka input) and write
# JSON lines. Together the workers deliver every event exactly once; when one
# is stopped, the other takes over its partitions and delivers what follows,
# again exactly once (the stopped worker commits what it delivered before
# letting its partitions go).
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/../tools/kafka_helpers.sh"
need_kafka

N1=20000 N2=20000 HOSTS=12
note "runs: edge -> raw (6 partitions) -> 2 workers in one group; $N1 events, one worker stops, $N2 more"
broker_start --topic raw:6

# Lines from $HOSTS hosts, so the keys spread over the partitions.
mkline() { # PREFIX COUNT FILE
    python3 -c '
import sys
p, n, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for s in range(n):
    print(f"<13>Mar  3 10:00:01 host{s % h} app[1]: {p} conn=0 seq={s}")
' "$1" "$2" $HOSTS >"$3"
}
mkline grp1 $N1 "$T/lines1"
mkline grp2 $N2 "$T/lines2"

edge_start raw || finish

worker() { # NAME
    lsf_start "$1" <<EOF
log_level: debug
inputs:
  - type: kafka
    name: consume
    brokers: [$BOOT]
    topics: [raw]
    group: workers
    commit_interval: 200ms
    kafka:
      # How long the group waits for a member that vanished; the default
      # (45 s) would dominate the test.
      session.timeout.ms: 6000
      heartbeat.interval.ms: 500
sinks:
  - type: file
    path: $T/$1.json
EOF
}
# The partitions a worker holds after its last rebalance.
held() { sed -n 's/.*consume: assigned \([0-9]*\) partition.*/\1/p' "$T/$1.err" | tail -n 1; }
revoked_last() { # NAME: its last rebalance line is a revocation
    grep -E 'consume: (assigned|[0-9]+ partition\(s\) revoked)' "$T/$1.err" | tail -n 1 | grep -q revoked
}
split_evenly() { ! revoked_last a && ! revoked_last b && [ "$(held a)" = 3 ] && [ "$(held b)" = 3 ]; }
all_to_a() { ! revoked_last a && [ "$(held a)" = 6 ]; }
total() { echo $(($(lines "$T/a.json") + $(lines "$T/b.json"))); }
has_total() { [ "$(total)" -ge "$1" ]; }

worker a || finish
worker b || finish
check "group: the two workers split the 6 partitions 3 and 3" wait_until 60 split_evenly

send() { # FILE COUNT
    "$SENDLINES" --tcp "127.0.0.1:$(port "$T/edge.port")" --file "$1" --count "$2" \
        >"$T/send.out" 2>&1 || not_ok "sendlines: $(tail -n 1 "$T/send.out")"
}
send "$T/lines1" $N1
wait_until 60 has_total $N1
settle "$T/a.json"
settle "$T/b.json"
cat "$T/a.json" "$T/b.json" >"$T/all1.json"
note "worker a wrote $(lines "$T/a.json"), worker b $(lines "$T/b.json")"
check "group: together the workers delivered all $N1 events exactly once" ids "$T/all1.json" grp1 $N1 1
check "group: both workers took a share" test "$(lines "$T/a.json")" -gt 0 -a "$(lines "$T/b.json")" -gt 0
b_before=$(lines "$T/b.json")

lsf_stop b
check "group: the stopped worker exits 0" test "$LSF_RC" = 0
check "group: the remaining worker takes all 6 partitions" wait_until 60 all_to_a
send "$T/lines2" $N2
wait_until 60 has_total $((N1 + N2))
settle "$T/a.json"
cat "$T/a.json" "$T/b.json" >"$T/all2.json"
check "group: after the stop, all $N2 new events arrived exactly once" ids "$T/all2.json" grp2 $N2 1
check "group: the first $N1 are still there exactly once (nothing read again)" ids "$T/all2.json" grp1 $N1 1
check "group: the stopped worker got nothing more" test "$(lines "$T/b.json")" = "$b_before"
lsf_stop a
check "group: the last worker exits 0" test "$LSF_RC" = 0
for w in a b; do
    check "group: worker $w committed offsets, no ack failed, no commit error" \
        test "$(counter "$T/$w.err" '^consume\.offsets_committed$')" -gt 0 \
        -a "$(counter "$T/$w.err" '^consume\.ack_failed$')" = 0 \
        -a "$(counter "$T/$w.err" '^consume\.commit_errors$')" = 0
done
lsf_stop edge
check "group: the edge delivered every event" \
    test "$(counter "$T/edge.err" '^edge\.delivered$')" = $((N1 + N2))
finish

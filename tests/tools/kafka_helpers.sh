# kafka_helpers.sh - helpers for the Kafka integration tests (source it after
# tests/integration/lib.sh; not a test itself).
#
#   need_kafka                  skip the script unless kcat and the test broker exist
#   broker_start [ARGS...]      start tests/tools/kafka_broker (ARGS: --topic NAME:P ...);
#                               sets BROKER_PID and BOOT (its bootstrap list)
#   broker_down / broker_up     every broker goes away / comes back (SIGUSR1 / SIGUSR2)
#   broker_ctl COMMAND...       runs control-file commands (see kafka_broker.c), waits for them
#   edge_start TOPIC [KEY]      an "edge" logsift: syslog over TCP (port in $T/edge.port)
#                               to the kafka sink `edge` publishing to TOPIC keyed by KEY
#                               (default host.name; "" for none)
#   topic_dump TOPIC FILE       every message of TOPIC (one per line) into FILE, via kcat
#   topic_count TOPIC           number of messages in TOPIC (sum of partition end offsets)
#   wait_topic TOPIC N [SECS]   until TOPIC holds at least N messages
#   spool_stat DIR KEY          a number from `logsift spool DIR` (records, maybe_sent, ...)
#   spool_empty DIR             the spool holds no record (for wait_until)
#   ids FILE PREFIX N CONNS [--allow-dups]
#                               checks that the messages "PREFIX conn=C seq=S" of FILE
#                               (JSON events) are exactly sendlines' N lines over CONNS
#                               connections, each once; prints found/distinct/duplicates/
#                               missing and how many came out of order per connection;
#                               sets nothing, prints DUPS=n last
KCAT=${KCAT:-kcat}
BROKER="$LSF_TOOLS/kafka_broker"

need_kafka() {
    command -v "$KCAT" >/dev/null || skip_all "kcat is not installed (Debian package kcat; make deps)"
    [ -x "$BROKER" ] || skip_all "the test broker is not built ($BROKER); run make build-tests"
    need_sendlines
}

broker_start() {
    rm -f "$T/boot"
    bg "$BROKER" --bootstrap-file "$T/boot" --control-file "$T/broker.ctl" "$@" \
        >"$T/broker.out" 2>"$T/broker.err"
    BROKER_PID=$BG_PID
    if ! wait_until 10 test -s "$T/boot"; then
        not_ok "kafka test broker started"
        sed 's/^/# /' "$T/broker.err"
        finish
    fi
    BOOT=$(cat "$T/boot")
}

# broker_say PATTERN: waits until the broker logged PATTERN n times (n = $2, default 1).
broker_logged() { [ "$(grep -c -- "$1" "$T/broker.err")" -ge "${2:-1}" ]; }
broker_down() {
    local n
    n=$(($(grep -c 'all brokers down' "$T/broker.err") + 1))
    kill -USR1 "$BROKER_PID"
    wait_until 5 broker_logged 'all brokers down' "$n"
}
broker_up() {
    local n
    n=$(($(grep -c 'all brokers up' "$T/broker.err") + 1))
    kill -USR2 "$BROKER_PID"
    wait_until 5 broker_logged 'all brokers up' "$n"
}

broker_ctl() {
    rm -f "$T/broker.ctl.done"
    printf '%s\n' "$@" >"$T/broker.ctl.tmp" && mv "$T/broker.ctl.tmp" "$T/broker.ctl"
    wait_until 5 test -e "$T/broker.ctl.done"
}

edge_start() {
    lsf_start edge <<EOF
log_level: debug
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/edge.port
sinks:
  - type: kafka
    name: edge
    brokers: [$BOOT]
    topic: $1
    key_field: "${2-host.name}"
    spool_dir: $T/edge-spool
EOF
}

topic_dump() {
    timeout 120 "$KCAT" -b "$BOOT" -C -t "$1" -e -q -f '%s\n' >"$2" 2>"$T/kcat.err"
}

topic_count() {
    local out
    out=$(timeout 20 "$KCAT" -b "$BOOT" -L -t "$1" 2>/dev/null | sed -n 's/.*partition \([0-9]*\),.*/\1/p')
    local total=0 p off
    for p in $out; do
        off=$(timeout 20 "$KCAT" -b "$BOOT" -Q -t "$1:$p:-1" 2>/dev/null | sed -n 's/.*offset \([0-9-]*\).*/\1/p')
        [ -n "$off" ] && [ "$off" -gt 0 ] && total=$((total + off))
    done
    echo "$total"
}
has_topic() { [ "$(topic_count "$1")" -ge "$2" ]; }
wait_topic() {
    wait_until "${3:-60}" has_topic "$1" "$2" && return 0
    note "waited ${3:-60}s for $2 messages in $1, have $(topic_count "$1")"
    return 1
}

spool_stat() {
    "$LOGSIFT" spool "$1" 2>/dev/null | awk -v k="$2" '$1 == k { print $2 }'
}

spool_empty() { [ "$(spool_stat "$1" records)" = 0 ]; }

ids() {
    python3 - "$@" <<'EOF'
import json, re, sys
path, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
allow_dups = "--allow-dups" in sys.argv[4:]
pat = re.compile(re.escape(prefix) + r" conn=(\d+) seq=(\d+)$")
seen, found, last, disorder = {}, 0, {}, 0
with open(path, "rb") as f:
    for line in f:
        m = pat.search(json.loads(line).get("message", ""))
        if not m:
            continue
        found += 1
        key = (int(m.group(1)), int(m.group(2)))
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 1:
            if key[1] < last.get(key[0], -1):
                disorder += 1
            last[key[0]] = key[1]
conns = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4].isdigit() else 1
want = {(c, s) for c in range(conns) for s in range(n // conns + (1 if c < n % conns else 0))}
dups = sum(v - 1 for v in seen.values())
missing = len(want - set(seen))
extra = len(set(seen) - want)
print(f"# {found} events with '{prefix}': {len(seen)} distinct, {dups} duplicates, "
      f"{missing} missing, {extra} unexpected, {disorder} out of order")
print(f"DUPS={dups}")
sys.exit(0 if missing == 0 and extra == 0 and len(seen) == n and (allow_dups or dups == 0) else 1)
EOF
}

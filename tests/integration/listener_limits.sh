# listener_limits.sh - per-listener limits, each counted when it acts: TCP and
# UDP allow-lists of source networks, the TCP rate limit per source address
# (the sender is paused, nothing is lost), the UDP rate limit (datagrams over
# it are dropped and counted), the unix_dgram input standing in for
# /dev/log (logger -u), and multiline on a TCP connection (closed, and held
# open until the flush timeout).
. "$(dirname "$0")/lib.sh"
need_sendlines
lsf_start lim <<EOF || finish
log_level: debug
inputs:
  - type: syslog_tcp
    name: tcp_denied
    listen: "127.0.0.1:0"
    port_file: $T/tcp_denied.port
    allow: ["10.0.0.0/8", "2001:db8::/32"]
  - type: syslog_tcp
    name: tcp_allowed
    listen: "127.0.0.1:0"
    port_file: $T/tcp_allowed.port
    allow: ["192.0.2.0/24", "127.0.0.0/8"]
  - type: syslog_tcp
    name: tcp_rate
    listen: "127.0.0.1:0"
    port_file: $T/tcp_rate.port
    rate_limit: 1000
    rate_burst: 100
  - type: syslog_udp
    name: udp_denied
    listen: "127.0.0.1:0"
    port_file: $T/udp_denied.port
    allow: 10.1.2.3
  - type: syslog_udp
    name: udp_rate
    listen: "127.0.0.1:0"
    port_file: $T/udp_rate.port
    rate_limit: 50
    rate_burst: 100
  - type: syslog_tcp
    name: tcp_ml
    listen: "127.0.0.1:0"
    port_file: $T/tcp_ml.port
    framing: newline
    format: raw
    multiline: {mode: indent, flush_timeout: 300ms}
  - type: unix_dgram
    name: devlog
    path: $T/log.sock
    mode: "0620"
sinks:
  - type: file
    path: $T/out.json
EOF
out=$T/out.json

printf '<13>Mar  3 10:00:01 h app: denied tcp\n' | send_tcp "$(port "$T/tcp_denied.port")"
printf '<13>Mar  3 10:00:01 h app: allowed tcp\n' | send_tcp "$(port "$T/tcp_allowed.port")"
printf '<13>Mar  3 10:00:01 h app: denied udp\n' | send_udp "$(port "$T/udp_denied.port")"
wait_until 10 has_events 1 "$out" 'message=allowed tcp'
check "tcp allow: a source in the list is read" has_events 1 "$out" 'message=allowed tcp'

start=$(now_ms)
"$SENDLINES" --tcp "127.0.0.1:$(port "$T/tcp_rate.port")" --count 1500 --prefix rated >"$T/rated.out" 2>&1 ||
    not_ok "sendlines to the rate-limited listener: $(tail -n 1 "$T/rated.out")"
wait_lines "$out" $((1 + 1500)) 30
took=$(($(now_ms) - start))
check "tcp rate limit: all 1500 lines arrive, in order" ev seq "$out" rated 1 1500
note "1500 lines at 1000/s with a burst of 100 took ${took} ms"
check "tcp rate limit: the sender was slowed to about the rate (>= 1.2 s)" test "$took" -ge 1200

"$SENDLINES" --udp "127.0.0.1:$(port "$T/udp_rate.port")" --count 400 --prefix udprate >"$T/udprate.out" 2>&1
logger -u "$T/log.sock" -t devlogtest 'through the unix socket'
wait_until 10 has_events 1 "$out" 'message=through the unix socket'
expect_event "unix_dgram: logger -u arrives with its tag" "$out" 'message=through the unix socket' -- \
    process.name=devlogtest 'log.source.address!'
check "unix_dgram: the socket file has the configured mode" test "$(stat -c %a "$T/log.sock")" = 620
settle "$out"
udp_got=$(ev count "$out" 'message~=udprate conn=')
note "udp: $udp_got of 400 datagrams passed the 50/s limit with a burst of 100"
check "udp rate limit: about the burst passed" test "$udp_got" -ge 100 -a "$udp_got" -le 150
# multiline per TCP connection: a Java trace is one event, the connection's close
# emits the last one; on a connection held open the flush timeout does
printf '%s\n' 'Exception in thread "main" java.lang.RuntimeException: tcp trace' \
    '	at a.B.c(B.java:1)' 'Caused by: java.io.IOException: x' '	... 1 more' 'after the trace' |
    send_tcp "$(port "$T/tcp_ml.port")"
wait_until 10 has_events 1 "$out" 'message=after the trace'
expect_event "tcp multiline: the Java trace over TCP is one event" "$out" 'message^=Exception in thread' -- \
    'message~=Caused by: java.io.IOException: x' 'message~/... 1 more$'
exec 7<>"/dev/tcp/127.0.0.1/$(port "$T/tcp_ml.port")"
printf 'held open\n  continued\n' >&7
wait_until 10 has_events 1 "$out" 'message^=held open'
check "tcp multiline: the flush timeout emits the last event of an open connection" \
    has_events 1 "$out" 'message^=held open' 'message~=  continued'
exec 7>&-
check "no event from denied sources" test "$(ev count "$out" 'message~=denied')" = 0

lsf_stop lim
check "logsift exits 0" test "$LSF_RC" = 0
check "unix_dgram: the socket file is removed at exit" test ! -e "$T/log.sock"
check "tcp allow: the refused connection was counted" \
    test "$(counter "$T/lim.err" '^tcp_denied\.connections_not_allowed$')" = 1
check "udp allow: the refused datagram was counted" \
    test "$(counter "$T/lim.err" '^udp_denied\.dropped_not_allowed$')" = 1
check "tcp rate limit: pauses were counted" test "$(counter "$T/lim.err" '^tcp_rate\.rate_limited$')" -ge 1
check "udp rate limit: every datagram is received or counted as dropped" \
    test "$(( $(counter "$T/lim.err" '^udp_rate\.dropped_rate_limit$') + udp_got ))" = 400
finish

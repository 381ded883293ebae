# udp.sh - syslog over UDP: datagrams arrive once with their fields, a datagram
# longer than max_message_size is cut and tagged, and a burst that overflows a
# small receive buffer loses only datagrams the kernel dropped, which logsift
# counts (dropped_kernel, from SO_RXQ_OVFL). How many drop is not asserted.
. "$(dirname "$0")/lib.sh"
need_sendlines

# softnet drops: datagrams the kernel lost before any socket saw them (these no
# socket can count); summed over CPUs, column 2 of /proc/net/softnet_stat.
softnet_drops() {
    local s=0 d
    [ -r /proc/net/softnet_stat ] || { echo 0; return; }
    while read -r _ d _; do s=$((s + 16#$d)); done </proc/net/softnet_stat
    echo "$s"
}

# ---- a paced stream, big and odd datagrams ---------------------------------
lsf_start udp <<EOF || finish
log_level: debug
inputs:
  - type: syslog_udp
    name: udp
    listen: "127.0.0.1:0"
    port_file: $T/udp.port
    max_message_size: 1KiB
sinks:
  - type: file
    path: $T/udp.json
EOF
UP=$(port "$T/udp.port")
out=$T/udp.json
"$SENDLINES" --udp "127.0.0.1:$UP" --conns 2 --count 400 --rate 4000 --prefix paced >"$T/send.out" 2>&1 ||
    not_ok "sendlines --udp failed: $(tail -n 1 "$T/send.out")"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a = ("127.0.0.1", int(sys.argv[1]))
s.sendto(b"<13>Mar  3 10:00:01 host app[1]: udp-big " + b"D" * 5000, a)
s.sendto(b"<13>Mar  3 10:00:01 host app[1]: udp-newline end\n", a)
s.sendto(b"<13>Mar  3 10:00:01 host app[1]: udp-nul \x00 and \xff end", a)
s.sendto(b"<13>1 2003-10-11T22:14:15.003Z h5 app5 55 M5 [x@1 a=\"b\"] udp-5424", a)
' "$UP"
wait_until 10 has_events 400 "$out" 'message~=paced conn='
wait_until 10 has_events 1 "$out" 'message~=udp-5424'
settle "$out"
check "udp: still running" alive "${LSF_PID[udp]}"
lsf_stop udp
check "udp: exits 0 on SIGTERM" test "$LSF_RC" = 0
dropped=$(counter "$T/udp.err" '^udp\.dropped_kernel$')
note "counters: $(grep -E '^udp\.' "$T/udp.err" | tr '\n' ' ')"
check "udp: 400 paced datagrams arrive once (missing only if counted as dropped: $dropped)" \
    ev seq "$out" paced 2 200 --any-order --max-missing "$dropped"
expect_event "udp: fields and sender address of a datagram" "$out" 'message=paced conn=1 seq=5' -- \
    host.name=host process.name=app 'process.pid:=1' 'log.syslog.priority:=13' \
    'log.source.address~/^127\.0\.0\.1:[0-9]+$' 'tags!'
expect_event "udp: datagram over max_message_size is cut and tagged _truncated" "$out" \
    'message~=udp-big' -- 'tags@=_truncated' 'message#<=1024' 'message#>=900'
expect_event "udp: a trailing newline is not part of the message" "$out" 'message~=udp-newline' -- \
    'message=udp-newline end'
expect_event "udp: NUL and invalid UTF-8 in a datagram" "$out" 'message~=udp-nul' -- 'message~= end'
expect_event "udp: RFC 5424 datagram with SD" "$out" 'message=udp-5424' -- host.name=h5 \
    process.name=app5 'process.pid:=55' log.syslog.msgid=M5 log.syslog.structured_data.x@1.a=b
check "udp: counted truncation" test "$(counter "$T/udp.err" '^udp\.truncated$')" -ge 1
all_valid_json "udp" "$out"

# ---- a burst into a small receive buffer -----------------------------------
lsf_start burst <<EOF || finish
log_level: debug
inputs:
  - type: syslog_udp
    name: udp
    listen: "127.0.0.1:0"
    port_file: $T/burst.port
    receive_buffer: 64KiB
sinks:
  - type: file
    path: $T/burst.json
EOF
BP=$(port "$T/burst.port")
out=$T/burst.json
sn0=$(softnet_drops)
N=20000
"$SENDLINES" --udp "127.0.0.1:$BP" --conns 4 --count $N --prefix burst >"$T/burst.send" 2>&1 ||
    not_ok "sendlines --udp burst failed: $(tail -n 1 "$T/burst.send")"
# The kernel reports a socket's drops with the next datagram it delivers: send
# trailers, slowly, until one arrives, so every drop of the burst is reported.
trailers=0
trailer() {
    printf '<13>Mar  3 10:00:01 host app[1]: trailer conn=0 seq=%d' "$trailers" | send_udp "$BP"
    trailers=$((trailers + 1))
    sleep 0.1
    has_events 1 "$out" 'message~=trailer conn='
}
wait_until 20 trailer
settle "$out"
sn1=$(softnet_drops)
check "burst: still running" alive "${LSF_PID[burst]}"
lsf_stop burst
check "burst: exits 0 on SIGTERM" test "$LSF_RC" = 0
dropped=$(counter "$T/burst.err" '^udp\.dropped_kernel$')
got=$(ev seq "$out" burst 4 $((N / 4)) --max-missing $N | tail -n 1)
note "burst: $got of $N datagrams arrived, $dropped counted as dropped by the socket, $((sn1 - sn0)) dropped before any socket (softnet)"
check "burst: no datagram duplicated or invented" \
    ev seq "$out" burst 4 $((N / 4)) --any-order --max-missing $N
check "burst: some datagrams arrive" test "$got" -gt 0
check "burst: every lost datagram is counted (arrived + dropped_kernel + softnet drops >= sent)" \
    test $((got + dropped + sn1 - sn0)) -ge $N
check "burst: no more drops counted than datagrams lost" test $((got + dropped)) -le $((N + trailers))
all_valid_json "burst" "$out"
finish

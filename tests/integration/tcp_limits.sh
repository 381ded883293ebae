# tcp_limits.sh - the TCP input's limits: max_connections refuses the extra
# client (counted) and serves the others, idle_timeout closes a silent client
# (counted), and a stalled sink applies backpressure without losing a line,
# also when SIGTERM arrives while the sink is stalled.
. "$(dirname "$0")/lib.sh"
need_sendlines

lsf_start lim <<EOF || finish
log_level: debug
inputs:
  - type: syslog_tcp
    name: max2
    listen: "127.0.0.1:0"
    port_file: $T/max2.port
    max_connections: 2
  - type: syslog_tcp
    name: idle
    listen: "127.0.0.1:0"
    port_file: $T/idle.port
    idle_timeout: 1s
sinks:
  - type: file
    path: $T/lim.json
EOF
out=$T/lim.json
MP=$(port "$T/max2.port")
IP=$(port "$T/idle.port")
line() { printf '<13>Mar  3 10:00:01 host app[1]: %s\n' "$1"; }

# ---- max_connections: 2 --------------------------------------------------------
exec 7<>"/dev/tcp/127.0.0.1/$MP" 8<>"/dev/tcp/127.0.0.1/$MP"
line "first-of-two" >&7
line "second-of-two" >&8
wait_until 10 has_events 2 "$out" 'message~=-of-two'
# A third client: logsift closes it (EOF or reset) without reading it.
python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
try:
    s.sendall(b"<13>Mar  3 10:00:01 host app[1]: third-refused\n")
    sys.exit(0 if s.recv(100) == b"" else 1)
except (ConnectionResetError, BrokenPipeError):
    sys.exit(0)
except socket.timeout:
    sys.exit(1)
' "$MP"
check "max_connections: a third client is closed" test $? = 0
line "first-still-served" >&7
wait_until 10 has_events 1 "$out" 'message~=first-still-served'
check "max_connections: the first two are still served" has_events 1 "$out" 'message~=first-still-served'
exec 7>&- 8>&-
# With both closed, new clients are accepted again (the close is seen a bit later).
again() { line "accepted-again" | send_tcp "$MP"; has_events 1 "$out" 'message~=accepted-again'; }
check "max_connections: after two close, a new client is served" wait_until 10 again

# ---- idle_timeout: 1s ------------------------------------------------------------
python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"<13>Mar  3 10:00:01 host app[1]: idle-client\n")
t = time.time()
s.settimeout(15)
try:
    s.recv(100)
except OSError:
    pass
print("%.1f" % (time.time() - t))
' "$IP" >"$T/idle.time"
note "idle client closed after $(cat "$T/idle.time") s"
check "idle_timeout 1s: a silent client is closed within 0.5-5 s" \
    python3 -c 'import sys; sys.exit(0 if 0.5 <= float(sys.argv[1]) <= 5 else 1)' "$(cat "$T/idle.time")"
check "idle_timeout: its line was kept" has_events 1 "$out" 'message~=idle-client'
# A client that keeps talking (every 300 ms for 2.5 s) is not closed.
python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for i in range(9):
    s.sendall(b"<13>Mar  3 10:00:01 host app[1]: chatty conn=0 seq=%d\n" % i)
    time.sleep(0.3)
' "$IP" 2>"$T/chatty.err"
check "idle_timeout: a client that keeps sending is not cut off" test ! -s "$T/chatty.err"
wait_until 10 has_events 9 "$out" 'message~=chatty conn='
check "idle_timeout: all its lines arrive" ev seq "$out" chatty 1 9

lsf_stop lim
check "limits: exits 0" test "$LSF_RC" = 0
check "max_connections: refusal counted" test "$(counter "$T/lim.err" '^max2\.connections_rejected$')" -ge 1
check "idle_timeout: idle close counted" test "$(counter "$T/lim.err" '^idle\.connections_idle_closed$')" -ge 1

# ---- backpressure: stdout sink into a pipe nobody reads yet ------------------------
# stalled NAME: logsift (small queue) writing to a reader that waits for $T/NAME.go.
stalled() {
    local name=$1
    mkfifo "$T/$name.fifo"
    bg python3 -c '
import os, sys, time
fifo = open(sys.argv[2], "rb")  # opened here: a shell redirection would block the script
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
sys.stdout.buffer.write(fifo.read())
' "$T/$name.go" "$T/$name.fifo" >"$T/$name.json"
    LSF_STDOUT=$T/$name.fifo lsf_start "$name" <<EOF
batch_size: 64
queue_batches: 2
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/$name.port
sinks:
  - type: stdout
EOF
}
stalled bp || finish
timeout 60 "$SENDLINES" --tcp "127.0.0.1:$(port "$T/bp.port")" --conns 4 --count 40000 --prefix bp \
    >"$T/bp.send" 2>&1 &
SPID=$!
sleep 1 # let the pipe, the queue and the socket buffers fill up
check "backpressure: the sender is held back while the sink is stalled" alive "$SPID"
check "backpressure: logsift keeps running meanwhile" alive "${LSF_PID[bp]}"
touch "$T/bp.go"
wait "$SPID"
check "backpressure: sendlines completes once the sink drains" test $? = 0
lsf_stop bp
check "backpressure: exits 0" test "$LSF_RC" = 0
check "backpressure: all 40000 lines arrive once, in order" ev seq "$T/bp.json" bp 4 10000

# SIGTERM while stalled: once the sink drains, logsift exits 0, and what it
# wrote is, per connection, a gap-free prefix of what was sent.
stalled bpterm || finish
timeout 60 "$SENDLINES" --tcp "127.0.0.1:$(port "$T/bpterm.port")" --conns 4 --count 40000 \
    --prefix bpterm >"$T/bpterm.send" 2>&1 &
SPID=$!
sleep 1
kill -TERM "${LSF_PID[bpterm]}"
sleep 0.5
touch "$T/bpterm.go"
stop_pid "${LSF_PID[bpterm]}" 30 TERM
check "backpressure + SIGTERM: exits 0 once the sink drains" test "$STOP_RC" = 0
wait "$SPID"
check "backpressure + SIGTERM: lines written form a gap-free prefix of each connection" \
    ev seq "$T/bpterm.json" bpterm 4 10000 --tail-missing
all_valid_json "backpressure + SIGTERM" "$T/bpterm.json"
finish

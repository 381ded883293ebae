# bad_input.sh - hostile and broken input while a well-behaved client keeps
# sending: NUL bytes, invalid UTF-8, 1 MB lines and frames, bad or missing PRI,
# lying and huge octet counts, empty lines, binary garbage, and clients that
# stop half-way through a frame. logsift keeps running, loses none of the good
# client's lines, writes only valid JSON, and counts what it cut or dropped.
. "$(dirname "$0")/lib.sh"
need_sendlines

lsf_start bad <<EOF || finish
log_level: debug
parse: {timezone: UTC}
inputs:
  - type: syslog_tcp
    name: tcp
    listen: "127.0.0.1:0"
    port_file: $T/tcp.port
    max_message_size: 64KiB
  - type: syslog_tcp
    name: octet
    framing: octet_counted
    listen: "127.0.0.1:0"
    port_file: $T/octet.port
    max_message_size: 64KiB
sinks:
  - type: file
    path: $T/out.json
EOF
out=$T/out.json
TP=$(port "$T/tcp.port")
OP=$(port "$T/octet.port")
hdr='<13>Mar  3 10:00:01 host bad[2]:'

# The good client: one connection, a line every 10 ms for the whole test.
GOOD=400
bg python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for i in range(int(sys.argv[2])):
    s.sendall(b"<13>Mar  3 10:00:01 host good[1]: good conn=0 seq=%d\n" % i)
    time.sleep(0.01)
s.close()
' "$TP" "$GOOD"
GOOD_PID=$BG_PID

# Each bad case on its own connection (send_tcp closes it when done).
printf '%s nul-case before\0after end\n' "$hdr" | send_tcp "$TP"
printf '%s utf8-case \xff\xfe \xc3\x28 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82 end\n' "$hdr" |
    send_tcp "$TP"
python3 -c '
import sys
h = sys.argv[1].encode()
sys.stdout.buffer.write(h + b" big-case " + b"A" * (1 << 20) + b"\n")
for i in range(5):
    sys.stdout.buffer.write(h + b" after-big conn=0 seq=%d\n" % i)
' "$hdr" | send_tcp "$TP"
python3 -c '
import sys
h = sys.argv[1].encode()
def frame(m): return b"%d %s" % (len(m), m)
sys.stdout.buffer.write(frame(h + b" big-octet-case " + b"B" * (1 << 20)))
for i in range(5):
    sys.stdout.buffer.write(frame(h + b" after-big-octet conn=0 seq=%d" % i))
' "$hdr" | send_tcp "$TP"
{
    printf '<999>Mar  3 10:00:01 host bad[2]: pri-999\n'
    printf '<abc>Mar  3 10:00:01 host bad[2]: pri-abc\n'
    printf '<>Mar  3 10:00:01 host bad[2]: pri-empty\n'
    printf '<13 pri-unclosed\n'
    printf 'Mar  3 10:00:01 host bad[2]: pri-missing\n'
    printf 'pri-none plain text\n'
} | send_tcp "$TP"
printf '\n\n%s empty-case before\n\r\n\n\n%s empty-case after\n\n' "$hdr" "$hdr" | send_tcp "$TP"
# octet_counted input: a count bigger than the data (then close), a 10-digit
# count with 100 KB behind it, an 11-digit count, and a line with no count.
printf '500 %s lie-big short\n' "$hdr" | send_tcp "$OP"
{ printf '9999999999 %s huge-count ' "$hdr"; head -c 100000 /dev/zero | tr '\0' C; } | send_tcp "$OP"
printf '99999999999 %s too-many-digits\n' "$hdr" | send_tcp "$OP"
printf '%s no-count-case\n' "$hdr" | send_tcp "$OP"
# binary garbage (fixed seed, so a failure can be replayed) on both inputs
python3 -c 'import random, sys; r = random.Random(1234); sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range(100000)))' >"$T/garbage"
send_tcp "$TP" <"$T/garbage"
send_tcp "$OP" <"$T/garbage"

# Half a frame, then wait: other clients must still be served meanwhile.
exec 7<>"/dev/tcp/127.0.0.1/$TP"
printf '%s half-line-case no newline yet' "$hdr" >&7
exec 8<>"/dev/tcp/127.0.0.1/$OP"
printf '200 %s half-octet-case' "$hdr" >&8
timeout 60 "$SENDLINES" --tcp "127.0.0.1:$TP" --conns 4 --count 400 --prefix during-half >"$T/send.out" 2>&1 ||
    not_ok "sendlines failed: $(tail -n 1 "$T/send.out")"
if wait_until 20 has_events 400 "$out" 'message~=during-half '; then
    ok "bad: others are served while two clients hold half a frame"
else
    not_ok "bad: others are served while two clients hold half a frame"
fi
exec 7>&- 8>&-

wait_until 30 not alive "$GOOD_PID"
wait_until 20 has_events 1 "$out" 'message~=half-line-case'
settle "$out"

check "bad: logsift is still running" alive "${LSF_PID[bad]}"
all_valid_json "bad" "$out"
check "bad: every line of the good client arrived once, in order" ev seq "$out" good 1 $GOOD
check "bad: every line sent during the half frames arrived once" ev seq "$out" during-half 4 100

expect_event "bad: NUL byte kept inside the message (escaped), line not cut" "$out" \
    'message~=nul-case before' -- 'message~=after end' process.name=bad
expect_event "bad: invalid UTF-8 line arrives (bytes escaped)" "$out" 'message~=utf8-case' -- \
    'message~= end' process.name=bad
expect_event "bad: 1 MB line is one event, truncated and tagged" "$out" 'message~=big-case' -- \
    'tags@=_truncated' 'message#<=65536' 'message#>=60000'
check "bad: 1 MB line is not split into more events" \
    test "$(ev count "$out" 'message~=AAAAAAAAAAAAAAAA')" = 1
check "bad: lines after the 1 MB line arrive intact" ev seq "$out" after-big 1 5
expect_event "bad: 1 MB octet-counted frame is one event, truncated and tagged" "$out" \
    'message~=big-octet-case' -- 'tags@=_truncated' 'message#<=65536'
check "bad: 1 MB frame is not split into more events" \
    test "$(ev count "$out" 'message~=BBBBBBBBBBBBBBBB')" = 1
check "bad: frames after the 1 MB frame arrive intact" ev seq "$out" after-big-octet 1 5
for p in pri-999 pri-abc pri-empty pri-unclosed pri-missing pri-none; do
    expect_event "bad: $p arrives once, without a priority" "$out" "message~=$p" -- 'log.syslog.priority!'
done
expect_event "bad: empty lines around a line do not hide it" "$out" 'message~=empty-case before'
expect_event "bad: empty lines around a line do not hide it (after)" "$out" 'message~=empty-case after'
check "bad: no event for an empty line" test "$(ev count "$out" 'message=')" = 0
check "bad: a lying octet count (longer than the data) produces no event" \
    test "$(ev count "$out" 'message~=lie-big')" = 0
expect_event "bad: a 10-digit octet count is read up to max_message_size and tagged" "$out" \
    'message~=huge-count' -- 'tags@=_truncated' 'message#<=65536'
expect_event "bad: an 11-digit count is not a count: read as a line" "$out" \
    'message~=too-many-digits'
expect_event "bad: a line without count on an octet_counted input is read as a line" "$out" \
    'message~=no-count-case'
expect_event "bad: a half line is emitted when its client closes" "$out" \
    'message~=half-line-case no newline yet'
check "bad: a half octet frame is not emitted" test "$(ev count "$out" 'message~=half-octet-case')" = 0

lsf_stop bad
check "bad: logsift exits 0 on SIGTERM" test "$LSF_RC" = 0
err=$T/bad.err
note "counters: $(grep -E '^(tcp|octet)\.' "$err" | tr '\n' ' ')"
check "bad: truncated records counted (>= 3)" test "$(counter "$err" '^(tcp|octet)\.truncated$')" -ge 3
check "bad: empty lines counted (>= 5)" test "$(counter "$err" '^tcp\.empty$')" -ge 5
check "bad: incomplete frames counted (lying count, half frame)" \
    test "$(counter "$err" '^octet\.incomplete$')" -ge 2
check "bad: framing errors counted (11 digits, no count)" \
    test "$(counter "$err" '^octet\.framing_errors$')" -ge 2
check "bad: parse failures counted" test "$(counter "$err" '^parse\.failures$')" -ge 3
finish

# privdrop.sh - `user:`/`group:`: logsift binds its port and opens its output
# file as root, then runs as nobody:nogroup; what it receives still reaches
# the file it opened before the switch. An unknown user is a configuration
# error at its file:line:col.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip_all "switching users needs root (this test runs as uid $(id -u))"
getent passwd nobody >/dev/null && getent group nogroup >/dev/null ||
    skip_all "no user nobody / group nogroup here"
NOBODY=$(id -u nobody)
NOGROUP=$(getent group nogroup | cut -d: -f3)
chmod 755 "$T"
mkdir -m 1777 "$T/run" # the port file is written after the switch

cat >"$T/bad.yaml" <<'EOF'
user: no-such-user-lsf
inputs: [{type: stdin}]
sinks: [{type: stdout}]
EOF
"$LOGSIFT" check -c "$T/bad.yaml" >"$T/bad.out" 2>&1
check "an unknown user is an error at its position" grep -q "bad.yaml:1:7: user: no such user 'no-such-user-lsf'" "$T/bad.out"

lsf_start pd <<EOF || finish
log_level: debug
user: nobody
group: nogroup
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/run/tcp.port
sinks:
  - type: file
    path: $T/out.json
EOF
PID=${LSF_PID[pd]}
printf '<13>Mar  3 10:00:01 h app: after the switch\n' | send_tcp "$(port "$T/run/tcp.port")"
wait_lines "$T/out.json" 1 10
check "a message received after the switch reaches the file opened before it" \
    has_events 1 "$T/out.json" 'message=after the switch'
check "logsift runs as nobody (uid $NOBODY)" grep -qE "^Uid:\s+$NOBODY\s+$NOBODY\s+$NOBODY\s+$NOBODY$" "/proc/$PID/status"
check "logsift runs as nogroup (gid $NOGROUP)" grep -qE "^Gid:\s+$NOGROUP\s+$NOGROUP\s+$NOGROUP\s+$NOGROUP$" "/proc/$PID/status"
check "no supplementary group is kept" grep -qE "^Groups:\s*($NOGROUP\s*)?$" "/proc/$PID/status"
check "the switch is logged" grep -q "privileges dropped: running as uid $NOBODY gid $NOGROUP" "$T/pd.err"
lsf_stop pd
check "logsift exits 0" test "$LSF_RC" = 0
check "the output file is still root's" test "$(stat -c %u "$T/out.json")" = 0
finish

# rsyslog.sh - a real rsyslogd forwards to logsift: rsyslog listens on its own
# imtcp port (loopback, port 0), and forwards with omfwd over TCP, octet-counted,
# as RFC 5424 (RSYSLOG_SyslogProtocol23Format). Messages sent to rsyslog must
# reach logsift once, with host, app and message intact.
. "$(dirname "$0")/lib.sh"
RSYSLOGD=${RSYSLOGD:-$(command -v rsyslogd || echo /usr/sbin/rsyslogd)}
[ -x "$RSYSLOGD" ] || skip_all "rsyslogd is not installed (Debian package rsyslog; make deps installs it)"
command -v logger >/dev/null || skip_all "logger (util-linux) is not installed"

lsf_start rs <<EOF || finish
log_level: debug
parse: {timezone: UTC}
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/lsf.port
sinks:
  - type: file
    path: $T/out.json
EOF
out=$T/out.json

# rsyslogd in the foreground with its own work dir, pid file and config; no
# imklog/imuxsock, so it never touches the system's log sockets.
mkdir -p "$T/rsyslog"
cat >"$T/rsyslog/rsyslog.conf" <<EOF
global(workDirectory="$T/rsyslog" maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="$T/rsyslog/port"
      ruleset="to_logsift")
ruleset(name="to_logsift") {
    action(type="omfwd" target="127.0.0.1" port="$(port "$T/lsf.port")" protocol="tcp"
           TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}
EOF
bg "$RSYSLOGD" -n -f "$T/rsyslog/rsyslog.conf" -i "$T/rsyslog/rsyslogd.pid" \
    >"$T/rsyslog/stdout" 2>&1
RSPID=$BG_PID
if ! wait_until 15 test -s "$T/rsyslog/port"; then
    not_ok "rsyslogd started and listens"
    sed 's/^/# /' "$T/rsyslog/stdout" | tail -n 20
    finish
fi
ok "rsyslogd started and listens"
RP=$(port "$T/rsyslog/port")

host=$(hostname)
logger -n 127.0.0.1 -P "$RP" -T --rfc5424 --id=777 -t lsf-rs5424 -p local3.warning \
    --sd-id lsf@32473 --sd-param 'k="v"' --msgid M7 -- "through rsyslog as rfc5424"
logger -n 127.0.0.1 -P "$RP" -T --rfc3164 --id=778 -t lsf-rs3164 -p mail.err \
    -- "through rsyslog as rfc3164"
printf '%s\n' '<38>Mar  3 10:00:01 web1 sshd[42]: Failed password for root from 203.0.113.9 port 50514 ssh2' |
    send_tcp "$RP"
wait_lines "$out" 3 30
expect_event "rsyslog: RFC 5424 message forwarded with app, host, pid, msgid, SD" "$out" \
    'message=through rsyslog as rfc5424' -- process.name=lsf-rs5424 "host.name^=${host%%.*}" \
    'process.pid:=777' log.syslog.msgid=M7 log.syslog.structured_data.lsf@32473.k=v \
    'log.syslog.facility.code:=19' 'log.syslog.severity.code:=4' 'log.syslog.version:=1' \
    'log.source.address~/^127\.0\.0\.1:[0-9]+$' 'tags!'
# rsyslog keeps the space after "tag:" in MSG and writes "%STRUCTURED-DATA% %msg%";
# logsift drops that one space, so the message is the same as when received directly.
expect_event "rsyslog: RFC 3164 message forwarded with app, host, pid" "$out" \
    'message=through rsyslog as rfc3164' -- process.name=lsf-rs3164 "host.name^=${host%%.*}" \
    'process.pid:=778' log.syslog.facility.name=mail log.syslog.severity.name=err 'tags!'
expect_event "rsyslog: a plain RFC 3164 line keeps its own host and app" "$out" \
    'message~=Failed password for root from 203.0.113.9' -- host.name=web1 process.name=sshd \
    'process.pid:=42' 'log.syslog.priority:=38'

if [ -x "$SENDLINES" ]; then
    "$SENDLINES" --tcp "127.0.0.1:$RP" --conns 4 --count 2000 --prefix viarsyslog >"$T/send.out" 2>&1 ||
        not_ok "sendlines to rsyslog: $(tail -n 1 "$T/send.out")"
    wait_lines "$out" $((3 + 2000)) 60
    settle "$out"
    # rsyslog's queue may interleave connections, so order is not checked here.
    check "rsyslog: 2000 lines over 4 connections arrive exactly once" \
        ev seq "$out" viarsyslog 4 500 --any-order
    expect_event "rsyslog: sendlines line keeps host and app" "$out" \
        'message~=viarsyslog conn=0 seq=0' -- host.name=host process.name=app 'process.pid:=1'
else
    note "sendlines not built: skipping the bulk part"
fi
all_valid_json "rsyslog" "$out"

stop_pid "$RSPID" 15
check "rsyslogd stopped by its PID" test "$STOP_RC" != timeout
lsf_stop rs
check "rsyslog: logsift exits 0 on SIGTERM" test "$LSF_RC" = 0
check "rsyslog: no framing errors counted" test "$(counter "$T/rs.err" 'framing_errors$')" = 0
finish

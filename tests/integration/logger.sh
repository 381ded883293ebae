# logger.sh - util-linux `logger` as the client: UDP, TCP, TCP with octet
# counting, RFC 5424 and RFC 3164 forms, structured data. Each message must
# arrive exactly once with its fields.
. "$(dirname "$0")/lib.sh"
command -v logger >/dev/null || skip_all "logger (util-linux) is not installed"

lsf_start lg <<EOF || finish
log_level: debug
parse: {timezone: UTC}
inputs:
  - type: syslog_udp
    listen: "127.0.0.1:0"
    port_file: $T/udp.port
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/tcp.port
sinks:
  - type: file
    path: $T/out.json
EOF
UP=$(port "$T/udp.port")
TP=$(port "$T/tcp.port")
out=$T/out.json
host=$(hostname)
short=${host%%.*}

# send NAME MESSAGE LOGGER-OPTIONS...: one message, tag lsf-NAME, pid 4242, local3.warning.
names=()
declare -A MSG=() OPTS=()
send() {
    local name=$1 msg=$2 p=$TP
    shift 2
    case " $* " in *" -d "*) p=$UP ;; esac
    names+=("$name")
    MSG[$name]=$msg
    OPTS[$name]=" $* "
    logger -n 127.0.0.1 -P "$p" "$@" -t "lsf-$name" --id=4242 -p local3.warning -- "$msg" ||
        not_ok "logger $name: logger exited non-zero"
}
sd=(--sd-id lsf@32473 --sd-param 'k="v"' --sd-param 'q="a \"b\" c \] d"')
send udp "over udp" -d
send udp-3164 "over udp rfc3164" -d --rfc3164
send udp-5424-sd "over udp with sd" -d --rfc5424 "${sd[@]}" --msgid M1
send tcp "over tcp" -T
send tcp-3164 "over tcp rfc3164" -T --rfc3164
send tcp-5424-sd "over tcp with sd" -T --rfc5424 "${sd[@]}" --msgid M2
send octet "over tcp octet-counted" -T --octet-count
send octet-3164 "over tcp octet-counted rfc3164" -T --octet-count --rfc3164
send octet-5424-sd "over octet with sd" -T --octet-count --rfc5424 "${sd[@]}"
send utf8 "$(printf 'utf-8: caf\u00e9 \u2713, "quotes", \\ backslash, tab\there')" -T
n=${#names[@]}

wait_lines "$out" "$n" 20
settle "$out"
check "logger: $n messages in, $n events out" test "$(lines "$out")" = "$n"
all_valid_json "logger" "$out"

common=('log.syslog.facility.code:=19' log.syslog.facility.name=local3
    'log.syslog.severity.code:=4' log.syslog.severity.name=warning 'log.syslog.priority:=156'
    'process.pid:=4242' "host.name~/^($host|$short)\$" 'log.source.address~/^127\.0\.0\.1:[0-9]+$'
    '@timestamp~/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$' 'tags!')
for name in "${names[@]}"; do
    o=${OPTS[$name]}
    more=()
    case $o in
    *" --rfc3164 "*) more+=('log.syslog.version!' 'log.syslog.structured_data!') ;;
    *) more+=('log.syslog.version:=1' log.syslog.structured_data.timeQuality.tzKnown=1) ;;
    esac
    case $o in *" --sd-id "*)
        more+=(log.syslog.structured_data.lsf@32473.k=v 'log.syslog.structured_data.lsf@32473.q=a "b" c ] d') ;;
    esac
    case $o in *" --msgid "*) m=${o##*--msgid }; more+=("log.syslog.msgid=${m%% *}") ;; esac
    expect_event "logger $name: arrives once with its fields" "$out" "message=${MSG[$name]}" -- \
        "process.name=lsf-$name" "${common[@]}" "${more[@]}"
done

lsf_stop lg
check "logger: logsift exits 0 on SIGTERM" test "$LSF_RC" = 0
finish

# cli.sh - `logsift parse`, `check`, `help`, `config` and `--version` as a user
# sees them: fields of each format, and config errors as file:line:col: message.
. "$(dirname "$0")/lib.sh"

# ---- logsift parse -----------------------------------------------------------

out=$T/parse.json
cat >"$T/lines" <<'EOF'
<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry
<34>1 2003-10-11T22:14:15.003-07:00 host2 su 4242 - - 5424 with offset
<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8
<13>Mar  3 10:00:01 web1 cron: job done
{"message":"json hello","user":{"name":"alice"},"count":3}
this is not syslog at all
EOF
"$LOGSIFT" parse -z UTC <"$T/lines" >"$out" 2>"$T/parse.err"
check "parse: exits 0 at end of input" test $? = 0
check "parse: one event per input line" test "$(lines "$out")" = "$(lines "$T/lines")"
all_valid_json "parse" "$out"
check "parse: events keep input order" bash -c \
    "python3 '$EVCHECK' messages '$out' | sed -n '1p;6p' | tr '\n' '|' | grep -qx \"'An application event log entry'|'this is not syslog at all'|\""

# shellcheck disable=SC2088 # "~/" is evcheck's regex operator, not a path
ts='~/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$'
expect_event "parse: RFC 5424 fields, SD and timestamp" "$out" \
    'message=An application event log entry' -- \
    '@timestamp=2003-10-11T22:14:15.003000Z' "event.ingested$ts" \
    host.name=mymachine.example.com log.syslog.hostname=mymachine.example.com \
    process.name=evntslog log.syslog.appname=evntslog log.syslog.msgid=ID47 \
    'log.syslog.priority:=165' 'log.syslog.facility.code:=20' log.syslog.facility.name=local4 \
    'log.syslog.severity.code:=5' log.syslog.severity.name=notice 'log.syslog.version:=1' \
    'log.syslog.structured_data:={"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}}' \
    'process.pid!' 'log.syslog.procid!' 'tags!'
expect_event "parse: RFC 5424 offset converted to UTC, numeric procid" "$out" \
    'message=5424 with offset' -- \
    '@timestamp=2003-10-12T05:14:15.003000Z' host.name=host2 process.name=su \
    'process.pid:=4242' log.syslog.procid=4242 'log.syslog.msgid!' \
    'log.syslog.structured_data!' 'log.syslog.severity.code:=2' 'log.syslog.facility.code:=4'
expect_event "parse: RFC 3164 fields (timezone UTC, year inferred)" "$out" \
    "message='su root' failed for lonvick on /dev/pts/8" -- \
    '@timestamp~/^[0-9]{4}-10-11T22:14:15\.000000Z$' host.name=mymachine process.name=su \
    'process.pid:=123' 'log.syslog.priority:=34' log.syslog.facility.name=auth \
    log.syslog.severity.name=crit 'log.syslog.severity.code:=2' 'tags!'
expect_event "parse: RFC 3164 without pid" "$out" 'message=job done' -- \
    host.name=web1 process.name=cron 'process.pid!' log.syslog.facility.name=user \
    log.syslog.severity.name=notice
expect_event "parse: JSON line becomes fields" "$out" 'message=json hello' -- \
    user.name=alice 'count:=3' "@timestamp$ts"
expect_event "parse: unparseable line kept as message, tagged _parse_failure" "$out" \
    'message=this is not syslog at all' -- 'tags@=_parse_failure' 'log.syslog.priority!' \
    "@timestamp$ts"

printf '%s\n' '<34>Oct 11 22:14:15 mymachine su[123]: zone test' |
    "$LOGSIFT" parse -f rfc3164 -z +02:00 >"$T/tz.json" 2>&1
expect_event "parse -z +02:00: RFC 3164 time shifted to UTC" "$T/tz.json" 'message=zone test' -- \
    '@timestamp~/^[0-9]{4}-10-11T20:14:15\.000000Z$'

printf '%s\n' 'user=bob action=login result="ok then"' | "$LOGSIFT" parse -f kv >"$T/kv.json" 2>&1
expect_event "parse -f kv: key=value pairs become fields" "$T/kv.json" user=bob -- \
    action=login 'result=ok then'

printf '%s\n' '{"message":"forced json","http":{"status":404}}' |
    "$LOGSIFT" parse -f json >"$T/json.json" 2>&1
expect_event "parse -f json: nested object fields" "$T/json.json" 'message=forced json' -- \
    'http.status:=404'

printf '%s\n' '<13>Mar  3 10:00:01 web1 cron: raw line' | "$LOGSIFT" parse -f raw >"$T/raw.json" 2>&1
expect_event "parse -f raw: the whole line is the message" "$T/raw.json" \
    'message=<13>Mar  3 10:00:01 web1 cron: raw line' -- 'log.syslog.priority!' 'host.name!'

printf '%s\n' '<165>1 2003-10-11T22:14:15.003Z h app - - - forced 5424' |
    "$LOGSIFT" parse -f rfc5424 >"$T/f5424.json" 2>&1
expect_event "parse -f rfc5424" "$T/f5424.json" 'message=forced 5424' -- host.name=h process.name=app

# A syslog MSG that is a JSON object (optionally after "@cee:") becomes fields,
# unless parse.json_message is false.
cat >"$T/body.log" <<'EOF'
<13>1 2003-10-11T22:14:15.003Z h app - - - {"user":{"name":"carol"},"n":2}
<13>Mar  3 10:00:01 h app: @cee: {"k":"cee-value","list":[1,2]}
EOF
"$LOGSIFT" parse -z UTC <"$T/body.log" >"$T/body.json" 2>&1
expect_event "parse: RFC 5424 MSG holding a JSON object becomes fields" "$T/body.json" \
    user.name=carol -- 'n:=2' host.name=h process.name=app
expect_event "parse: RFC 3164 MSG with @cee: JSON becomes fields" "$T/body.json" k=cee-value -- \
    'list:=[1, 2]' host.name=h
cat >"$T/nobody.yaml" <<'EOF'
parse: {json_message: false, timezone: UTC}
inputs: [{type: stdin}]
sinks: [{type: stdout}]
EOF
"$LOGSIFT" run -c "$T/nobody.yaml" <"$T/body.log" >"$T/nobody.json" 2>&1
check "run with parse.json_message: false: JSON MSG stays text" \
    test "$(ev count "$T/nobody.json" 'user.name?')$(ev count "$T/nobody.json" 'k?')" = 00
expect_event "run with parse.json_message: false: message kept" "$T/nobody.json" \
    'message~=@cee: {"k":"cee-value"'

printf 'bad \xff\xfe\xc0\xaf utf8 \x00 nul \xed\xa0\x80 surrogate end\n\x01\x02\x1b[31m\n' |
    "$LOGSIFT" parse -z UTC >"$T/bytes.json" 2>&1
all_valid_json "parse of invalid UTF-8, NUL and control bytes" "$T/bytes.json"
expect_event "parse: a NUL byte does not cut the message" "$T/bytes.json" 'message^=bad ' -- \
    'message~=surrogate end'
check "parse: 2 events for 2 lines of bytes" test "$(lines "$T/bytes.json")" = 2

# ---- logsift check -------------------------------------------------------------

# check_ok NAME: `logsift check -c $T/NAME.yaml` (config on stdin) exits 0 and says OK.
check_ok() {
    local cfg=$T/$1.yaml rc
    cat >"$cfg"
    "$LOGSIFT" check -c "$cfg" >"$T/$1.out" 2>"$T/$1.err"
    rc=$?
    check "check $1: exit 0" test "$rc" = 0 || sed 's/^/# /' "$T/$1.err"
    check "check $1: prints 'FILE: OK'" grep -qx "$cfg: OK" "$T/$1.out"
}
# check_bad NAME LINE:COL TEXT...: the config on stdin is rejected with exit 1 and
# a first stderr line "$cfg:LINE:COL: ..." that contains every TEXT.
check_bad() {
    local name=$1 pos=$2 cfg=$T/$1.yaml rc first t
    shift 2
    cat >"$cfg"
    "$LOGSIFT" check -c "$cfg" >"$T/$name.out" 2>"$T/$name.err"
    rc=$?
    first=$(head -n 1 "$T/$name.err")
    note "$name: $first"
    check "check $name: exit 1" test "$rc" = 1
    check "check $name: error starts with file:$pos:" test "${first#"$cfg:$pos: "}" != "$first"
    for t in "$@"; do
        check "check $name: error mentions \"$t\"" grep -qF -- "$t" <<<"$first"
    done
    check "check $name: nothing on stdout" test ! -s "$T/$name.out"
}

check_ok good <<'EOF'
# every input and sink type with typical settings
workers: 2
batch_size: 128
queue_batches: 16
log_level: warn
state_dir: .
parse:
  timezone: UTC
  json_message: true
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    framing: octet_counted
    max_message_size: 64KiB
    idle_timeout: 30s
    max_connections: 100
    format: rfc5424
  - type: syslog_udp
    listen: "127.0.0.1:0"
    max_message_size: 8KiB
  - type: stdin
  - type: file
    path: input.log
    follow: false
    read_from: beginning
sinks:
  - type: stdout
  - type: file
    path: out.json
    fsync: false
EOF

"$LOGSIFT" config >"$T/default.yaml"
check "config: prints the built-in default config" grep -q 'syslog_tcp' "$T/default.yaml"
check "check: the built-in default config is valid" "$LOGSIFT" check -c "$T/default.yaml"

check_bad unknown_key 4:5 "unknown key 'framming'" "did you mean 'framing'" <<'EOF'
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    framming: newline
sinks:
  - type: stdout
EOF
check_bad unknown_top_key 2:1 "unknown key 'batch_sise'" "did you mean 'batch_size'" <<'EOF'
workers: 1
batch_sise: 10
inputs: [{type: stdin}]
sinks: [{type: stdout}]
EOF
check_bad misspelt_section 2:1 "'sink'" "did you mean 'sinks'" <<'EOF'
inputs: [{type: stdin}]
sink:
  - type: stdout
EOF
check_bad wrong_type_int 1:13 "batch_size" "lots" <<'EOF'
batch_size: lots
inputs: [{type: stdin}]
sinks: [{type: stdout}]
EOF
check_bad wrong_type_size 4:23 "max_message_size" <<'EOF'
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    max_message_size: huge
sinks:
  - type: stdout
EOF
check_bad wrong_type_enum 3:14 "framing" "octet_counted" <<'EOF'
inputs:
  - type: syslog_tcp
    framing: octets
sinks: [{type: stdout}]
EOF
check_bad yaml_syntax 4:1 "YAML" <<EOF
inputs:
  - type: stdin
sinks:
$(printf '\t')- type: stdout
EOF
check_bad unknown_stage 2:11 "syslog_tpc" <<'EOF'
inputs:
  - type: syslog_tpc
    listen: "127.0.0.1:0"
sinks:
  - type: stdout
EOF
check_bad missing_required 2:5 "path" <<'EOF'
inputs:
  - type: file
    follow: false
sinks:
  - type: stdout
EOF
check_bad bad_timezone 2:13 "timezone" <<'EOF'
parse:
  timezone: Mars/Olympus
inputs: [{type: stdin}]
sinks: [{type: stdout}]
EOF

"$LOGSIFT" check -c "$T/does-not-exist.yaml" >/dev/null 2>"$T/nofile.err"
rc=$?
check "check: a missing file exits 1" test "$rc" = 1
check "check: a missing file is named in the error" grep -q 'does-not-exist.yaml' "$T/nofile.err"

# ---- help, version -----------------------------------------------------------------

"$LOGSIFT" help >"$T/help.out" 2>&1
check "help: exit 0" test $? = 0
for s in syslog_tcp syslog_udp stdin file stdout; do
    check "help: lists stage $s" grep -qE "^ +$s( |$)" "$T/help.out"
done

"$LOGSIFT" help syslog_tcp >"$T/help_tcp.out" 2>&1
check "help syslog_tcp: exit 0" test $? = 0
for k in listen port_file framing max_message_size idle_timeout max_connections format; do
    check "help syslog_tcp: key $k with its default" \
        grep -qE "^ +$k +.*(default: [^ ]+|\(required\))" "$T/help_tcp.out"
done
check "help syslog_tcp: framing defaults to auto" grep -qE '^ +framing .*default: auto$' "$T/help_tcp.out"
"$LOGSIFT" help syslog_udp >"$T/help_udp.out" 2>&1
check "help syslog_udp: lists listen and max_message_size" \
    bash -c "grep -qE '^ +listen ' '$T/help_udp.out' && grep -qE '^ +max_message_size ' '$T/help_udp.out'"
"$LOGSIFT" help file >"$T/help_file.out" 2>&1
check "help file: path is listed" grep -qE '^ +path ' "$T/help_file.out"
"$LOGSIFT" help pipeline >"$T/help_pipe.out" 2>&1
check "help pipeline: lists workers and batch_size" \
    bash -c "grep -qE '^ +workers ' '$T/help_pipe.out' && grep -qE '^ +batch_size ' '$T/help_pipe.out'"
"$LOGSIFT" help no_such_stage >/dev/null 2>&1
check "help no_such_stage: exit 1" test $? = 1

v=$("$LOGSIFT" --version)
check "--version: exit 0" test $? = 0
note "$v"
want=$(cat "$LIB_DIR/../../VERSION" 2>/dev/null)
check "--version: prints 'logsift VERSION'" test "$v" = "logsift ${want:-?}"

finish

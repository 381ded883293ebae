# shutdown.sh - clean shutdown: lines accepted before SIGTERM/SIGINT are all
# written, the exit status is 0, and finite inputs (stdin, a file read once)
# end the run by themselves with every line written.
. "$(dirname "$0")/lib.sh"
need_sendlines

# burst NAME SIGNAL [SENDLINES OPTIONS]: 20,000 lines over 8 connections, the
# signal right after sendlines returns, then every line must be in the file.
burst() {
    local name=$1 sig=$2
    shift 2
    lsf_start "$name" <<EOF || return
log_level: debug
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/$name.port
sinks:
  - type: file
    path: $T/$name.json
EOF
    "$SENDLINES" --tcp "127.0.0.1:$(port "$T/$name.port")" --conns 8 --count 20000 --prefix "$name" "$@" \
        >"$T/$name.send" 2>&1 || not_ok "$name: sendlines failed: $(tail -n 1 "$T/$name.send")"
    stop_pid "${LSF_PID[$name]}" 30 "$sig"
    check "$name: exit status 0 after SIG$sig" test "$STOP_RC" = 0
    check "$name: all 20000 lines written before exit" ev seq "$T/$name.json" "$name" 8 2500
}
burst term TERM
burst int_octet INT --octet

# Lines still in the socket when SIGTERM comes, on a connection the client keeps
# open: they were accepted (acknowledged by TCP), so they must be written, and
# the open connection must not hold up the exit.
lsf_start held <<EOF || finish
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/held.port
sinks:
  - type: file
    path: $T/held.json
EOF
exec 7<>"/dev/tcp/127.0.0.1/$(port "$T/held.port")"
for i in 0 1 2 3 4; do printf '<13>Mar  3 10:00:01 host app[1]: held conn=0 seq=%d\n' $i; done >&7
stop_pid "${LSF_PID[held]}" 15 TERM
check "held: exits (status 0) while a client keeps its connection open" test "$STOP_RC" = 0
check "held: lines sent just before SIGTERM are written" ev seq "$T/held.json" held 1 5
exec 7>&-

# stdin: logsift ends by itself at end of input.
awk 'BEGIN { for (i = 0; i < 5000; i++) printf "<13>Mar  3 10:00:01 host app[1]: stdin conn=0 seq=%d\n", i }' >"$T/in.log"
cat >"$T/stdin.yaml" <<EOF
inputs: [{type: stdin}]
sinks: [{type: stdout}]
EOF
timeout 30 "$LOGSIFT" run -c "$T/stdin.yaml" <"$T/in.log" >"$T/stdin.json" 2>"$T/stdin.err"
check "stdin: exits 0 at end of input" test $? = 0
check "stdin: every line written to stdout" ev seq "$T/stdin.json" stdin 1 5000

# file input read once (follow: false), last line without a newline.
awk 'BEGIN { for (i = 0; i < 4999; i++) printf "<13>Mar  3 10:00:01 host app[1]: file conn=0 seq=%d\n", i;
             printf "<13>Mar  3 10:00:01 host app[1]: file conn=0 seq=4999" }' >"$T/file.log"
cat >"$T/file.yaml" <<EOF
inputs:
  - type: file
    path: $T/file.log
    follow: false
sinks:
  - type: file
    path: $T/file.json
EOF
timeout 30 "$LOGSIFT" run -c "$T/file.yaml" >"$T/file.out" 2>"$T/file.err"
check "file input: exits 0 at end of file" test $? = 0
check "file input: every line written, the last one without newline too" ev seq "$T/file.json" file 1 5000
finish

# lib.sh - shared helpers for the integration tests (source it; not a test).
#
# Every test script: `. "$(dirname "$0")/lib.sh"`, then start processes with
# the helpers below, print results with ok/not_ok/check, and end with
# `finish`. Everything a script starts is stopped by its own PID and the temp
# dir $T is removed when the script exits, whatever happens.
# Environment (set by tests/run.sh): LOGSIFT, LSF_TOOLS, LSF_SHARED; set
# LSF_KEEP=1 to keep the temp dir (configs, outputs, stderr) for debugging.
set -u
if [ "${BASH_SOURCE[0]}" = "$0" ]; then # tests/run.sh runs every *.sh here
    echo "lib.sh holds the helpers the tests source; it is not a test"
    exit 77
fi

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EVCHECK="$LIB_DIR/../tools/evcheck.py"
: "${LOGSIFT:?run the integration tests through tests/run.sh (LOGSIFT is not set)}"
: "${LSF_TOOLS:=$(dirname "$LOGSIFT")/tools}"
SENDLINES="$LSF_TOOLS/sendlines"

T=$(mktemp -d "${TMPDIR:-/tmp}/lsf-it.XXXXXX")
FAILED=0
PASSED=0
BG_PIDS=()                 # every background process we started
declare -A LSF_PID=()      # logsift instances by name
LSF_RC=                    # exit status set by lsf_stop

# ---- results (TAP lines, counted by tests/run.sh) ------------------------

ok() { echo "ok - $*"; PASSED=$((PASSED + 1)); }
not_ok() { echo "not ok - $*"; FAILED=$((FAILED + 1)); }
note() { echo "# $*"; }
# check DESCRIPTION CMD...: ok when CMD succeeds; CMD's output is shown as comments.
# (Helpers that run a caller's command keep their locals _prefixed, so the
# command still sees the caller's variables.)
check() {
    local _desc=$1 _out _rc
    shift
    _out=$("$@" 2>&1)
    _rc=$?
    [ -n "$_out" ] && printf '%s\n' "$_out" | sed 's/^\([^#]\)/# \1/'
    if [ "$_rc" = 0 ]; then ok "$_desc"; else not_ok "$_desc"; fi
    return "$_rc"
}
# skip_all REASON: the whole script is skipped (exit 77; run.sh shows the reason).
skip_all() { echo "$*"; exit 77; }
finish() {
    note "$(basename "$0"): $PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
    exit
}

# ---- processes -------------------------------------------------------------

# alive PID: the process exists and is not a zombie.
alive() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
# ours PID: PID is alive and a child of this script (so a PID the kernel
# reused for someone else's process is never signalled).
ours() {
    local pp
    pp=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2) || return 1
    [ "$pp" = "$$" ] && alive "$1"
}

# stop_pid PID [TIMEOUT_S] [SIGNAL]: signals PID, waits for it to end (KILL after
# the timeout) and sets STOP_RC to its exit status ("timeout" if it had to be killed).
stop_pid() {
    local pid=$1 limit=${2:-10} sig=${3:-TERM} rc
    STOP_RC=
    ours "$pid" && kill -"$sig" "$pid" 2>/dev/null
    if ! wait_until "$limit" not alive "$pid"; then
        ours "$pid" && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        STOP_RC=timeout
        return 1
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    STOP_RC=$rc
    return 0
}
not() { ! "$@"; }

cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        ours "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${BG_PIDS[@]}"; do
        wait_until 5 not ours "$pid" || kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [ -n "${LSF_KEEP:-}" ]; then echo "# kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# bg CMD...: runs CMD in the background and remembers it for cleanup; BG_PID = its PID.
bg() {
    "$@" &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}

# ---- waiting ---------------------------------------------------------------

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# wait_until TIMEOUT_S CMD...: polls CMD every 50 ms; 1 when the deadline passes.
wait_until() {
    local _deadline=$(($(now_ms) + $1 * 1000))
    shift
    until "$@"; do
        [ "$(now_ms)" -ge "$_deadline" ] && return 1
        sleep 0.05
    done
}

lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }
# wait_lines FILE N [TIMEOUT_S]: until FILE has at least N lines.
wait_lines() {
    wait_until "${3:-30}" has_lines "$1" "$2" && return 0
    note "waited ${3:-30}s for $2 lines in $(basename "$1"), have $(lines "$1")"
    return 1
}
# settle FILE: waits until FILE stops growing for 300 ms (max 10 s), e.g. to make
# sure nothing more arrives after the expected lines.
settle() {
    local n=-1 m _
    for _ in $(seq 1 50); do
        m=$(lines "$1")
        [ "$m" = "$n" ] && return 0
        n=$m
        sleep 0.3
    done
}

# ---- logsift -----------------------------------------------------------------

# lsf_start NAME: runs `logsift run -c $T/NAME.yaml` with the config read from
# stdin (stdout to $T/NAME.stdout, or to $LSF_STDOUT when set; stderr to
# $T/NAME.err), and waits for every port_file the config names. Fails (and
# reports) if logsift exits or never listens.
lsf_start() {
    local name=$1 pf
    cat >"$T/$name.yaml"
    bg "$LOGSIFT" run -c "$T/$name.yaml" >"${LSF_STDOUT:-$T/$name.stdout}" 2>"$T/$name.err"
    LSF_PID[$name]=$BG_PID
    while read -r pf; do
        # a deadline, not a delay: compiling the default packs under ASan on a
        # loaded 2-core machine has taken more than 10 s
        if ! wait_until "${LSF_START_TIMEOUT:-60}" test -s "$pf"; then
            not_ok "$name: logsift started and wrote $(basename "$pf")"
            sed 's/^/# /' "$T/$name.err" | tail -n 20
            return 1
        fi
    done < <(sed -n 's/.*port_file: *"\{0,1\}\([^",}]*\)"\{0,1\}.*/\1/p' "$T/$name.yaml")
    if ! alive "${LSF_PID[$name]}"; then
        not_ok "$name: logsift is running"
        sed 's/^/# /' "$T/$name.err" | tail -n 20
        return 1
    fi
}

# lsf_stop NAME [TIMEOUT_S]: SIGTERM, wait; LSF_RC = exit status.
lsf_stop() {
    stop_pid "${LSF_PID[$1]}" "${2:-20}"
    LSF_RC=$STOP_RC
    [ "$LSF_RC" = timeout ] && note "$1: logsift did not exit within ${2:-20}s of SIGTERM"
    return 0
}

# port FILE: the port number logsift wrote to its port_file.
port() { tr -dc '0-9' <"$1"; }

# counter ERRFILE NAME_REGEX: sum of the counters (printed at exit with
# log_level: debug as "name value") whose name matches the extended regex.
counter() {
    awk -v re="$2" '$1 ~ re && $2 ~ /^[0-9]+$/ { s += $2 } END { print s + 0 }' "$1"
}

# ---- JSON checks (tests/tools/evcheck.py) ------------------------------------

ev() { python3 "$EVCHECK" "$@"; }
# has_events N FILE SELECTORS...: at least N events match (for wait_until).
has_events() { local n=$1; shift; [ "$(ev count "$@")" -ge "$n" ]; }
# expect_event DESCRIPTION FILE [-n N] SELECTORS... -- CONDITIONS...
expect_event() { local d=$1; shift; check "$d" ev expect "$@"; }
all_valid_json() { check "$1: every output line is valid UTF-8 JSON" ev valid "$2"; }

# ---- senders -----------------------------------------------------------------

# send_tcp PORT: sends stdin over one TCP connection and closes it.
send_tcp() {
    python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read())
s.shutdown(socket.SHUT_WR)
s.settimeout(10)
try:
    while s.recv(4096): pass
except OSError: pass
' "$1"
}
# send_udp PORT: sends each line of stdin as one datagram (without the newline).
send_udp() {
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for line in sys.stdin.buffer:
    s.sendto(line.rstrip(b"\n"), ("127.0.0.1", int(sys.argv[1])))
' "$1"
}

need_sendlines() {
    [ -x "$SENDLINES" ] || skip_all "sendlines is not built ($SENDLINES); run make build-tests"
}

# detections.sh - the detections stage in a running logsift, with the default
# packs' detections, fed RFC 5424 syslog over TCP with explicit event times:
#  - the brute-force run: 20 failed ssh logins from one address in 20 s, then
#    a success -> exactly one threshold alert (with exemplars) and one
#    sequence alert; a second burst inside the suppression window -> none,
#    but counted in the next alert (a third burst after it);
#  - a port scan over 500 ports from one address -> one distinct alert; 500
#    addresses touching one port each -> none; password spraying, sudo
#    failures, a burst of HTTP errors from one client, a host that goes silent;
#  - alerts only in the `kinds: [alert]` file; `logsift tail` shows them;
#  - state survives a restart: 6 failures, SIGTERM, 4 more -> one alert of 10;
#  - `logsift run --replay` of the same stream gives the same alerts;
#  - a bad detection is refused by `logsift check` with file:line:column.
. "$(dirname "$0")/lib.sh"

PACKS=$(cd "$LIB_DIR/../../rules/packs" && pwd)

# gen.py: writes the RFC 5424 lines of a named scenario on stdout.
cat >"$T/gen.py" <<'EOF'
import sys
def ts(sec):
    return "2026-03-03T%02d:%02d:%02dZ" % (10 + sec // 3600, sec // 60 % 60, sec % 60)
def ssh_fail(sec, ip, user="root", port=50000, host="web1"):
    inv = "invalid user " if user != "root" else ""
    return "<38>1 %s %s sshd 42 - - Failed password for %s%s from %s port %d ssh2" % (ts(sec), host, inv, user, ip, port)
def ssh_ok(sec, ip):
    return "<38>1 %s web1 sshd 42 - - Accepted password for root from %s port 51000 ssh2" % (ts(sec), ip)
def fw(sec, src, dport):
    return ("<4>1 %s fw1 kernel - - - [UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:aa:bb:cc:00:16:3e:dd:ee:ff:08:00 "
            "SRC=%s DST=198.51.100.2 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=1 DF PROTO=TCP SPT=40000 DPT=%d "
            "WINDOW=29200 RES=0x00 SYN URGP=0" % (ts(sec), src, dport))
def sudo(sec, user):
    return ("<85>1 %s db1 sudo 77 - - %s : 1 incorrect password attempt ; TTY=pts/1 ; PWD=/home/%s ; "
            "USER=root ; COMMAND=/bin/bash" % (ts(sec), user, user))
def web(i, ip, status):
    return '%s - - [03/Mar/2026:10:30:%02d +0000] "GET /p%d HTTP/1.1" %d 153 "-" "curl/8"' % (ip, i % 60, i, status)
def hb(sec, host):
    return "<14>1 %s %s app 1 - - heartbeat" % (ts(sec), host)
what = sys.argv[1]
out = []
if what == "burst1":
    out = [ssh_fail(i, "203.0.113.9", port=50000 + i) for i in range(20)] + [ssh_ok(25, "203.0.113.9")]
elif what == "burst2":
    out = [ssh_fail(120 + i, "203.0.113.9") for i in range(20)]
elif what == "scan":
    out = [fw(180 + i // 10, "198.51.100.77", 1000 + i) for i in range(500)]
    out += [fw(240 + i // 10, "192.0.2.%d" % (i % 250) if i < 250 else "198.18.0.%d" % (i - 250), 22) for i in range(500)]
elif what == "spray":
    out = [ssh_fail(300 + i, "192.0.2.66", user="u%d" % i, host="bastion") for i in range(6)]
elif what == "sudo":
    out = [sudo(360 + i * 10, "alice") for i in range(3)] + [sudo(360, "bob")]
elif what == "burst3":
    out = [ssh_fail(900 + i, "203.0.113.9") for i in range(10)]
elif what == "restart1":
    out = [ssh_fail(3600 + i, "203.0.113.200") for i in range(6)]
elif what == "restart2":
    out = [ssh_fail(3606 + i, "203.0.113.200") for i in range(4)]
elif what == "reload1":
    out = [ssh_fail(4000 + i, "203.0.113.210") for i in range(6)]
elif what == "reload2":
    out = [ssh_fail(4006 + i, "203.0.113.210") for i in range(4)]
elif what == "web":
    out = [web(i, "198.51.100.5", 404 if i % 2 else 503) for i in range(30)]
    out += [web(i, "198.51.100.6", 404) for i in range(29)]
elif what == "silence":
    for sec in range(0, 1260, 30):
        out.append(hb(sec, "app2"))
        if sec <= 300:
            out.append(hb(sec, "app1"))
elif what.startswith("kafka"):
    ip = "203.0.113.%d" % (50 if what == "kafka1" else 51)
    out = [ssh_fail(7200 + i, ip) for i in range(10)]
print("\n".join(out))
EOF
gen() { python3 "$T/gen.py" "$1"; }
# alerts FILE: "rule.id key count suppressed @timestamp" per alert, sorted
alerts() {
    python3 - "$1" <<'EOF'
import json, sys
rows = []
for line in open(sys.argv[1]):
    a = json.loads(line)
    if a.get("event", {}).get("kind") == "alert":
        x = a["alert"]
        rows.append("%s %s count=%s suppressed=%s observed=%s %s" % (
            a["rule"]["id"], x["key"].replace(" ", ""), x["count"], x["suppressed"], x["observed"], a["@timestamp"]))
print("\n".join(sorted(rows)))
EOF
}

config() { # NAME [EXTRA DETECTIONS KEYS] [DIR]: state, outputs under DIR (default NAME)
    local d=${3:-$1}
    cat <<EOF
log_level: debug
state_dir: $T/$d
parse: {timezone: UTC}
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/$1.port
transforms:
  - {type: rules, packs: [$PACKS]}
  - type: detections
    name: det
    packs: [$PACKS]
    snapshot_interval: 0
${2:-}
sinks:
  - {type: file, path: $T/$d.events.jsonl}
  - {type: file, path: $T/$d.alerts.jsonl, kinds: [alert]}
EOF
}
mkdir -p "$T/live" "$T/state" "$T/web" "$T/silence" "$T/replay"
n_alerts() { [ "$(ev count "$1" event.kind=alert)" -ge "$2" ]; }
send() { gen "$2" >>"$T/$1.sent"; gen "$2" | send_tcp "$(port "$T/$1.port")"; }

# ---- the live stream: brute force, scans, spraying, sudo -----------------------
lsf_start live < <(config live "    disable: [host.silent]" ) || finish
bg "$LOGSIFT" tail --max 6 "$T/live.alerts.jsonl" >"$T/tail.out" 2>"$T/tail.err"
TAIL_PID=$BG_PID
send live burst1
wait_until 20 n_alerts "$T/live.alerts.jsonl" 2
A=$T/live.alerts.jsonl
expect_event "brute force: one threshold alert with exemplars" "$A" rule.id=ssh.bruteforce -- \
    alert.key=source.ip=203.0.113.9 source.ip=203.0.113.9 alert.count:=10 alert.threshold:=10 \
    alert.type=threshold alert.window=1m event.severity:=4 rule.severity=high \
    rule.name="SSH brute force" rule.ruleset=sshd alert.exemplars#\>=3 alert.exemplars#\<=3 \
    alert.first_seen=2026-03-03T10:00:00.000000Z alert.last_seen=2026-03-03T10:00:09.000000Z \
    @timestamp=2026-03-03T10:00:09.000000Z tags@=attack.t1110 \
    "alert.exemplars@=<38>1 2026-03-03T10:00:09Z web1 sshd 42 - - Failed password for root from 203.0.113.9 port 50009 ssh2"
expect_event "brute force: one sequence alert (failures, then a success)" "$A" \
    rule.id=ssh.bruteforce.success -- alert.type=sequence alert.count:=21 \
    @timestamp=2026-03-03T10:00:25.000000Z event.severity:=5 \
    "alert.exemplars@=<38>1 2026-03-03T10:00:25Z web1 sshd 42 - - Accepted password for root from 203.0.113.9 port 51000 ssh2"
send live burst2
send live scan
send live spray
send live sudo
wait_until 20 n_alerts "$A" 5
send live burst3
wait_until 20 n_alerts "$A" 6
settle "$A"
expect_event "suppression: the second burst gave nothing, the next alert counts it" "$A" \
    -n 2 rule.id=ssh.bruteforce -- alert.key=source.ip=203.0.113.9
expect_event "suppression: the alert after the window carries 3 suppressed firings" "$A" \
    rule.id=ssh.bruteforce alert.suppressed:=3 -- @timestamp=2026-03-03T10:15:09.000000Z
expect_event "port scan: 500 ports from one address, one distinct alert" "$A" \
    rule.id=firewall.portscan -- alert.key=source.ip=198.51.100.77 alert.observed:=20 \
    alert.field=destination.port alert.type=distinct
expect_event "password spraying: 6 accounts from one address" "$A" rule.id=ssh.password_spraying \
    -- alert.key=source.ip=192.0.2.66 alert.observed:=5
expect_event "sudo failures: three of alice on db1 (bob's one is not enough)" "$A" \
    rule.id=sudo.failures -- "alert.key=host.name=db1, user.name=alice" host.name=db1 user.name=alice
check "exactly 6 alerts (500 addresses on one port each gave none)" \
    test "$(ev count "$A" event.kind=alert)" = 6
check "the alerts file holds only alerts" test "$(ev count "$A")" = 6
check "the events file holds the events and the alerts" \
    test "$(ev count "$T/live.events.jsonl")" = "$(($(wc -l <"$T/live.sent") + 6))"
all_valid_json "alerts" "$A"

# logsift tail followed the file from before it existed
wait_until 10 not alive "$TAIL_PID"
check "tail: printed the 6 alerts, one line each" test "$(wc -l <"$T/tail.out")" = 6
check "tail: readable lines with severity, id, key and count" \
    grep -q '^2026-03-03 10:00:09Z  HIGH      ssh.bruteforce  source.ip=203.0.113.9  count=10  SSH brute force: 10 events (>= 10) in 1m' "$T/tail.out"
check "tail: no colour codes when stdout is not a terminal" not grep -q $'\033' "$T/tail.out"
sed 's/^/# /' "$T/tail.out"
out=$("$LOGSIFT" tail --from-beginning --max 1 --severity critical "$A")
check "tail --severity critical: the brute force that succeeded" \
    grep -q 'CRITICAL  ssh.bruteforce.success' <<<"$out"
out=$("$LOGSIFT" tail --from-beginning --max 1 --id 'firewall.*' --json "$A")
check "tail --id --json: the alert as JSON" ev count /dev/stdin rule.id=firewall.portscan <<<"$out"
out=$("$LOGSIFT" tail --from-beginning --max 1 --where user.name=alice "$A")
check "tail --where: a group_by field" grep -q 'sudo.failures' <<<"$out"
# tail follows a rotated file (rename, new file) like tail -F
: >"$T/rot.jsonl"
bg "$LOGSIFT" tail --max 2 "$T/rot.jsonl" >"$T/rot.out" 2>"$T/rot.err"
ROT=$BG_PID
wait_until 10 grep -q following "$T/rot.err"
sed -n 1p "$A" >>"$T/rot.jsonl"
wait_until 10 has_lines "$T/rot.out" 1
mv "$T/rot.jsonl" "$T/rot.jsonl.1"
sed -n 4p "$A" >"$T/rot.jsonl"
wait_until 10 not alive "$ROT"
check "tail: follows the file through a rotation" \
    test "$(awk '{print $4}' "$T/rot.out" | tr '\n' ' ')" = "ssh.bruteforce ssh.password_spraying "
lsf_stop live
check "live: logsift exits 0" test "$LSF_RC" = 0
check "live: snapshot written at shutdown" test -s "$T/live/det.snapshot"

# ---- replay: the same stream from a file gives the same alerts -----------------
config replay "    disable: [host.silent]" >"$T/replay.yaml"
"$LOGSIFT" run -c "$T/replay.yaml" --replay "$T/live.sent" 2>"$T/replay.err"
check "replay: exits 0" test $? = 0
alerts "$A" >"$T/live.sum"
alerts "$T/replay.alerts.jsonl" >"$T/replay.sum"
check "replay: the same alerts as live ingestion" diff "$T/live.sum" "$T/replay.sum"
sed 's/^/# /' "$T/replay.sum"
check "replay: no snapshot read or written" test ! -e "$T/replay/det.snapshot"

# ---- state survives a restart ----------------------------------------------------
lsf_start state < <(config state ) || finish
send state restart1
wait_until 10 has_events 6 "$T/state.events.jsonl"
lsf_stop state
check "restart: first run exits 0 and saved its state" test "$LSF_RC" = 0 -a -s "$T/state/det.snapshot"
lsf_start state2 < <(config state2 "" state ) || finish
grep -q 'restored' "$T/state2.err" && ok "restart: state restored" || not_ok "restart: state restored"
send state2 restart2
wait_until 10 n_alerts "$T/state.alerts.jsonl" 1
expect_event "restart: 6 before and 4 after add up in one alert" "$T/state.alerts.jsonl" \
    rule.id=ssh.bruteforce -- alert.key=source.ip=203.0.113.200 alert.count:=10 \
    alert.first_seen=2026-03-03T11:00:00.000000Z alert.exemplars#\>=3
lsf_stop state2
# a damaged snapshot is reported and ignored
printf 'garbage' | dd of="$T/state/det.snapshot" bs=1 seek=40 conv=notrunc 2>/dev/null
lsf_start state3 < <(config state3 "" state ) || finish
check "restart: a damaged snapshot is reported" grep -q 'snapshot ignored.*checksum' "$T/state3.err"
lsf_stop state3
check "restart: and logsift still runs and exits 0" test "$LSF_RC" = 0

# ---- a reload keeps the state of unchanged detections ------------------------------
mkdir -p "$T/packs2" "$T/reload"
cp "$PACKS"/*.yaml "$T/packs2/"
lsf_start reload < <(config reload | sed "s|$PACKS|$T/packs2|g") || finish
send reload reload1
wait_until 10 has_events 6 "$T/reload.events.jsonl"
sed -i 's/name: repeated sudo\/su failures/name: repeated sudo or su failures/' "$T/packs2/sudo.yaml"
kill -HUP "${LSF_PID[reload]}"
wait_until 10 grep -q 'det: 6 unchanged detections keep their state' "$T/reload.err"
check "reload: the changed sudo detection starts anew, the 6 others keep their state" \
    grep -q 'det: 6 unchanged detections keep their state' "$T/reload.err"
send reload reload2
wait_until 10 n_alerts "$T/reload.alerts.jsonl" 1
expect_event "reload: 6 failures before and 4 after the reload add up in one alert" \
    "$T/reload.alerts.jsonl" rule.id=ssh.bruteforce -- alert.key=source.ip=203.0.113.210 alert.count:=10
sed -i 's/within: 10m/within: never/' "$T/packs2/hosts.yaml"
kill -HUP "${LSF_PID[reload]}"
wait_until 10 grep -q 'det: reload failed' "$T/reload.err"
check "reload: a broken pack is refused with its position, the running detections stay" \
    grep -q "det: reload failed, the running detections stay in force: .*hosts.yaml:[0-9]*:[0-9]*: 'within' must be a duration" "$T/reload.err"
lsf_stop reload

# ---- web errors, a silent host ---------------------------------------------------
lsf_start web < <(config web ) || finish
send web web
wait_until 10 n_alerts "$T/web.alerts.jsonl" 1
settle "$T/web.events.jsonl"
expect_event "web: 30 4xx/5xx from one client in a minute, one alert" "$T/web.alerts.jsonl" \
    rule.id=web.error_burst -- alert.key=source.ip=198.51.100.5 alert.count:=30
lsf_stop web
lsf_start silence < <(config silence ) || finish
send silence silence
wait_until 10 n_alerts "$T/silence.alerts.jsonl" 1
settle "$T/silence.events.jsonl"
expect_event "host silent: app1 stopped, app2 went on: one alert, 10 minutes after app1's last line" \
    "$T/silence.alerts.jsonl" rule.id=host.silent -- alert.key=host.name=app1 host.name=app1 \
    @timestamp=2026-03-03T10:15:00.000000Z alert.type=sequence
check "host silent: nothing for app2" test "$(ev count "$T/silence.alerts.jsonl")" = 1
lsf_stop silence

# ---- configuration errors ----------------------------------------------------------
cat >"$T/bad.yaml" <<EOF
inputs: [{type: stdin}]
transforms:
  - type: detections
    detections:
      - id: x
        threshold: {count: 5, window: forever}
sinks: [{type: stdout}]
EOF
out=$("$LOGSIFT" check -c "$T/bad.yaml" 2>&1)
check "check: a bad window is refused with its position" \
    grep -q "bad.yaml:6:39: 'window' must be a duration" <<<"$out"
note "$out"
cat >"$T/bad2.yaml" <<EOF
inputs: [{type: stdin}]
transforms:
  - {type: detections, detections: [{id: a, score: 0.5}, {id: a, score: 0.6}]}
sinks: [{type: stdout}]
EOF
out=$("$LOGSIFT" check -c "$T/bad2.yaml" 2>&1)
check "check: a duplicate id is refused with both positions" \
    grep -q "bad2.yaml:3:63: detection id 'a' is already defined at .*bad2.yaml:3:37" <<<"$out"
note "$out"
cat >"$T/bad3.yaml" <<EOF
inputs: [{type: stdin}]
transforms:
  - {type: rules, packs: [$PACKS]}
  - type: detections
    packs: [$PACKS]
    detections:
      - id: three.failures
        when: {rule.id: sshd.auth.failed}
        threshold: {count: 3, window: 1m}
        tests:
          - events: [{line: '<38>1 2026-03-03T10:00:00Z h sshd 1 - - Failed password for root from 192.0.2.1 port 1 ssh2', repeat: 3, every: 40s}]
            expect: {alerts: 1}
sinks: [{type: stdout}]
EOF
out=$("$LOGSIFT" check -c "$T/bad3.yaml" 2>&1)
check "check: a detection test that fails (3 failures over 80 s are not 3 in a minute)" \
    grep -q "bad3.yaml:11:13: detection three.failures, test 1: 0 alerts, expected 1" <<<"$out"
note "$(tail -n 1 <<<"$out")"
out=$("$LOGSIFT" check 2>&1)
check "check: the default packs' detection tests pass" grep -q 'detections: 14 detection tests passed' <<<"$out"
check "the built-in configuration runs the detections and writes alerts.jsonl" \
    grep -q 'detections.*kinds: \[alert\]\|alerts.jsonl, kinds: \[alert\]' <("$LOGSIFT" config)
finish

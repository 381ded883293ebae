#!/usr/bin/env bash
# anomaly.sh - anomaly scoring end to end, with the real logsift:
#  - `logsift score`: one row out per row in, a spike scores high, and the
#    output is strictly streaming (a prefix of the input gives a prefix of
#    the output); bad input and bad options are reported;
#  - `logsift templates`: CSV out, the same template id for the same kind of
#    line, and the same ids again in a second run restored with -s;
#  - the anomaly stage in `logsift run` over RFC 5424 lines with event times:
#    a process never seen on a host after learning is a new_value alert; a
#    message unlike anything the host logged is a new_template; a host that
#    goes quiet gets an event of its own; the state is snapshotted at stop,
#    restored at the next start (the process is known then), and a corrupt
#    snapshot is reported and ignored;
#  - a bad detector is refused by `logsift check` with file:line:column.
. "$(dirname "$0")/lib.sh"

# ---- logsift score ----------------------------------------------------------------
python3 - "$T/series.csv" <<'EOF'
import math, random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    f.write("timestamp,value\n")
    for i in range(800):
        v = 50 + 10 * math.sin(i / 12.0) + random.gauss(0, 1)
        if i == 700:
            v = 140
        f.write("2024-01-%02d %02d:%02d:00,%.3f\n" % (1 + i // 288, i // 12 % 24, i % 12 * 5, v))
EOF
if "$LOGSIFT" score "$T/series.csv" >"$T/scores.csv" 2>"$T/score.err"; then
    ok "score: exits 0"
else
    not_ok "score: exits 0"; sed 's/^/# /' "$T/score.err"
fi
check "score: header and one row per input row" python3 - "$T/series.csv" "$T/scores.csv" <<'EOF'
import csv, sys
inp = list(csv.reader(open(sys.argv[1])))
out = list(csv.reader(open(sys.argv[2])))
assert out[0] == ["timestamp", "value", "anomaly_score"], out[0]
assert len(out) == len(inp), (len(out), len(inp))
for a, b in zip(inp[1:], out[1:]):
    assert a[0] == b[0] and a[1] == b[1], (a, b)
    assert 0 <= float(b[2]) <= 1, b
EOF
check "score: the spike is the highest score after learning, and above 0.99" python3 - "$T/scores.csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))[1:]
s = [float(r[2]) for r in rows]
assert all(x == 0 for x in s[:150]), "scores during the learning period"
assert s[700] >= 0.99, s[700]
assert s[700] == max(s), (s[700], max(s), s.index(max(s)))
EOF
head -n 451 "$T/series.csv" >"$T/prefix.csv"
"$LOGSIFT" score "$T/prefix.csv" >"$T/prefix_scores.csv" 2>/dev/null
check "score: strictly streaming (450 rows give the first 450 rows' scores)" \
    cmp "$T/prefix_scores.csv" <(head -n 451 "$T/scores.csv")
printf 'time,val\n1,2\n' >"$T/bad.csv"
if "$LOGSIFT" score "$T/bad.csv" >/dev/null 2>"$T/bad.err"; then
    not_ok "score: a CSV without timestamp/value columns is refused"
else
    check "score: a CSV without timestamp/value columns is refused" grep -q "timestamp" "$T/bad.err"
fi
if "$LOGSIFT" score --detector nope "$T/series.csv" >/dev/null 2>"$T/bad2.err"; then
    not_ok "score: an unknown detector is refused"
else
    check "score: an unknown detector is refused" grep -q "numeric or rate" "$T/bad2.err"
fi
printf 'timestamp,value\n2024-01-01 00:00:00,1\nyesterday,x\n2024-01-01 00:10:00,3\n' >"$T/odd.csv"
"$LOGSIFT" score "$T/odd.csv" >"$T/odd_scores.csv" 2>"$T/odd.err"
check "score: unreadable rows are reported, scored 0, and kept" \
    bash -c "[ \$(wc -l <'$T/odd_scores.csv') = 4 ] && grep -q 'not a number' '$T/odd.err'"

# ---- logsift templates ---------------------------------------------------------------
cat >"$T/msgs.txt" <<'EOF'
Accepted password for alice from 10.0.0.1 port 5000 ssh2
Connection closed by 10.0.0.9 [preauth]
Accepted password for bob from 10.0.0.2 port 5001 ssh2
VM Started (Lifecycle Event)
VM Paused (Lifecycle Event)
EOF
"$LOGSIFT" templates -s "$T/tpl.state" "$T/msgs.txt" >"$T/tpl1.csv"
check "templates: one row per line, same id for the same kind of line" python3 - "$T/tpl1.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["line"] for r in rows] == ["1", "2", "3", "4", "5"], rows
assert rows[0]["template_id"] == rows[2]["template_id"]
assert rows[3]["template_id"] != rows[4]["template_id"]
assert rows[2]["template"] == "Accepted password for <*> from <*> port <*>", rows[2]
EOF
printf 'Accepted password for carol from 10.9.9.9 port 6000 ssh2\nVM Paused (Lifecycle Event)\n' |
    "$LOGSIFT" templates -s "$T/tpl.state" >"$T/tpl2.csv"
check "templates: ids survive a restart through -s STATE" python3 - "$T/tpl1.csv" "$T/tpl2.csv" <<'EOF'
import csv, sys
a = list(csv.DictReader(open(sys.argv[1])))
b = list(csv.DictReader(open(sys.argv[2])))
assert b[0]["template_id"] == a[0]["template_id"], (a[0], b[0])
assert b[1]["template_id"] == a[4]["template_id"], (a[4], b[1])
EOF

# ---- the anomaly stage -------------------------------------------------------------
# gen.py PHASE: RFC 5424 lines with event times. web1 and web2 log steadily
# (sshd, cron; 6 lines a minute each); phase 1 ends with web1 running `nc`
# and logging a kernel panic, and web2 falling silent for its last 40 minutes.
cat >"$T/gen.py" <<'EOF'
import random, sys
random.seed(3)
phase = sys.argv[1]
def ts(m, s):
    d, m = divmod(m, 1440)
    return "2026-03-%02dT%02d:%02d:%02dZ" % (1 + d, m // 60, m % 60, s)
start, end = (0, 400) if phase == "1" else (400, 460)
for m in range(start, end):
    for k in range(6):
        for host in ("web1", "web2"):
            if host == "web2" and phase == "1" and m >= 360:
                continue
            app = ("sshd", "cron")[k % 2]
            msg = ("Accepted password for u%d from 10.0.0.%d port %d ssh2" % (k, random.randint(1, 9), random.randint(1000, 9999))
                   if app == "sshd" else "(root) CMD (run-parts /etc/cron.hourly)")
            print("<38>1 %s %s %s %d - - %s" % (ts(m, k * 10), host, app, random.randint(100, 999), msg))
    if m == (390 if phase == "1" else 450):
        print("<38>1 %s web1 nc 4242 - - listening on 0.0.0.0 4444" % ts(m, 59))
    if m == 395 and phase == "1":
        print("<34>1 %s web1 kernel - - - kernel panic: corrupted stack end detected" % ts(m, 59))
EOF
cat >"$T/anom.yaml" <<EOF
log_level: info
workers: 2
state_dir: $T
inputs: [{type: stdin}]
transforms:
  - type: anomaly
    detectors:
      - {name: apps, type: new_value, by: [host.name], field: process.name, learning: 1h}
      - {name: volume, type: rate, by: [host.name], interval: 1m, learn: 60}
      - {name: messages, type: rare_template, by: [host.name], learning: 1h}
sinks: [{type: file, path: $T/out.jsonl}]
EOF
python3 "$T/gen.py" 1 >"$T/phase1.log"
"$LOGSIFT" run -c "$T/anom.yaml" <"$T/phase1.log" 2>"$T/run1.err"
rc=$?
check "stage: run 1 exits 0" test "$rc" = 0
check "stage: processes new to a host after learning are new_value alerts" python3 - "$T/out.jsonl" <<'EOF'
import json, sys
evs = list(map(json.loads, open(sys.argv[1])))
hits = [e for e in evs if "apps" in e.get("anomaly", {}).get("detectors", [e.get("anomaly", {}).get("detector")])]
assert sorted(e["process"]["name"] for e in hits) == ["kernel", "nc"], hits
a = [e["anomaly"] for e in hits if e["process"]["name"] == "nc"][0]
assert a["detector"] == "apps" and a["reason"] == "new_value" and a["alert"] is True, a
assert a["observed"] == "nc" and a["score"] >= 0.995 and a["key"] == "web1", a
assert a["expected"].startswith("one of 2 known values"), a
EOF
check "stage: a message unlike the host's others also scores as a template (anomaly.detectors)" python3 - "$T/out.jsonl" <<'EOF'
import json, sys
panic = [e for e in map(json.loads, open(sys.argv[1])) if "kernel panic" in e["message"]]
assert len(panic) == 1, panic
a = panic[0]["anomaly"]
assert sorted(a["detectors"]) == ["apps", "messages"], a
assert a["alert"] is True and a["score"] >= 0.995, a
EOF
check "stage: a host that goes quiet gets an event of its own" python3 - "$T/out.jsonl" <<'EOF'
import json, sys
quiet = [e for e in map(json.loads, open(sys.argv[1])) if e.get("anomaly", {}).get("reason") == "quiet"]
assert quiet, "no quiet event"
e = quiet[0]
assert e["host"]["name"] == "web2" and e["anomaly"]["observed"] == 0, e
assert e["anomaly"]["expected"] >= 5 and e["anomaly"]["score"] >= 0.99, e
assert e["@timestamp"] >= "2026-03-01T06:00", e["@timestamp"]
EOF
check "stage: the state was written at stop" test -s "$T/anomaly.snapshot"

python3 "$T/gen.py" 2 >"$T/phase2.log"
rm -f "$T/out.jsonl"
"$LOGSIFT" run -c "$T/anom.yaml" <"$T/phase2.log" 2>"$T/run2.err"
check "stage: after a restart the restored state knows nc on web1" python3 - "$T/out.jsonl" <<'EOF'
import json, sys
evs = list(map(json.loads, open(sys.argv[1])))
assert any(e.get("process", {}).get("name") == "nc" for e in evs)
hits = [e for e in evs if e.get("anomaly", {}).get("detector") == "apps"]
assert not hits, hits
EOF

head -c 300 "$T/anomaly.snapshot" >"$T/snap.cut" && mv "$T/snap.cut" "$T/anomaly.snapshot"
rm -f "$T/out.jsonl"
"$LOGSIFT" run -c "$T/anom.yaml" <"$T/phase2.log" 2>"$T/run3.err"
rc=$?
check "stage: a corrupt snapshot is reported" grep -q "unusable.*ignored" "$T/run3.err"
check "stage: ... and ignored: the run goes on with empty state" \
    bash -c "[ $rc = 0 ] && [ \$(wc -l <'$T/out.jsonl') = \$(wc -l <'$T/phase2.log') ]"

# ---- config errors -------------------------------------------------------------------
cat >"$T/bad.yaml" <<'EOF'
inputs: [{type: stdin}]
transforms:
  - type: anomaly
    detectors:
      - {name: lat, type: numeric, by: [service.name]}
sinks: [{type: stdout}]
EOF
"$LOGSIFT" check -c "$T/bad.yaml" >"$T/check.out" 2>&1
check "check: a numeric detector without field is refused at its line" \
    grep -q "bad.yaml:5:.*needs 'field'" "$T/check.out"
finish

# rules.sh - rule packs as their users meet them: `logsift test` on the
# shipped packs and on a failing pack, `logsift check` error positions and
# warnings, `logsift parse -r`, and hot reload of a running logsift (a pack
# file changes -> new rule ids; a broken pack -> error logged with its
# position, old rules keep working; SIGHUP reloads too; drops are counted).
. "$(dirname "$0")/lib.sh"
REPO=$(cd "$LIB_DIR/../.." && pwd)

# ---- logsift test ---------------------------------------------------------------

out=$("$LOGSIFT" test "$REPO/rules/packs" 2>&1)
rc=$?
printf '%s\n' "$out" | tail -n 3 | sed 's/^/# /'
check "test: every shipped pack's tests pass" test "$rc" = 0
check "test: no rule of the shipped packs lacks a test" \
    bash -c "printf '%s\n' \"\$1\" | grep -q ' 0 rules without a test'" _ "$out"
check "test: no line of the shipped packs is ambiguous" \
    bash -c "printf '%s\n' \"\$1\" | grep -q ' 0 ambiguous lines'" _ "$out"

mkdir -p "$T/failing"
cat >"$T/failing/demo.yaml" <<'EOF'
pack: demo
rules:
  - id: demo.port
    match: 'port %{INT:source.port}'
tests:
  - line: 'connect port 22'
    expect: {rule.id: demo.port, source.port: 22}
EOF
out=$("$LOGSIFT" test "$T/failing" 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/# /'
check "test: a failing pack exits 1" test "$rc" = 1
check "test: the failure names file:line:col and diffs the field with its type" \
    bash -c "printf '%s\n' \"\$1\" | grep -q '^FAIL .*/demo.yaml:6:5' &&
             printf '%s\n' \"\$1\" | grep -Eq 'source.port +22 \\(int\\) +22 \\(string\\)'" _ "$out"

# ---- logsift check ------------------------------------------------------------------

mkdir -p "$T/bad"
cat >"$T/bad/bad.yaml" <<'EOF'
pack: bad
rules:
  - id: bad.one
    when: {process.name: sshd}
    match: 'Failed (?<ssh.method>\S+) for (%{USER:user.name}'
EOF
cat >"$T/bad.conf" <<EOF
inputs: [{type: stdin}]
transforms: [{type: rules, packs: ["$T/bad"]}]
sinks: [{type: stdout}]
EOF
out=$("$LOGSIFT" check -c "$T/bad.conf" 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/# /'
check "check: a pack whose regex does not compile fails the check" test "$rc" = 1
check "check: the error gives the pack's file:line:col, the pattern and the offset" \
    bash -c "printf '%s\n' \"\$1\" | grep -q 'bad/bad.yaml:5:12: rule bad.one: regex does not compile: missing closing parenthesis at offset 48' &&
             printf '%s\n' \"\$1\" | grep -q 'pattern: Failed (?<ssh.method>'" _ "$out"

cat >"$T/bad/bad.yaml" <<'EOF'
pack: bad
rules:
  - id: bad.slow
    match: '^(\w+\s?)*$'
tests:
  - line: 'just some words'
    expect: {rule.id: bad.slow}
EOF
out=$("$LOGSIFT" check -c "$T/bad.conf" 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/# /'
check "check: a nested quantifier is a warning, not an error" test "$rc" = 0
check "check: the warning names the rule and its position" \
    bash -c "printf '%s\n' \"\$1\" | grep -q 'warn: .*bad/bad.yaml:4:12: rule bad.slow: nested quantifier'" _ "$out"

# ---- logsift parse -r -----------------------------------------------------------------

printf '%s\n' \
    '<38>Mar  3 10:00:01 web1 sshd[42]: Failed password for root from 203.0.113.9 port 50514 ssh2' \
    '<30>May  1 08:00:01 host1 systemd[1]: app.service: Consumed 2.345s CPU time.' \
    'nothing matches this line' |
    (cd "$REPO" && "$LOGSIFT" parse -z UTC -r rules/packs) >"$T/parse.json" 2>"$T/parse.err"
check "parse -r: one event per line, dropped ones included" test "$(lines "$T/parse.json")" = 3
expect_event "parse -r: the matching rule and its fields" "$T/parse.json" \
    'message^=Failed password' -- rule.id=sshd.auth.failed rule.ruleset=sshd user.name=root \
    source.ip=203.0.113.9 'source.port:=50514' 'event.severity:=3' 'tags@=attack.t1110'
expect_event "parse -r: a drop rule's line is shown, tagged _drop" "$T/parse.json" \
    'message^=app.service: Consumed' -- rule.id=systemd.noise.cpu_consumed 'tags@=_drop'
expect_event "parse -r: an unmatched line has no rule" "$T/parse.json" \
    'message=nothing matches this line' -- 'rule!'

# ---- hot reload ---------------------------------------------------------------------------

mkdir -p "$T/packs"
write_pack() { # write_pack VERSION: the pack as an editor saves it (new file, rename)
    cat >"$T/packs/.demo.yaml.swp"
    mv "$T/packs/.demo.yaml.swp" "$T/packs/demo.yaml"
}
write_pack <<'EOF'
pack: demo
rules:
  - id: demo.v1
    when: {process.name: app}
    match: '^ping (?<seq:int>\d+)'
  - id: demo.noise
    when: {process.name: app}
    match: '^noise'
    drop: true
tests:
  - line: '<14>Mar  3 10:00:01 h app: ping 1'
    expect: {rule.id: demo.v1, seq: 1}
  - line: '<14>Mar  3 10:00:01 h app: noise'
    expect: {rule.id: demo.noise}
    dropped: true
EOF

lsf_start reload <<EOF || finish
log_level: debug
parse: {timezone: UTC}
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/reload.port
transforms:
  - type: rules
    name: rules
    packs: ["$T/packs"]
    reload_debounce: 100ms
sinks:
  - type: file
    path: $T/reload.json
EOF
P=$(port "$T/reload.port")
OUT=$T/reload.json
ERR=$T/reload.err
send() { printf '<14>Mar  3 10:00:01 h app: %s\n' "$@" | send_tcp "$P"; }
reloads() { grep -c "$1" "$ERR"; }

send 'ping 1' 'noise' 'ping 2'
wait_lines "$OUT" 2
expect_event "reload: the first rules apply" "$OUT" 'message=ping 1' -- rule.id=demo.v1 'seq:=1'
check "reload: the drop rule's line is not written" bash -c "! grep -q noise '$OUT'"

# 1. a changed file is picked up by inotify; new rule ids take effect
n=$(reloads 'rules: reloaded')
write_pack <<'EOF'
pack: demo
rules:
  - id: demo.v2
    when: {process.name: app}
    match: '^ping (?<seq:int>\d+)'
    severity: high
tests:
  - line: '<14>Mar  3 10:00:01 h app: ping 1'
    expect: {rule.id: demo.v2}
EOF
check "reload: a pack file change reloads the rules" wait_until 10 bash -c "[ \$(grep -c 'rules: reloaded' '$ERR') -gt $n ]"
send 'ping 3' 'noise'
wait_lines "$OUT" 4
expect_event "reload: new rule ids take effect" "$OUT" 'message=ping 3' -- rule.id=demo.v2 \
    rule.severity=high
expect_event "reload: a rule removed by the change no longer applies" "$OUT" 'message=noise' -- 'rule!'

# 2. a broken pack: the error is logged with its position, the old rules stay
write_pack <<'EOF'
pack: demo
rules:
  - id: demo.v3
    when: {process.name: app}
    match: '^ping (?<seq:int>\d+'
EOF
check "reload: a broken pack is refused with file:line:col in the log" \
    wait_until 10 grep -q "reload failed, the running rules stay in force: .*demo.yaml:5:12: rule demo.v3: regex does not compile" "$ERR"
send 'ping 4'
wait_lines "$OUT" 5
expect_event "reload: the running rules keep working after a refused reload" "$OUT" \
    'message=ping 4' -- rule.id=demo.v2

# 3. a pack whose own tests fail is refused too
write_pack <<'EOF'
pack: demo
rules:
  - id: demo.v4
    when: {process.name: app}
    match: '^pong'
tests:
  - line: '<14>Mar  3 10:00:01 h app: ping 1'
    expect: {rule.id: demo.v4}
EOF
check "reload: a pack failing its tests is refused" \
    wait_until 10 grep -q "reload failed.*demo.yaml:7:5: test expects rule demo.v4, but no rule matched" "$ERR"

lsf_stop reload
check "reload: logsift exits cleanly" test "$LSF_RC" = 0
check "reload: every line written exactly once (none lost or doubled across reloads)" \
    test "$(grep -c '"message":"ping' "$OUT")" = 4
check "reload: the drop is counted" test "$(counter "$ERR" '^rules\.dropped$')" = 1
check "reload: reloads and refused reloads are counted" \
    bash -c "[ $(counter "$ERR" '^rules\.reloads$') -ge 1 ] && [ $(counter "$ERR" '^rules\.reload_errors$') -ge 2 ]"

# 4. SIGHUP reloads; with watch: false a changed file alone does not
write_pack <<'EOF'
pack: demo
rules:
  - id: demo.v2
    when: {process.name: app}
    match: '^ping'
EOF
lsf_start hup <<EOF || finish
log_level: info
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/hup.port
transforms:
  - type: rules
    packs: ["$T/packs"]
    watch: false
sinks:
  - type: file
    path: $T/hup.json
EOF
P=$(port "$T/hup.port")
cat >"$T/packs/demo.yaml" <<'EOF'
pack: demo
rules:
  - id: demo.v5
    when: {process.name: app}
    match: '^ping'
EOF
sleep 1
send 'ping 5'
wait_lines "$T/hup.json" 1
expect_event "hup: without watch, a changed file is not loaded by itself" "$T/hup.json" \
    'message=ping 5' -- rule.id=demo.v2
kill -HUP "${LSF_PID[hup]}"
check "hup: SIGHUP reloads" wait_until 10 grep -q 'reloaded 1 packs' "$T/hup.err"
send 'ping 6'
wait_lines "$T/hup.json" 2
expect_event "hup: rules loaded by SIGHUP apply" "$T/hup.json" 'message=ping 6' -- rule.id=demo.v5
lsf_stop hup
check "hup: logsift exits cleanly" test "$LSF_RC" = 0

finish

# enrich.sh - the enrichment stages in a running logsift, as users meet them:
# sshd lines over TCP, classified by the shipped sshd pack (which captures
# source.ip and user.name as strings), then geoip (MaxMind's City and ASN test
# databases), cidr (a network table), lookup (a user table) and fields
# (shaping), checked field by field in the output file. Then live changes: the
# network table is rewritten (picked up by the file check), the GeoIP database
# is replaced and SIGHUP sent, and a broken table is refused with its
# position while the old one keeps working. Also `logsift check` errors and
# `logsift help geoip`.
. "$(dirname "$0")/lib.sh"
REPO=$(cd "$LIB_DIR/../.." && pwd)
FX="$REPO/tests/fixtures/geoip"

# Tables and databases live in $T so they can be changed under logsift.
cp "$FX/GeoIP2-City-Test.mmdb" "$T/city.mmdb"
cat >"$T/nets.csv" <<'EOF'
network,network.zone,asset.owner
10.0.0.0/8,internal,it
10.20.0.0/16,dmz,
0.0.0.0/0,internet,
EOF
cat >"$T/users.csv" <<'EOF'
user.name,user.department
root,operations
alice,finance
EOF
replace() { cp "$1" "$2.new" && mv -f "$2.new" "$2"; } # atomic, as geoipupdate does

lsf_start en <<EOF || finish
log_level: debug
inputs:
  - type: syslog_tcp
    listen: "127.0.0.1:0"
    port_file: $T/tcp.port
transforms:
  - type: rules
    packs: ["$REPO/rules/packs/sshd.yaml"]
  - type: geoip
    databases: ["$T/city.mmdb", "$FX/GeoLite2-ASN-Test.mmdb"]
    fields: [source.ip, destination.ip]
  - type: cidr
    path: $T/nets.csv
    fields: [source.ip]
    check_interval: 100ms
  - type: lookup
    path: $T/users.csv
    check_interval: 100ms
  - type: fields
    add: {observer.name: it-edge}
    remove: [ssh.method]
    add_tags: [enriched]
sinks:
  - type: file
    path: $T/out.json
EOF
out=$T/out.json
TP=$(port "$T/tcp.port")
PID=${LSF_PID[en]}
line() { # host user ip tag
    printf '<38>Mar  3 10:00:01 %s sshd[42]: Failed password for %s from %s port 50514 ssh2 %s\n' \
        web1 "$1" "$2" "$3"
}

{
    line root 81.2.69.160 first
    line alice 89.160.20.112 first
    line bob 10.20.1.5 first
    line root 10.9.9.9 first
    line root 203.0.113.9 first
    line root 2001:218::1 first
} | send_tcp "$TP"
wait_lines "$out" 6 20
all_valid_json "enrich" "$out"

expect_event "geoip: London with location and time zone, from a rule capture" "$out" \
    'message~=from 81.2.69.160 ' -- source.geo.city_name=London source.geo.country_iso_code=GB \
'source.geo.location:={"lat":51.5142,"lon":-0.0931}' \
    source.geo.timezone=Europe/London source.geo.continent_code=EU
expect_event "geoip: city and AS from two databases" "$out" \
    'message~=from 89.160.20.112 ' -- source.geo.city_name=Linköping 'source.as.number:=29518' \
    'source.as.organization.name=Bredband2 AB'
expect_event "geoip: IPv6 address" "$out" 'message~=from 2001:218::1 ' -- \
    source.geo.country_iso_code=JP source.geo.city_name!
expect_event "geoip: private and documentation addresses are tagged, not looked up" "$out" \
    -n 3 'source.ip_scope?' -- source.geo!
expect_event "geoip: ... private" "$out" 'message~=from 10.20.1.5 ' -- source.ip_scope=private
expect_event "geoip: ... documentation" "$out" 'message~=from 203.0.113.9 ' -- \
    source.ip_scope=documentation
expect_event "cidr: longest prefix, inherited owner" "$out" 'message~=from 10.20.1.5 ' -- \
    source.network.zone=dmz source.asset.owner=it
expect_event "cidr: less specific network" "$out" 'message~=from 10.9.9.9 ' -- \
    source.network.zone=internal
expect_event "cidr: default route" "$out" 'message~=from 81.2.69.160 ' -- \
    source.network.zone=internet source.asset.owner!
expect_event "lookup: user.name -> user.department" "$out" -n 4 'user.name=root' -- \
    user.department=operations
expect_event "lookup: unknown user gets nothing" "$out" 'user.name=bob' -- user.department!
expect_event "fields: add, remove, add_tags on every event" "$out" -n 6 'observer.name=it-edge' -- \
    ssh.method! tags@=enriched rule.id=sshd.auth.failed

# ---- live changes ----------------------------------------------------------------

# 1. the network table changes on disk: picked up by the file check, no signal
cat >"$T/nets2.csv" <<'EOF'
network,network.zone
10.20.0.0/16,quarantine
EOF
replace "$T/nets2.csv" "$T/nets.csv"
# send_probe IP: sends one line with a unique tag and waits for it; PROBE = the tag.
# (Runs inside `check`, i.e. in a subshell: nothing it sets survives, hence the tag.)
send_probe() {
    PROBE="probe-${EPOCHREALTIME/./}-"
    line root "$1" "$PROBE" | send_tcp "$TP"
    wait_until 10 has_events 1 "$out" "message~=$PROBE"
}
probe() { # true when a new line from 10.20.1.5 gets zone $1
    send_probe 10.20.1.5 && [ "$(ev count "$out" "message~=$PROBE" "source.network.zone=$1")" = 1 ]
}
check "cidr: a changed table is used without a restart" wait_until 40 probe quarantine

# 2. a broken table is refused, the running one stays
printf 'network,network.zone\n10.20.0.0/33,broken\n' >"$T/bad.csv"
replace "$T/bad.csv" "$T/nets.csv"
check "cidr: a broken table is logged with its file:line:col" \
    wait_until 40 grep -q "nets.csv:2:1: '10.20.0.0/33': the prefix length must be 0-32" "$T/en.err"
check "cidr: ... and the loaded table stays in use" probe quarantine

# 3. the GeoIP database is replaced and SIGHUP sent
cp "$FX/swap-b.mmdb" "$T/b.mmdb"
replace "$T/b.mmdb" "$T/city.mmdb"
kill -HUP "$PID"
gprobe() {
    send_probe 11.2.3.4 && [ "$(ev count "$out" "message~=$PROBE" source.geo.city_name=Bravo)" = 1 ]
}
check "geoip: after SIGHUP the new database answers" wait_until 40 gprobe
expect_event "geoip: the AS database still answers" "$out" -n 1 \
    'message~=89.160.20.112' -- 'source.as.number:=29518'
all_valid_json "enrich (after reloads)" "$out"

check "logsift still running after the reloads" alive "$PID" ||
    sed 's/^/# /' "$T/en.err" | tail -n 20
lsf_stop en
check "logsift exits 0 on SIGTERM" test "$LSF_RC" = 0
note "counters: $(grep -E '^(geoip|cidr|lookup)#' "$T/en.err" | tr '\n' ' ')"
check "counters: special addresses, reloads and refused reloads are counted" \
    test "$(counter "$T/en.err" '^geoip#[0-9]+\.special$')" -ge 3 -a \
    "$(counter "$T/en.err" '^geoip#[0-9]+\.reloads$')" = 1 -a \
    "$(counter "$T/en.err" '^cidr#[0-9]+\.reload_errors$')" = 2 # file check and SIGHUP

# ---- check and help ------------------------------------------------------------------

cat >"$T/bad.conf" <<EOF
inputs: [{type: stdin}]
transforms:
  - type: cidr
    path: "$T/dup.csv"
  - type: geoip
    databases: ["$T/missing.mmdb"]
sinks: [{type: stdout}]
EOF
printf 'network,zone\n10.0.0.0/8,a\n10.0.0.0/8,b\n' >"$T/dup.csv"
out2=$("$LOGSIFT" check -c "$T/bad.conf" 2>&1)
rc=$?
note "$out2"
check "check: a table with a repeated network fails with the table's file:line:col" \
    bash -c '[ "$1" = 1 ] && printf "%s\n" "$2" | grep -q "dup.csv:3:1: network 10.0.0.0/8 is listed twice (first at line 2)"' _ "$rc" "$out2"
printf 'network,zone\n10.0.0.0/8,a\n' >"$T/dup.csv"
out2=$("$LOGSIFT" check -c "$T/bad.conf" 2>&1)
note "$out2"
check "check: a missing database points at the config" \
    bash -c 'printf "%s\n" "$1" | grep -q "bad.conf:6:16: .*missing.mmdb: cannot open the MaxMind DB"' _ "$out2"
help=$("$LOGSIFT" help geoip 2>&1)
check "help geoip lists its settings" \
    bash -c 'for k in databases fields mapping language cache_size check_interval ip_scope; do
                 printf "%s\n" "$1" | grep -q "$k" || exit 1; done' _ "$help"
finish

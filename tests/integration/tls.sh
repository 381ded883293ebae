# tls.sh - syslog over TLS (RFC 5425): a real rsyslogd forwards through its
# OpenSSL driver (omfwd StreamDriver="ossl", octet-counted) with a client
# certificate; openssl s_client without a certificate, and with a certificate
# whose name is not allowed, are refused; every case is logged. Certificates
# are made here with openssl req/x509. SIGHUP reloads a new server
# certificate; a broken one is refused and the running one stays;
# min_version 1.3 refuses TLS 1.2.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || skip_all "openssl is not installed (Debian package openssl)"
RSYSLOGD=${RSYSLOGD:-$(command -v rsyslogd || echo /usr/sbin/rsyslogd)}
[ -x "$RSYSLOGD" ] || skip_all "rsyslogd is not installed (Debian package rsyslog)"
ls /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so /usr/lib/*/rsyslog/lmnsd_ossl.so >/dev/null 2>&1 ||
    skip_all "rsyslog's OpenSSL driver is not installed (Debian package rsyslog-openssl)"

# ---- certificates: a CA, the server (localhost), rsyslog's client cert, a rogue client
C=$T/certs
mkdir -p "$C"
mkcert() { # NAME CN [signer]
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" -keyout "$C/$1.key" \
        -out "$C/$1.pem" -CA "$C/ca.pem" -CAkey "$C/ca.key" \
        -addext "subjectAltName=DNS:$2,IP:127.0.0.1" >/dev/null 2>&1
}
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=logsift test CA" \
    -keyout "$C/ca.key" -out "$C/ca.pem" >/dev/null 2>&1
mkcert server localhost && mkcert client client.example && mkcert rogue rogue.example &&
    mkcert server2 localhost || skip_all "openssl cannot make certificates here"
cp "$C/server.pem" "$C/live.pem"
cp "$C/server.key" "$C/live.key"

lsf_start tls <<EOF || finish
log_level: debug
parse: {timezone: UTC}
inputs:
  - type: syslog_tcp
    name: tls
    listen: "127.0.0.1:0"
    port_file: $T/tls.port
    tls:
      cert_file: $C/live.pem
      key_file: $C/live.key
      ca_file: $C/ca.pem
      verify_client: required
      allowed_peers: ["client.example", "*.trusted.example"]
  - type: syslog_tcp
    name: tls13
    listen: "127.0.0.1:0"
    port_file: $T/tls13.port
    tls: {cert_file: $C/server.pem, key_file: $C/server.key, min_version: "1.3"}
sinks:
  - type: file
    path: $T/out.json
EOF
out=$T/out.json
P=$(port "$T/tls.port")
P13=$(port "$T/tls13.port")

# ---- rsyslog with a client certificate
mkdir -p "$T/rs"
cat >"$T/rs/rsyslog.conf" <<EOF
global(workDirectory="$T/rs" maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="$T/rs/port" ruleset="fwd")
ruleset(name="fwd") {
    action(type="omfwd" target="127.0.0.1" port="$P" protocol="tcp" TCP_Framing="octet-counted"
           template="RSYSLOG_SyslogProtocol23Format"
           StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
           StreamDriverPermittedPeers="localhost"
           StreamDriver.CAFile="$C/ca.pem" StreamDriver.CertFile="$C/client.pem"
           StreamDriver.KeyFile="$C/client.key")
}
EOF
bg "$RSYSLOGD" -n -f "$T/rs/rsyslog.conf" -i "$T/rs/pid" >"$T/rs/out" 2>&1
RSPID=$BG_PID
if ! wait_until 15 test -s "$T/rs/port"; then
    not_ok "rsyslogd started"
    sed 's/^/# /' "$T/rs/out" | tail -n 20
    finish
fi
RP=$(port "$T/rs/port")
for i in 1 2 3; do
    printf '<14>Mar  3 10:00:0%d web1 app[7]: over tls %d\n' "$i" "$i"
done | send_tcp "$RP"
wait_lines "$out" 3 30
check "rsyslog over TLS with a client certificate: 3 messages arrive" \
    test "$(ev count "$out" 'message~=over tls')" = 3
expect_event "rsyslog over TLS: fields intact" "$out" 'message=over tls 2' -- host.name=web1 \
    process.name=app 'process.pid:=7' 'log.source.address~/^127\.0\.0\.1:'
check "the rsyslog client is logged with its certificate name" \
    grep -q "TLS client 127.0.0.1:[0-9]*: TLSv1.[23], .*peer certificate: client.example" "$T/tls.err"

# ---- refused clients
sclient() { # PORT [extra s_client args]: sends one line, reports nothing
    local p=$1
    shift
    printf '<14>Mar  3 10:00:09 evil app: %s\n' "$REFUSED_MSG" |
        timeout 10 openssl s_client -connect "127.0.0.1:$p" -CAfile "$C/ca.pem" -quiet -no_ign_eof \
            "$@" >/dev/null 2>&1
}
REFUSED_MSG="no certificate"
sclient "$P"
wait_until 10 grep -q "TLS handshake with 127.0.0.1:[0-9]* failed: .*certificate" "$T/tls.err"
check "a client without a certificate is refused and logged" \
    grep -q "TLS handshake with 127.0.0.1:[0-9]* failed: peer did not return a certificate" "$T/tls.err"
REFUSED_MSG="rogue name"
sclient "$P" -cert "$C/rogue.pem" -key "$C/rogue.key"
wait_until 10 grep -q "rogue.example is not in allowed_peers" "$T/tls.err"
check "a client whose certificate name is not allowed is refused and logged" \
    grep -q "TLS client 127.0.0.1:[0-9]* refused: certificate name rogue.example is not in allowed_peers" "$T/tls.err"
REFUSED_MSG="allowed s_client"
sclient "$P" -cert "$C/client.pem" -key "$C/client.key"
wait_until 10 has_events 1 "$out" 'message=allowed s_client'
check "openssl s_client with an allowed certificate is read" has_events 1 "$out" 'message=allowed s_client'

# ---- minimum version
REFUSED_MSG="tls 1.2 to a 1.3 listener"
sclient "$P13" -tls1_2
REFUSED_MSG="tls 1.3 to a 1.3 listener"
sclient "$P13" -tls1_3
wait_until 10 has_events 1 "$out" 'message=tls 1.3 to a 1.3 listener'
check "min_version 1.3: a TLS 1.3 client is read" has_events 1 "$out" 'message=tls 1.3 to a 1.3 listener'
check "min_version 1.3: a TLS 1.2 client is refused and logged" \
    grep -q "tls13: TLS handshake with .* failed: unsupported protocol" "$T/tls.err"

# ---- SIGHUP reload
served() { # the SHA-256 fingerprint of the certificate the listener presents
    timeout 10 openssl s_client -connect "127.0.0.1:$P" -CAfile "$C/ca.pem" -cert "$C/client.pem" \
        -key "$C/client.key" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256
}
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
check "before SIGHUP the first certificate is served" test "$(served)" = "$(fp "$C/server.pem")"
cp "$C/server2.pem" "$C/live.pem"
cp "$C/server2.key" "$C/live.key"
kill -HUP "${LSF_PID[tls]}"
wait_until 10 grep -q "tls: TLS certificates reloaded" "$T/tls.err"
check "after SIGHUP the new certificate is served" test "$(served)" = "$(fp "$C/server2.pem")"
echo "not a key" >"$C/live.key"
kill -HUP "${LSF_PID[tls]}"
wait_until 10 grep -q "TLS reload refused, keeping the running certificates" "$T/tls.err"
check "a broken key on SIGHUP is refused (logged) and the running certificate stays" \
    test "$(served)" = "$(fp "$C/server2.pem")"

check "nothing from refused clients arrived" test "$(ev count "$out" 'message~=no certificate')$(ev count "$out" 'message~=rogue')$(ev count "$out" 'message~=tls 1.2')" = 000
all_valid_json "tls" "$out"
stop_pid "$RSPID" 15
lsf_stop tls
check "logsift exits 0" test "$LSF_RC" = 0
check "refused handshakes were counted" test "$(counter "$T/tls.err" '^tls1?3?\.tls_handshakes_failed$')" -ge 2
check "the peer-name refusal was counted" test "$(counter "$T/tls.err" '^tls\.tls_peers_not_allowed$')" = 1
finish

#!/usr/bin/env bash
# Sink codecs: `raw` writes each record exactly as received, `json` the
# event; both at once from one pipeline; a bad codec is a positioned error.
set -u
. "$(dirname "$0")/lib.sh"

printf '<13>Mar  3 10:00:01 h app: one\nplain line two\n{"msg":"three"}\n' >"$T/in.log"
cat >"$T/both.yaml" <<YAML
inputs: [{type: file, path: "$T/in.log"}]
sinks:
  - {type: file, path: "$T/raw.out", codec: raw}
  - {type: file, path: "$T/json.out"}
YAML
"$LOGSIFT" run -c "$T/both.yaml" 2>"$T/err"
check "run with a raw and a json sink exits 0" test $? = 0
check "raw sink: the records byte for byte" cmp -s "$T/in.log" "$T/raw.out"
check "json sink: three events" test "$(lines "$T/json.out")" = 3
expect_event "json sink: the syslog line is parsed" "$T/json.out" message=one -- process.name=app

cat >"$T/rawonly.yaml" <<YAML
inputs: [{type: file, path: "$T/in.log"}]
sinks: [{type: stdout, codec: raw}]
YAML
"$LOGSIFT" run -c "$T/rawonly.yaml" >"$T/stdout.out" 2>"$T/err"
check "raw stdout sink: the records byte for byte" cmp -s "$T/in.log" "$T/stdout.out"

printf 'inputs: [{type: stdin}]\nsinks:\n  - type: stdout\n    codec: xml\n' >"$T/bad.yaml"
"$LOGSIFT" check -c "$T/bad.yaml" 2>"$T/bad.err"
check "codec: xml is refused" test $? = 1
check "codec error has file:line:col" grep -q "bad.yaml:4:12: codec: expected one of json|raw" "$T/bad.err"
printf 'inputs: [{type: stdin, codec: raw}]\nsinks: [{type: stdout}]\n' >"$T/bad2.yaml"
"$LOGSIFT" check -c "$T/bad2.yaml" 2>"$T/bad2.err"
check "codec on an input is an unknown key" grep -q "unknown key 'codec'" "$T/bad2.err"
finish

# file_input.sh - the file input beyond rotation: glob patterns pick up new
# files, a deleted-and-recreated file and a truncated file are followed,
# read_from: end, lines longer than max_message_size are truncated and
# flagged, Latin-1 is converted to UTF-8, and multiline joins a Java stack
# trace and a Python traceback into one event each (indent mode; start mode
# with a timestamp pattern; the flush timeout releases the last event).
. "$(dirname "$0")/lib.sh"
mkdir -p "$T/logs" "$T/ml"
printf 'old line before start\n' >"$T/logs/old.log"
printf 'skipped because read_from is end\n' >"$T/end.log"

lsf_start fi <<EOF || finish
log_level: debug
state_dir: $T
inputs:
  - type: file
    name: glob
    path: ["$T/logs/*.log"]
    exclude: "*/skip-*"
    follow: true
    poll_interval: 50ms
    rotate_wait: 300ms
    max_message_size: 100
    format: raw
  - type: file
    name: tail
    path: $T/end.log
    follow: true
    read_from: end
    poll_interval: 50ms
    format: raw
  - type: file
    name: latin
    path: $T/latin1.txt
    follow: true
    encoding: latin-1
    poll_interval: 50ms
    format: raw
  - type: file
    name: indent
    path: $T/ml/indent.log
    follow: true
    poll_interval: 50ms
    format: raw
    multiline: {mode: indent, flush_timeout: 300ms}
  - type: file
    name: start
    path: $T/ml/start.log
    follow: true
    poll_interval: 50ms
    format: raw
    multiline: {mode: start, start_pattern: '^\d{4}-\d{2}-\d{2} ', flush_timeout: 300ms}
sinks:
  - type: file
    path: $T/out.json
EOF
out=$T/out.json
has() { has_events 1 "$out" "$@"; }

wait_until 10 has 'message=old line before start'
check "a file present at start is read" has 'message=old line before start' "log.file.path=$T/logs/old.log"

printf 'new file line\n' >"$T/logs/new.log"
printf 'excluded line\n' >"$T/logs/skip-me.log"
wait_until 10 has 'message=new file line'
check "a new file matching the pattern is picked up" has 'message=new file line' "log.file.path=$T/logs/new.log"

# delete and recreate: the deleted file's last lines are read before it is let go
exec 5>>"$T/logs/new.log"
rm "$T/logs/new.log"
printf 'written after delete\n' >&5
exec 5>&-
printf 'recreated file line\n' >"$T/logs/new.log"
wait_until 10 has 'message=recreated file line'
wait_until 10 has 'message=written after delete'
check "a line written to a deleted file before it was closed arrives" has 'message=written after delete'
check "the recreated file is read from its start" has 'message=recreated file line'

# truncation to a smaller size
printf 'trunc one\ntrunc two\ntrunc three\n' >"$T/logs/trunc.log"
wait_until 10 has 'message=trunc three'
: >"$T/logs/trunc.log"
sleep 0.3
printf 'after truncation\n' >>"$T/logs/trunc.log"
wait_until 10 has 'message=after truncation'
check "a truncated file is read again from its start" has 'message=after truncation'

# read_from: end skips what was there at start, reads what is appended
printf 'appended to end.log\n' >>"$T/end.log"
wait_until 10 has 'message=appended to end.log'
check "read_from end: appended lines arrive" has 'message=appended to end.log'

# a long line: truncated to 100 bytes, flagged, the rest skipped (not a second record)
python3 -c 'print("L" * 5000); print("short after long")' >>"$T/logs/old.log"
wait_until 10 has 'message=short after long'
expect_event "a line over max_message_size is truncated to it and tagged" "$out" 'message^=LLLL' -- \
    'message#<=100' 'message#>=100' 'tags@=_truncated'

# Latin-1: 'café' and 'Größe' as single bytes
printf 'caf\xe9 Gr\xf6\xdfe\n' >"$T/latin1.txt"
wait_until 10 has 'message=café Größe'
check "latin-1 is converted to UTF-8" has 'message=café Größe'

# multiline, indent mode
cat >"$T/ml/indent.log" <<'LOG'
2026-03-03 10:00:00 INFO starting
Exception in thread "main" java.lang.IllegalStateException: outer
	at com.example.Foo.bar(Foo.java:10)
	at com.example.Main.main(Main.java:5)
Caused by: java.lang.NullPointerException: inner
	at com.example.Foo.baz(Foo.java:20)
	... 1 more
2026-03-03 10:00:01 ERROR request failed
Traceback (most recent call last):
  File "/srv/app.py", line 3, in <module>
    main()
  File "/srv/app.py", line 2, in main
    raise ValueError("bad value")
ValueError: bad value
2026-03-03 10:00:02 INFO after the traceback
LOG
wait_until 10 has 'message=2026-03-03 10:00:02 INFO after the traceback'
expect_event "indent: the Java stack trace is one event" "$out" \
    'log.file.path~=indent.log' 'message^=Exception in thread' -- \
    'message~=Caused by: java.lang.NullPointerException' 'message~=... 1 more' \
    'message~/^Exception in thread[^\n]*\n\tat com.example.Foo.bar'
expect_event "indent: the Python traceback is one event with its log line" "$out" \
    'log.file.path~=indent.log' 'message^=2026-03-03 10:00:01 ERROR request failed' -- \
    'message~=Traceback (most recent call last):' 'message~/\nValueError: bad value$'
check "indent: 4 events from 15 lines" test "$(ev count "$out" 'log.file.path~=indent.log')" = 4

# multiline, start mode: a timestamp starts each event
cat >"$T/ml/start.log" <<'LOG'
2026-03-03 10:00:00,001 ERROR boom
Traceback (most recent call last):
  File "x.py", line 1, in <module>
ZeroDivisionError: division by zero

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "x.py", line 3, in <module>
RuntimeError: wrapped
2026-03-03 10:00:00,002 INFO next
LOG
wait_until 10 has 'message=2026-03-03 10:00:00,002 INFO next'
expect_event "start: a chained Python traceback is one event" "$out" \
    'log.file.path~=start.log' 'message^=2026-03-03 10:00:00,001 ERROR boom' -- \
    'message~=During handling of the above exception' 'message~/RuntimeError: wrapped$'
check "start: 2 events" test "$(ev count "$out" 'log.file.path~=start.log')" = 2

check "no event from the excluded file" test "$(ev count "$out" 'message=excluded line')" = 0
check "no event from before read_from end" test "$(ev count "$out" 'message~=skipped because')" = 0
check "the long line's rest is not a record" test "$(ev count "$out" 'message^=LLLL')" = 1
all_valid_json "file input" "$out"
lsf_stop fi
check "logsift exits 0" test "$LSF_RC" = 0
check "truncation counted" test "$(counter "$T/fi.err" '^glob\.truncations$')" -ge 1
check "the deleted file counted as rotated" test "$(counter "$T/fi.err" '^glob\.files_rotated$')" -ge 1
check "checkpoints written" test -s "$T/glob.checkpoints"
finish

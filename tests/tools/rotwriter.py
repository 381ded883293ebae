#!/usr/bin/env python3
"""rotwriter.py - writes numbered lines to a log file and rotates it the way
logrotate does, for the file input's rotation tests.

usage: rotwriter.py FILE LINES EVERY SECONDS
  Writes LINES lines "seq=NNNNNNNNN <padding>" to FILE, spread over about
  SECONDS seconds, and rotates FILE after every EVERY lines, alternating
  rename-and-create (FILE.1 -> FILE.2 ..., FILE -> FILE.1, a new FILE) and
  copytruncate (the same shift, FILE copied to FILE.1, FILE truncated in
  place and written on). Rotated files are kept, so every line stays on
  disk; the writer itself rotates between two writes, so no line is lost to
  logrotate's copytruncate window. Prints one line per rotation.
"""
import os
import shutil
import sys
import time

path, total, every, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
CHUNK = 500


def shift():
    n = 1
    while os.path.exists(f"{path}.{n}"):
        n += 1
    for i in range(n - 1, 0, -1):
        os.rename(f"{path}.{i}", f"{path}.{i + 1}")


f = open(path, "ab")
start = time.monotonic()
rotations = 0
seq = 0
while seq < total:
    n = min(CHUNK, total - seq, every - seq % every)
    f.write(b"".join(b"seq=%09d the quick brown fox jumps over the lazy dog\n" % (seq + i)
                     for i in range(n)))
    f.flush()
    seq += n
    if seq % every == 0 and seq < total:
        shift()
        if rotations % 2 == 0:
            f.close()
            os.rename(path, f"{path}.1")
            f = open(path, "ab")
            print(f"rename at {seq}", flush=True)
        else:
            shutil.copyfile(path, f"{path}.1")
            f.truncate(0)
            f.seek(0)
            print(f"copytruncate at {seq}", flush=True)
        rotations += 1
    ahead = start + seconds * seq / total - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
f.close()
print(f"wrote {seq} lines, {rotations} rotations", flush=True)

#!/usr/bin/env python3
"""bench.py - logsift beside rsyslog and syslog-ng, same input, same run.

Normally started by benchmarks/run.sh (from `make bench` or `make bench-quick`),
which builds the tools and finds the peers first. For each scenario and each
system this starts the daemon in the foreground with its own config on a free
loopback port, sends the generated traffic over one TCP connection (blast),
waits until the output file holds every line (or reports the shortfall as lost
messages), and measures:

  lines/s, MB/s  input lines and bytes over the window from the first byte sent
                 to the last line written (the output file's mtime)
  CPU s          user+sys of the daemon during that window (/proc/PID/stat)
  RSS MB         the daemon's peak resident set (VmHWM)

Each figure is the median of the runs, with the spread (min-max). The ratio is
logsift's median lines/s over the better peer's. Scenarios logsift cannot run
yet are listed as pending with the reason, never faked.
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import rules  # noqa: E402  (benchmarks/rules.py: the rule sets of scenarios 3 and 4)
import kafka  # noqa: E402  (benchmarks/kafka.py: scenario 5 against the project's test broker)

TICK = os.sysconf("SC_CLK_TCK")
SYSTEMS = ["logsift", "rsyslog", "syslog-ng"]


class Scenario:
    def __init__(self, key, title, conf=None, nrules=0, lines=(2000000, 200000), pending=None,
                 systems=None):
        self.key, self.title, self.conf, self.nrules = key, title, conf, nrules
        self.lines_full, self.lines_quick = lines
        self.pending = pending
        self.systems = systems  # None: every system; else the only ones that run it


# Input lines per scenario (make bench, make bench-quick). The peers parse and
# write JSON at 10-60k lines/s on a busy 2-core machine (syslog-ng with 1,000
# rules: ~10k), so the heavier scenarios use fewer lines to keep `make bench`
# (3 runs of everything) under 15 minutes and `make bench-quick` under 2; every
# system in a scenario gets the same input. At load 5-10 (other builds) the
# full run took 14.3 min with 1M lines in scenarios 2 and 6 and 500k with 200
# rules, hence 500k, 500k and 250k.
SCENARIOS = [
    Scenario("raw", "1. TCP -> file, raw lines", "raw", lines=(2000000, 200000)),
    Scenario("json", "2. TCP -> parse -> JSON file", "json", lines=(500000, 200000)),
    Scenario("rules12", "3. + 12 regex rules", "rules", nrules=12, lines=(500000, 100000)),
    Scenario("rules200", "4. + 200 rules", "rules", nrules=200, lines=(250000, 100000)),
    Scenario("rules1000", "4. + 1,000 rules", "rules", nrules=1000, lines=(250000, 50000)),
    # Scenario 5 runs through kafka.run_one (records counted in the topic of a
    # fresh test broker; rsyslog with omkafka, syslog-ng with kafka-c()).
    Scenario("kafka", "5. TCP -> JSON -> Kafka (lz4)", "kafka", lines=(500000, 100000)),
    # Scenario 6 (conf/logsift-full.yaml) runs through kafka.run_one as well; the
    # alerts the detections raise go to a second topic and are counted too.
    Scenario("full", "6. full pipeline -> Kafka (logsift only)", "full",
             lines=(500000, 200000), systems=["logsift"]),
]

# Peer tuning (filled into the config templates). rsyslog: one imptcp poller,
# one queue worker per core, 1024-message batches written with one write() each;
# syslog-ng: threaded, fetch 1000 messages per poll, write in 1000-line batches.
TUNING = {
    "RS_INPUT_THREADS": "1", "RS_WORKERS": str(os.cpu_count() or 2), "RS_BATCH": "1024",
    "RS_IOBUF": "1m", "SNG_FETCH": "1000", "SNG_FLUSH": "1000",
    "SNG_TEMPLATE": "t_json",
}
# Experiments: BENCH_TUNE="RS_WORKERS=1,SNG_FLUSH=100" overrides the above.
for kv in filter(None, os.environ.get("BENCH_TUNE", "").split(",")):
    TUNING[kv.split("=", 1)[0]] = kv.split("=", 1)[1]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- helpers -------------------------------------------------------------------

def cpu_seconds(pid):
    """user+sys seconds of every thread of pid so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port):
    """True when something listens on 127.0.0.1:port (from /proc/net/tcp)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return any(ln.split()[1] == want and ln.split()[3] == "0A" for ln in list(f)[1:])


def count_newlines(path, start):
    """Newlines in path from byte offset start; returns (count, end offset)."""
    n = 0
    with open(path, "rb") as f:
        f.seek(start)
        while True:
            buf = f.read(16 << 20)
            if not buf:
                break
            n += buf.count(b"\n")
            start += len(buf)
    return n, start


def fill(template_path, dest, values):
    with open(template_path) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    with open(dest, "w") as f:
        f.write(text)


def human(n):
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.0f}k"
    return f"{n:.0f}"


# ---- what logsift can do today ---------------------------------------------------

def logsift_bin():
    return os.path.join(ROOT, "logsift")


def geoip_databases():
    """The GeoIP databases of scenario 6 and enrich.py, and whether they are real:
    the free GeoLite2 city data `make geoip-db` installs (benchmarks/run.sh runs it
    when they are missing), else MaxMind's test databases, which know almost none
    of the generated addresses (so lookups are cheap misses: the figures say so)."""
    real = [os.path.join(ROOT, "data/geoip", f"geolite2-city-ipv{v}.mmdb") for v in (4, 6)]
    if all(os.path.exists(p) for p in real):
        return real, True
    fx = os.path.join(ROOT, "tests/fixtures/geoip")
    return [os.path.join(fx, "GeoIP2-City-Test.mmdb"), os.path.join(fx, "GeoLite2-ASN-Test.mmdb")], False


def logsift_has_stage(name):
    r = subprocess.run([logsift_bin(), "help", name], capture_output=True)
    return r.returncode == 0


def logsift_pending(scn):
    """Why logsift cannot run scn yet, or None."""
    if scn.pending:
        return scn.pending
    if scn.conf == "rules" and not logsift_has_stage("rules"):
        return "the rules transform is not built yet (`logsift help rules` fails)"
    if scn.conf == "full":
        missing = [st for st in ("rules", "geoip", "anomaly", "detections", "kafka")
                   if not logsift_has_stage(st)]
        if missing:
            return "stages not built: " + ", ".join(missing)
    return None


# ---- one run -----------------------------------------------------------------------

def terminate(proc, timeout):
    """Stops a process we started: SIGTERM, then SIGKILL after timeout seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Daemon:
    """A system under test, started in the foreground with its own files in wd."""

    def __init__(self, system, scn, wd, out, rules_paths):
        self.system, self.wd, self.out = system, wd, out
        conf_dir = os.path.join(HERE, "conf")
        # Every file is filled in and written to wd, included pieces too, so the
        # configs include each other from there (CONFDIR).
        values = dict(TUNING, WORK=wd, OUT=out, CONFDIR=wd, PORTFILE=os.path.join(wd, "port"))
        self.port = None
        env = dict(os.environ)
        if system == "logsift":
            values["PACKS"] = rules_paths.get("logsift", "")
            values.setdefault("DEFAULT_PACKS", os.path.join(ROOT, "rules/packs"))
            values.setdefault("GEOIP_DBS", ", ".join(f'"{p}"' for p in geoip_databases()[0]))
            conf = os.path.join(wd, "logsift.yaml")
            fill(os.path.join(conf_dir, f"logsift-{scn.conf}.yaml"), conf, values)
            cmd = [logsift_bin(), "run", "-c", conf]
        elif system == "rsyslog":
            values["RULES"] = rules_paths.get("rsyslog", "")
            conf = os.path.join(wd, "rsyslog.conf")
            fill(os.path.join(conf_dir, f"rsyslog-{scn.conf}.conf"), conf, values)
            cmd = [os.environ.get("BENCH_RSYSLOGD", "rsyslogd"), "-n", "-f", conf,
                   "-i", os.path.join(wd, "rsyslog.pid")]
        else:
            self.port = free_port()
            values["PORT"] = self.port
            values["RULES"] = rules_paths.get("syslog-ng", "")
            if values["RULES"]:
                # Pasted into the log path (syslog-ng's @include works only between
                # top-level statements).
                with open(values["RULES"]) as f:
                    values["RULES_BLOCK"] = f.read()
            conf = os.path.join(wd, "syslog-ng.conf")
            fill(os.path.join(conf_dir, f"syslog-ng-{scn.conf}.conf"), conf, values)
            cmd = [os.environ.get("BENCH_SYSLOG_NG", "syslog-ng"), "-F", "-f", conf,
                   "-p", os.path.join(wd, "syslog-ng.pid"),
                   f"--persist-file={os.path.join(wd, 'syslog-ng.persist')}",
                   f"--control={os.path.join(wd, 'syslog-ng.ctl')}"]
            sng_root = os.environ.get("BENCH_SYSLOG_NG_ROOT")
            if sng_root:
                cmd.append(f"--module-path={sng_root}/usr/lib/syslog-ng/3.38")
                env["LD_LIBRARY_PATH"] = f"{sng_root}/usr/lib/syslog-ng"
        for name in os.listdir(conf_dir):
            if name.startswith(system + "-") and name.endswith(".inc"):
                fill(os.path.join(conf_dir, name), os.path.join(wd, name), values)
        self.logf = open(os.path.join(wd, "daemon.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=env, cwd=wd)

    def wait_ready(self, timeout=120):
        # Generous: logsift compiles 1,000 rules (Hyperscan) for ~8 s on a busy
        # 2-core machine before it listens; start-up is outside the window.
        t_end = time.monotonic() + timeout
        portfile = os.path.join(self.wd, "port")
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.system} exited ({self.proc.returncode}): "
                                   + self.log_tail())
            if self.port is None and os.path.exists(portfile):
                with open(portfile) as f:
                    txt = f.read().strip()
                if txt:
                    self.port = int(txt)
            if self.port and listening(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.system} not listening after {timeout}s: " + self.log_tail())

    def log_tail(self):
        self.logf.flush()
        try:
            with open(os.path.join(self.wd, "daemon.log"), errors="replace") as f:
                return f.read()[-600:].strip()
        except OSError:
            return ""

    def stop(self):
        terminate(self.proc, 15)
        self.logf.close()


def check_json(path, n=3):
    """First and last lines of a JSON-lines output parse as JSON objects."""
    with open(path, "rb") as f:
        head = [f.readline() for _ in range(n)]
        f.seek(max(0, os.path.getsize(path) - 65536))
        tail = f.read().splitlines()[-n:]
    for line in head + tail:
        if line.strip():
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not an object")


def grep_count(pattern, path):
    r = subprocess.run(["grep", "-c", "-F", pattern, path], capture_output=True, text=True)
    return int(r.stdout.strip() or 0)


def matched_lines(system, out):
    """Output lines that carry a rule's captures (a check that every system did the
    same work): logsift writes rule.id; rsyslog's mmnormalize puts captures under
    $!r (and originalmsg there when nothing matched); syslog-ng's under .r."""
    if system == "logsift":
        return grep_count('"rule":{', out)
    if system == "rsyslog":
        return grep_count('"r":{', out) - grep_count('"r":{"originalmsg"', out)
    return grep_count('"_r":{', out)


def perf_start(pid, profile):
    """With a profile path, perf record on every thread of pid on the CPU clock
    (this works in VMs without hardware counters), with call graphs; else None."""
    if not profile:
        return None
    perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000",
                             "-g", "-p", str(pid), "-o", profile],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return perf


def perf_stop(perf):
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait(60)


def warm_up(port, out, warmup, timeout=300):
    """Sends the warm-up traffic and waits until all of it is written; returns
    the output's byte offset after it (the measured run counts from there)."""
    subprocess.run([os.path.join(os.environ["BENCH_TOOLS"], "blast"), f"127.0.0.1:{port}",
                    warmup["path"]], check=True, capture_output=True, timeout=timeout)
    count, off, t0 = 0, 0, time.monotonic()
    while count < warmup["lines"]:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"warm-up: {count:,} of {warmup['lines']:,} lines written")
        time.sleep(0.05)
        if os.path.exists(out):
            n, off = count_newlines(out, off)
            count += n
    return off


def run_one(system, scn, inp, tmp, run_idx, rules_paths, idle_timeout, profile=None,
            warmup=None):
    """One measured run. With warmup (an input like inp), the daemon first takes
    that traffic untimed, so the run measures a process that has seen it."""
    wd = tempfile.mkdtemp(prefix=f"{system}-{scn.key}-{run_idx}-", dir=tmp)
    out = os.path.join(wd, "out.log")
    res = {"system": system, "scenario": scn.key, "run": run_idx, "lines_in": inp["lines"],
           "bytes_in": inp["bytes"], "error": None}
    d = Daemon(system, scn, wd, out, rules_paths)
    try:
        d.wait_ready()
        pid = d.proc.pid
        off = warm_up(d.port, out, warmup) if warmup else 0
        perf = perf_start(pid, profile)
        cpu0 = cpu_seconds(pid)
        blast = subprocess.Popen([os.path.join(os.environ["BENCH_TOOLS"], "blast"),
                                  f"127.0.0.1:{d.port}", inp["path"]],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        count, last_size, stable = 0, -1, 0
        last_growth = time.monotonic()
        t_start = last_growth
        expected = inp["lines"]
        mtime_ns = None
        while True:
            time.sleep(0.05)
            now = time.monotonic()
            size = os.path.getsize(out) if os.path.exists(out) else 0
            if size != last_size:
                last_size, stable, last_growth = size, 0, now
            else:
                stable += 1
            sent = blast.poll() is not None
            if stable >= 2 and size > off:
                # The file is quiet: count what it holds. Its modification time,
                # read after counting, is when the last counted line was written
                # (the end of the throughput window).
                n, off = count_newlines(out, off)
                count += n
                mtime_ns = os.stat(out).st_mtime_ns
                if count >= expected:
                    break
            if d.proc.poll() is not None:
                res["error"] = f"exited with {d.proc.returncode}: {d.log_tail()}"
                break
            if sent and now - last_growth > idle_timeout:
                break
            if now - t_start > 600:
                res["error"] = "no completion after 600 s"
                break
        cpu1 = cpu_seconds(pid) if d.proc.poll() is None else cpu0
        perf_stop(perf)
        rss = peak_rss_mb(pid) if d.proc.poll() is None else 0.0
        bout, berr = blast.communicate(timeout=30)
        if blast.returncode != 0:
            res["error"] = res["error"] or f"sender failed: {berr.strip()}"
        start_ns = int(dict(kv.split("=") for kv in bout.split())["start_ns"]) if bout else 0
        # Extra lines arriving late would be duplicates: look once more.
        time.sleep(0.3)
        n, off = count_newlines(out, off) if os.path.exists(out) else (0, off)
        count += n
        secs = (mtime_ns - start_ns) / 1e9 if mtime_ns and start_ns else float("nan")
        delivered = min(count, expected)
        res.update(lines_out=count, lost=expected - delivered, secs=secs,
                   lps=delivered / secs if secs > 0 else 0.0,
                   mbps=inp["bytes"] * delivered / expected / secs / 1e6 if secs > 0 else 0.0,
                   cpu=cpu1 - cpu0, rss=rss)
        if scn.nrules and count:
            res["matched"] = matched_lines(system, out)
        if count and scn.conf != "raw":
            try:
                check_json(out)
            except ValueError as e:
                res["error"] = res["error"] or f"output is not JSON lines: {e}"
    except Exception as e:  # report, keep going with the other systems
        res["error"] = str(e)
    finally:
        d.stop()
        if not KEEP:
            shutil.rmtree(wd, ignore_errors=True)
    return res


def runner(scn):
    """run_one for the scenarios that write a file; kafka.run_one for those that
    publish to Kafka (5 and 6), counted in the topic."""
    return kafka.run_one if scn.conf in ("kafka", "full") else run_one


# ---- inputs and rules ----------------------------------------------------------------

def make_input(tmp, lines, cache, gen_args=()):
    """gen.c's traffic of `lines` lines (more gen.c options in gen_args), made once."""
    key = (lines, tuple(gen_args))
    if key in cache:
        return cache[key]
    path = os.path.join(tmp, f"traffic-{lines}{''.join(gen_args).replace('-', '_')}.log")
    with open(path, "wb") as f:
        r = subprocess.run([os.path.join(os.environ["BENCH_TOOLS"], "gen"), "--lines",
                            str(lines), *gen_args], stdout=f, stderr=subprocess.PIPE, text=True,
                           check=True)
    log(r.stderr.strip())
    cache[key] = {"path": path, "lines": lines, "bytes": os.path.getsize(path)}
    return cache[key]


# ---- reporting -----------------------------------------------------------------------

def summarize(results, scenarios, systems, pending):
    """Rows of (scenario, system, stats dict or reason string)."""
    rows = []
    for scn in scenarios:
        for system in systems:
            if system == "logsift" and scn.key in pending:
                rows.append((scn, system, "pending: " + pending[scn.key]))
                continue
            rs = [r for r in results if r["scenario"] == scn.key and r["system"] == system]
            if not rs:
                continue
            ok = [r for r in rs if not r["error"] and r.get("lps")]
            errors = sorted({r["error"] for r in rs if r["error"]})
            if not ok:
                rows.append((scn, system, "failed: " + "; ".join(errors)[:300]))
                continue
            lps = [r["lps"] for r in ok]
            rows.append((scn, system, {
                "lps": statistics.median(lps), "min": min(lps), "max": max(lps),
                "mbps": statistics.median(r["mbps"] for r in ok),
                "cpu": statistics.median(r["cpu"] for r in ok),
                "rss": statistics.median(r["rss"] for r in ok),
                "lost": max(r["lost"] for r in rs if "lost" in r),
                "extra": max(max(0, r["lines_out"] - r["lines_in"]) for r in ok),
                "matched": ok[0].get("matched"),
                "alerts": statistics.median(r["alerts"] for r in ok) if "alerts" in ok[0] else None,
                "lines": ok[0]["lines_in"], "runs": len(ok), "of": len(rs), "errors": errors}))
    return rows


def ratio_of(rows, scn):
    stats = {sys_: st for s, sys_, st in rows if s is scn and isinstance(st, dict)}
    peers = [st["lps"] for k, st in stats.items() if k != "logsift"]
    if "logsift" not in stats or not peers:
        return None
    return stats["logsift"]["lps"] / max(peers)


def scn_title(rows, scn):
    n = [st["lines"] for s, _, st in rows if s is scn and isinstance(st, dict)]
    return f"{scn.title} ({human(n[0])} lines)" if n else scn.title


# Issue 8's target for the scenario without peers: lines/s on 2 cores.
FULL_TARGET = 1000000


def target_note(scn, st):
    """For scenario 6 (no peer to compare with): the median against the target."""
    if scn.conf != "full" or not isinstance(st, dict):
        return ""
    return f"target {human(FULL_TARGET)}: {'met' if st['lps'] >= FULL_TARGET else 'missed'}"


def table(rows, scenarios):
    lines = ["| scenario | system | lines/s median (min-max) | MB/s | CPU s | peak RSS MB "
             "| lost | logsift / best peer |",
             "|---|---|---|---|---|---|---|---|"]
    for scn in scenarios:
        ratio = ratio_of(rows, scn)
        title = scn_title(rows, scn)
        for s, system, st in rows:
            if s is not scn:
                continue
            if isinstance(st, str):
                lines.append(f"| {title} | {system} | {st} | | | | | |")
                continue
            note = ""
            if scn.conf == "full" and not geoip_databases()[1]:
                note = " (GeoIP: MaxMind's test databases)"
            r = f"{ratio:.2f}x" if system == "logsift" and ratio else target_note(scn, st)
            lost = f"{st['lost']:,}" + (f" (+{st['extra']:,} extra)" if st["extra"] else "")
            if st.get("matched") is not None:
                lost += f"; {st['matched']:,} matched a rule"
            if st.get("alerts") is not None:
                lost += f"; {st['alerts']:,.0f} alerts (to their own topic)"
            if st["runs"] < st["of"]:
                lost += f"; {st['of'] - st['runs']} of {st['of']} runs failed: " + "; ".join(
                    st["errors"])[:200]
            lines.append(
                f"| {title} | {system}{note} | {human(st['lps'])} ({human(st['min'])}-"
                f"{human(st['max'])}) | {st['mbps']:.0f} | {st['cpu']:.2f} | {st['rss']:.0f} "
                f"| {lost} | {r} |")
        if not any(s is scn for s, _, _ in rows) and scn.pending:
            lines.append(f"| {scn.title} | all | pending: {scn.pending} | | | | | |")
    return "\n".join(lines)


def headline(rows, scenarios):
    """The short table for README.md: medians of lines/s and the ratio."""
    out = ["| scenario | logsift | rsyslog | syslog-ng | logsift / best peer |",
           "|---|---|---|---|---|"]
    for scn in scenarios:
        cells = {}
        for s, system, st in rows:
            if s is scn:
                cells[system] = human(st["lps"]) if isinstance(st, dict) else st.split(":")[0]
                if isinstance(st, dict) and st["lost"]:
                    cells[system] += f" (lost {st['lost']:,})"
        if not cells:
            continue
        ratio = ratio_of(rows, scn)
        st = next((st for s, system, st in rows if s is scn and system == "logsift"), None)
        last = f"{ratio:.2f}x" if ratio else (target_note(scn, st) or "-")
        out.append(f"| {scn_title(rows, scn)} | {cells.get('logsift', '-')} | {cells.get('rsyslog', '-')} "
                   f"| {cells.get('syslog-ng', '-')} | {last} |")
    return "\n".join(out)


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def commit():
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                       cwd=ROOT)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, cwd=ROOT).stdout.strip()
    return (r.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty else "")


def perf_areas(data):
    """logsift's CPU samples summed per source directory (rules/, anomaly/, ...;
    each function by the file nm finds it in) or shared library, so the cost of
    each stage shows in one run, whatever else the machine is doing."""
    binary = os.path.realpath(logsift_bin())
    where = {}
    nm = subprocess.run(["nm", "-l", "--defined-only", binary], capture_output=True, text=True)
    for line in nm.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] in "tTwW" and ":" in parts[-1]:
            rel = os.path.relpath(parts[-1].rsplit(":", 1)[0], ROOT)
            area = rel.split(os.sep)[0] + "/" if not rel.startswith("..") else "other"
            where[parts[2]] = area if where.get(parts[2], area) == area else "logsift (ambiguous)"
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "-g", "none",
                          "--sort", "dso,sym", "--percent-limit", "0"],
                         capture_output=True, text=True)
    total = {}
    for line in rep.stdout.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or not parts[0].endswith("%") or line.lstrip().startswith("#"):
            continue
        pct, dso, kind, sym = float(parts[0][:-1]), parts[1], parts[2], parts[3].strip()
        if kind == "[k]":
            area = "kernel"
        elif os.path.basename(binary) == dso:
            area = where.get(sym, "logsift (other)")
        else:
            area = dso.split(".so")[0]
        total[area] = total.get(area, 0.0) + pct
    return "\n".join(f"    {pct:6.2f}%  {area}" for area, pct in
                     sorted(total.items(), key=lambda kv: -kv[1]) if pct >= 0.5)


def profile_logsift(tmp, lines, scenario):
    """Runs logsift once under perf record and prints where its time goes."""
    scn = next(s for s in SCENARIOS if s.key == scenario)
    inp = make_input(tmp, lines, {})
    rules_paths = {}
    if scn.nrules:
        rules_paths = rules.write_all(scn.nrules, os.path.join(tmp, "rules"), traffic=inp["path"])
    data = os.path.join(tmp, "perf.data")
    r = runner(scn)("logsift", scn, inp, tmp, 0, rules_paths, idle_timeout=5.0, profile=data)
    log(f"bench: profiled run: {r.get('lps', 0):,.0f} lines/s, cpu {r.get('cpu', 0):.2f}s"
        + (f", ERROR: {r['error']}" if r["error"] else ""))
    print(f"\nperf, logsift, scenario {scenario}, by area (source directory or library):")
    print(perf_areas(data))
    for title, sort in (("by thread (pid column = thread id)", "pid"), ("by function", "sym"),
                        ("by file:function", "srcfile,sym")):
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio",
                              "-g", "none", "--percent-limit", "0.8", "--sort", sort],
                             capture_output=True, text=True)
        body = [ln for ln in rep.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
        print(f"\nperf, logsift, scenario {scenario}, {title}:")
        print("\n".join(body[:30]))


README_BEGIN = "<!-- bench-headline: rewritten by benchmarks/bench.py --record (make bench) -->"
README_END = "<!-- /bench-headline -->"


def update_readme(header, head):
    """Puts the headline table of a recorded `make bench` into README.md between
    its markers (the Performance section). Returns False when the markers are
    missing (README.md is left alone)."""
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        text = f.read()
    a, b = text.find(README_BEGIN), text.find(README_END)
    if a < 0 or b < a:
        return False
    body = f"{README_BEGIN}\nLatest `make bench`: {header}.\n\n{head}\n"
    with open(path, "w") as f:
        f.write(text[:a] + body + text[b:])
    return True


# ---- main -----------------------------------------------------------------------------

KEEP = False


def main():
    global KEEP
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer lines, 1 run (make bench-quick)")
    ap.add_argument("--lines", type=int, help="input lines of every scenario (default: per "
                    "scenario, 0.25M-2M; quick 50k-200k)")
    ap.add_argument("--runs", type=int, help="runs per system and scenario (default 3, quick 1)")
    ap.add_argument("--scenarios", default=",".join(s.key for s in SCENARIOS))
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--record", action="store_true", help="append the results to RESULTS.md")
    ap.add_argument("--command", default=None, help="the command to name in RESULTS.md")
    ap.add_argument("--profile", metavar="SCENARIO",
                    help="instead of benchmarking, profile logsift on one scenario with perf")
    ap.add_argument("--keep", action="store_true", help="keep work directories and outputs")
    ap.add_argument("--kafka-brokers", type=int, default=kafka.BROKERS,
                    help="brokers of the test cluster of scenarios 5 and 6 (default 3)")
    ap.add_argument("--tmp", default=os.environ.get("BENCH_TMP"),
                    help="work directory (default: a new one in /dev/shm, else $TMPDIR)")
    args = ap.parse_args()
    KEEP = args.keep
    kafka.BROKERS = args.kafka_brokers
    runs = args.runs or (1 if args.quick else 3)
    want = args.scenarios.split(",")
    scenarios = [s for s in SCENARIOS if s.key in want]
    systems = [s for s in SYSTEMS if s in args.systems.split(",")]
    base = args.tmp or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    tmp = tempfile.mkdtemp(prefix="logsift-bench-", dir=base)
    t_begin = time.monotonic()
    at_commit = commit()
    log(f"bench: {runs} run(s), scenarios {','.join(s.key for s in scenarios)},"
        f" systems {','.join(systems)}; work directory {tmp}")

    if args.profile:
        try:
            profile_logsift(tmp, args.lines or 1000000, args.profile)
        finally:
            if not KEEP:
                shutil.rmtree(tmp, ignore_errors=True)
        return 0

    pending = {s.key: logsift_pending(s) for s in scenarios if logsift_pending(s)}
    results, inputs = [], {}
    loads = [os.getloadavg()[0]]  # 1-minute load average, sampled after every run
    try:
        for scn in scenarios:
            if scn.pending:
                log(f"bench: {scn.title}: pending ({scn.pending})")
                continue
            n = args.lines or (scn.lines_quick if args.quick else scn.lines_full)
            inp = make_input(tmp, n, inputs)
            rules_paths = {}
            if scn.nrules:
                rules_paths = rules.write_all(scn.nrules, os.path.join(tmp, f"rules{scn.nrules}"),
                                             traffic=inp["path"])
            active = [s for s in systems if not (s == "logsift" and scn.key in pending)
                      and (scn.systems is None or s in scn.systems)]
            if "logsift" in systems and scn.key in pending:
                log(f"bench: {scn.title}: logsift pending ({pending[scn.key]})")
            for run in range(runs):
                # Rotate the order each run so slow drifts of a shared machine
                # do not always favour the same system.
                order = active[run % len(active):] + active[:run % len(active)] if active else []
                for system in order:
                    r = runner(scn)(system, scn, inp, tmp, run, rules_paths, idle_timeout=5.0)
                    results.append(r)
                    loads.append(os.getloadavg()[0])
                    msg = (f"{r['lps']:>10,.0f} lines/s {r['mbps']:6.1f} MB/s cpu {r['cpu']:6.2f}s"
                           f" rss {r['rss']:6.1f} MB lost {r['lost']:,}") if "lps" in r else ""
                    if r.get("matched") is not None:
                        msg += f" matched {r['matched']:,}"
                    if r.get("alerts") is not None:
                        msg += f" alerts {r['alerts']:,}"
                    log(f"bench: {scn.key:<9} run {run + 1}/{runs} {system:<9} {msg}"
                        + (f"  ERROR: {r['error']}" if r["error"] else ""))
    finally:
        if not KEEP:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = summarize(results, scenarios, systems, pending)
    full = table(rows, scenarios)
    head = headline(rows, scenarios)
    elapsed = time.monotonic() - t_begin
    inp_desc = ", ".join(f"{v['lines']:,} lines / {v['bytes'] / 1e6:.0f} MB"
                         for v in inputs.values())
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"{stamp}, commit {at_commit}, {machine()}; input {inp_desc} "
              f"(benchmarks/gen.c, seed 20260303, one TCP connection); median of {runs} run(s)"
              f" (min-max); took {elapsed / 60:.1f} min; 1-minute load average"
              f" {min(loads):.1f}-{max(loads):.1f} (median {statistics.median(loads):.1f}; the"
              f" benchmark itself adds up to ~2)"
              + (f"; Kafka test cluster of {kafka.BROKERS} broker(s)"
                 if any(s.conf in ("kafka", "full") for s in scenarios) else ""))
    print()
    print(header)
    print()
    print(full)
    print()
    print("Headline (for README.md):")
    print()
    print(head)
    if args.record:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write(f"\n## {stamp}: `{args.command or 'benchmarks/run.sh'}`\n\n{header}\n\n"
                    f"{full}\n\nHeadline:\n\n{head}\n")
        log("bench: appended to benchmarks/RESULTS.md")
        # README.md shows the latest full run of every scenario, not a quick one.
        if not args.quick and not args.lines and len(scenarios) == len(SCENARIOS) \
                and len(systems) == len(SYSTEMS):
            log("bench: headline table written to README.md" if update_readme(header, head)
                else "bench: README.md has no headline markers; left alone")
    failed = [r for r in results if r["error"]]
    return 1 if failed and len(failed) == len(results) else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""kafka.py - scenario 5 of bench.py: TCP syslog -> parse -> JSON -> Kafka, lz4 on.

bench.py runs the scenario whose conf is "kafka" through run_one() here instead
of its own, which counts lines of an output file: here the output is a topic.
Each run gets a fresh test cluster (tests/tools/kafka_broker: librdkafka's mock
cluster, the real Kafka protocol on loopback, messages kept in memory; three
brokers unless --kafka-brokers says otherwise) with a 4-partition topic, so
counts start at zero; the daemon's config template gets
@BROKERS@ and @TOPIC@. The same generated traffic is sent over one TCP
connection (blast), and:

  lines/s, MB/s  input lines and bytes over the window from the first byte sent
                 to the moment the broker holds every record: kwatch (kwatch.c,
                 one long-lived client) sums the partitions' end offsets every
                 5 ms and the window ends at the middle of the query that first
                 saw them all (record timestamps cannot serve: omkafka stamps
                 records with the syslog time). A run that stays short for the
                 idle timeout reports the shortfall as lost (its window ends at
                 the query that saw its last record).
  CPU s, RSS MB  as in bench.py (the broker is a separate process, not counted)

Every system produces with lz4, acks=all, the idempotent producer where it has
one. Peers: rsyslog with omkafka (Debian package rsyslog-kafka); syslog-ng with
kafka-c() (syslog-ng-mod-rdkafka, unpacked beside syslog-ng-core by run.sh) and
flow control (without it, syslog-ng drops what overflows its queue, silently).
A peer whose Kafka module is missing is reported as failed with the reason.

Run alone: benchmarks/run.sh --scenarios kafka [--quick] [--systems logsift]
"""
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

def _bench():
    """bench.py's module: __main__ when it runs as the harness (so its settings,
    e.g. --keep, apply), else imported."""
    main = sys.modules.get("__main__")
    return main if hasattr(main, "Daemon") else importlib.import_module("bench")


# Brokers of the test cluster (bench.py --kafka-brokers). Three, as a production
# cluster with replication has at least: librdkafka builds and compresses the
# batches of each broker on that broker's thread, so with one broker every
# producer (logsift, omkafka, kafka-c) is held to one compressing thread, a
# bottleneck a real cluster does not have. The partitions' leaders spread over
# the brokers; RESULTS.md records runs with one as well.
BROKERS = 3
TOPIC = "bench"
ALERTS_TOPIC = "bench-alerts"   # scenario 6's detections (the broker creates it on first use)
PARTITIONS = 4
POLL_S = 0.05   # how often the harness looks at kwatch's state file


def broker_bin():
    bench = _bench()
    build = os.environ.get("BENCH_BUILD") or os.path.join(bench.ROOT, "build")
    return os.path.join(build, "tools", "kafka_broker")


class Broker:
    """A fresh test broker for one run."""

    def __init__(self, wd):
        path = broker_bin()
        if not os.access(path, os.X_OK):
            bench = _bench()
            subprocess.run(["make", "-C", bench.ROOT, "--no-print-directory", "-s",
                            os.path.relpath(path, bench.ROOT)], check=True)
        self.boot_file = os.path.join(wd, "broker.boot")
        self.logf = open(os.path.join(wd, "broker.log"), "wb")
        self.proc = subprocess.Popen([path, "--brokers", str(BROKERS), "--topic",
                                      f"{TOPIC}:{PARTITIONS}",
                                      "--bootstrap-file", self.boot_file],
                                     stdout=subprocess.DEVNULL, stderr=self.logf)
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end:
            if os.path.exists(self.boot_file):
                with open(self.boot_file) as f:
                    self.boot = f.read().strip()
                if self.boot:
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the test broker did not start")

    def kcat(self, *args, timeout=30):
        r = subprocess.run(["kcat", "-b", self.boot, *args], capture_output=True, text=True,
                           timeout=timeout)
        return r.stdout

    def count(self, topic=TOPIC):
        """Records in topic: the sum of its partitions' end offsets (0 when the
        topic does not exist)."""
        args = []
        for p in range(PARTITIONS):
            args += ["-t", f"{topic}:{p}:-1"]
        total = 0
        for line in self.kcat("-Q", *args).splitlines():
            if " offset " in line:
                total += max(0, int(line.rsplit(" ", 1)[1]))
        return total

    def sample(self, n=3):
        out = self.kcat("-C", "-t", TOPIC, "-o", "beginning", "-c", str(n), "-e", "-q")
        return [line for line in out.splitlines() if line.strip()]

    def stop(self):
        _bench().terminate(self.proc, 20)
        self.logf.close()


class Watch:
    """kwatch over the broker's topic: its latest count and when it was seen."""

    def __init__(self, broker, wd, expected):
        self.path = os.path.join(wd, "kwatch.state")
        tool = os.path.join(os.environ["BENCH_TOOLS"], "kwatch")
        self.err = open(os.path.join(wd, "kwatch.log"), "wb")
        self.proc = subprocess.Popen([tool, broker.boot, TOPIC, str(PARTITIONS), str(expected),
                                      self.path], stdout=subprocess.DEVNULL, stderr=self.err)

    def state(self):
        """(count, at_ns, finished): finished once kwatch has exited (every
        record seen, or the broker unreachable)."""
        finished = self.proc.poll() is not None
        try:
            with open(self.path) as f:
                kv = dict(p.split("=") for p in f.read().split())
            return int(kv["count"]), int(kv["at_ns"]), finished
        except (OSError, KeyError, ValueError):
            return 0, None, finished

    def stop(self):
        _bench().terminate(self.proc, 10)
        if not self.err.closed:
            self.err.close()


def missing_module(system):
    """Why a peer cannot produce to Kafka here, or None."""
    if system == "rsyslog":
        mod = "/usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so"
        if not os.path.exists(mod):
            return "omkafka is not installed (Debian package rsyslog-kafka)"
    if system == "syslog-ng":
        root = os.environ.get("BENCH_SYSLOG_NG_ROOT") or "/"
        if not os.path.exists(os.path.join(root, "usr/lib/syslog-ng/3.38/libkafka.so")):
            return ("kafka-c() is missing: syslog-ng-mod-rdkafka is neither installed nor "
                    "unpacked beside syslog-ng-core (benchmarks/run.sh does that)")
    if shutil.which("kcat") is None:
        return "kcat is not installed (Debian package kcat)"
    return None


def run_one(system, scn, inp, tmp, run_idx, rules_paths, idle_timeout, profile=None):
    """One run of scenario 5 for one system; the same result keys as bench.run_one."""
    bench = _bench()
    res = {"system": system, "scenario": scn.key, "run": run_idx, "lines_in": inp["lines"],
           "bytes_in": inp["bytes"], "error": None}
    why = missing_module(system)
    if why:
        res["error"] = why
        return res
    wd = tempfile.mkdtemp(prefix=f"{system}-{scn.key}-{run_idx}-", dir=tmp)
    broker = d = watch = None
    try:
        broker = Broker(wd)
        # The templates' @BROKERS@ and @TOPIC@ (Daemon fills TUNING values in).
        bench.TUNING.update(BROKERS=broker.boot, TOPIC=TOPIC, ALERTS_TOPIC=ALERTS_TOPIC)
        d = bench.Daemon(system, scn, wd, os.path.join(wd, "unused.out"), rules_paths)
        d.wait_ready()
        watch = Watch(broker, wd, inp["lines"])
        pid = d.proc.pid
        perf = bench.perf_start(pid, profile)
        cpu0 = bench.cpu_seconds(pid)
        blast = subprocess.Popen([os.path.join(os.environ["BENCH_TOOLS"], "blast"),
                                  f"127.0.0.1:{d.port}", inp["path"]],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        expected = inp["lines"]
        count, last, end_ns = 0, -1, None
        t_start = last_growth = time.monotonic()
        while True:
            time.sleep(POLL_S)
            now = time.monotonic()
            count, at_ns, finished = watch.state()
            if count != last:
                # A run that stays short ends at the query that saw its last record.
                last, last_growth, end_ns = count, now, at_ns
            if count >= expected or finished:
                break
            if d.proc.poll() is not None:
                res["error"] = f"exited with {d.proc.returncode}: {d.log_tail()}"
                break
            if blast.poll() is not None and now - last_growth > idle_timeout:
                break
            if now - t_start > 600:
                res["error"] = "no completion after 600 s"
                break
        watch.stop()
        cpu1 = bench.cpu_seconds(pid) if d.proc.poll() is None else cpu0
        bench.perf_stop(perf)
        rss = bench.peak_rss_mb(pid) if d.proc.poll() is None else 0.0
        bout, berr = blast.communicate(timeout=30)
        if blast.returncode != 0:
            res["error"] = res["error"] or f"sender failed: {berr.strip()}"
        start_ns = int(dict(kv.split("=") for kv in bout.split())["start_ns"]) if bout else 0
        # Records arriving late would be duplicates: look once more.
        time.sleep(0.3)
        count = broker.count()
        if scn.conf == "full":
            res["alerts"] = broker.count(ALERTS_TOPIC)
        secs = (end_ns - start_ns) / 1e9 if end_ns and start_ns else float("nan")
        delivered = min(count, expected)
        if not delivered:
            res["error"] = res["error"] or "no record reached the topic: " + d.log_tail()
        res.update(lines_out=count, lost=expected - delivered, secs=secs,
                   lps=delivered / secs if secs > 0 else 0.0,
                   mbps=inp["bytes"] * delivered / expected / secs / 1e6 if secs > 0 else 0.0,
                   cpu=cpu1 - cpu0, rss=rss)
        for rec in broker.sample():
            try:
                json.loads(rec)
            except ValueError as e:
                res["error"] = res["error"] or f"a record is not JSON: {e}"
                break
    except Exception as e:  # report, keep going with the other systems
        res["error"] = str(e)
    finally:
        if watch:
            watch.stop()
        if d:
            d.stop()
        if broker:
            broker.stop()
        if not bench.KEEP:
            shutil.rmtree(wd, ignore_errors=True)
    return res

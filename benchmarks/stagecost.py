#!/usr/bin/env python3
"""stagecost.py - what a transform stage costs logsift end to end: the same traffic
through the running daemon with and without the stage.

  benchmarks/stagecost.py --stage geoip|anomaly [--lines N] [--runs R] [--keep]
  (make bench-enrich runs geoip, make bench-anomaly runs anomaly)

geoip: both runs are scenario 3 of bench.py (TCP -> parse -> the 12 rules ->
JSON file, conf/logsift-rules.yaml); the enriched one adds GeoIP on source.ip
and destination.ip (conf/logsift-geoip.yaml), the two IP fields the rules
capture. The traffic is benchmarks/gen.c's: IPv4 and IPv6 client addresses
drawn from pools of 60,000 and 8,000 with a Zipf law (s = 1.05), so a few
addresses repeat a lot and a long tail is seen once or twice. The database is
the free GeoLite2 city data `make geoip-db` installs (data/geoip/); without it,
MaxMind's test databases stand in and the figures say so (they know almost
none of the generated addresses, so lookups are cheap misses). Target: 80%.

anomaly: both runs are scenario 2 (TCP -> parse -> JSON file,
conf/logsift-json.yaml) on gen.c's JSON application lines (--mix app) from
100,000 hosts drawn with a Zipf law (s = 0.9; ~91,000 appear in 1M lines),
all RFC 3164 (--v5424 0: gen.c writes a host's name short in RFC 3164 and as
an FQDN in RFC 5424, which would make two keys of one host and ~150,000 keys
against the detectors' default max_keys of 100,000, so the run would measure
LRU eviction), 20,000 lines a second of event time (--rate; the in-process
anomaly_bench uses the same), so the run spans 50 s of the fleet's logs;
the scored one adds the anomaly stage with four detectors keyed by host.name
(conf/logsift-anomaly.yaml): rate, numeric on duration_ms, new_value of
user_id and rare_template of the message. Every line feeds all four. By
default the stage starts empty, as a fresh process does, so the run includes
creating every key; with --warm each daemon first takes the 1M lines before
the measured ones untimed (the steady state of a process that has been
running, or restored its snapshot). Target: 70%.

Runs alternate between the two configurations (their order rotating), each
measured by bench.py's run_one exactly as `make bench` measures every
scenario. The table gives medians (min-max); the ratios compare the best run
of each configuration (most lines/s, least CPU time), because on a shared
machine other processes only ever slow a run down, and the best runs are the
ones they disturbed least. It also prints each round's ratio (its two runs go
back to back, so they share the machine's moment) and their median, which
drift between rounds does not move. Exit status: 0 when the run with the stage keeps
at least the target share of the lines/s of the one without it.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import bench  # noqa: E402  (the harness: run_one, make_input, Daemon)
import rules  # noqa: E402

# stage: (plain scenario, staged scenario, target, gen.c arguments)
STAGES = {
    "geoip": (types.SimpleNamespace(key="rules12", title="3. + 12 regex rules", conf="rules",
                                    nrules=12),
              types.SimpleNamespace(key="geoip", title="7. + GeoIP on two IP fields", conf="geoip",
                                    nrules=12),
              0.80, ()),
    "anomaly": (types.SimpleNamespace(key="json", title="2. TCP -> parse -> JSON file (app lines, "
                                      "100,000 hosts)", conf="json", nrules=0),
                types.SimpleNamespace(key="anomaly", title="8. + anomaly scoring, four detectors "
                                      "keyed by host", conf="anomaly", nrules=0),
                0.70, ("--hosts", "100000", "--mix", "app", "--rate", "20000", "--v5424", "0")),
}


def tools(build):
    """Builds gen and blast as benchmarks/run.sh does, unless BENCH_TOOLS is set."""
    if os.environ.get("BENCH_TOOLS"):
        return
    out = os.path.join(build, "bench")
    os.makedirs(out, exist_ok=True)
    for t in ("gen", "blast"):
        src, exe = os.path.join(HERE, t + ".c"), os.path.join(out, t)
        if not os.path.exists(exe) or os.path.getmtime(src) > os.path.getmtime(exe):
            subprocess.run([os.environ.get("CC", "cc"), "-O2", "-g", "-std=c11", "-D_GNU_SOURCE",
                            "-Wall", "-Wextra", "-Werror", "-pthread", "-o", exe, src, "-lm"],
                           check=True)
    os.environ["BENCH_TOOLS"] = out


def split_input(tmp, inp, first):
    """Cuts an input into its first `first` lines and the rest (two inputs)."""
    parts = []
    with open(inp["path"], "rb") as f:
        for name, n in (("warmup", first), ("measured", inp["lines"] - first)):
            path = os.path.join(tmp, f"{name}.log")
            with open(path, "wb") as o:
                for _ in range(n):
                    o.write(f.readline())
            parts.append({"path": path, "lines": n, "bytes": os.path.getsize(path)})
    return parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", choices=sorted(STAGES), default="geoip")
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warm", action="store_true",
                    help="steady state: each daemon first takes as many lines of the "
                    "traffic's past untimed, then the next --lines are measured")
    ap.add_argument("--keep", action="store_true", help="keep work directories and outputs")
    ap.add_argument("--properties", help="geoip: the outputs to write, e.g. "
                    "geo.country_iso_code,as.number (default: the stage's default)")
    args = ap.parse_args()
    build = os.environ.get("BUILD", "build")
    tools(os.path.join(ROOT, build) if not os.path.isabs(build) else build)
    bench.KEEP = args.keep
    plain, staged, target, gen_args = STAGES[args.stage]
    dbs, real = bench.geoip_databases()
    bench.TUNING["GEOIP_DBS"] = ", ".join(f'"{p}"' for p in dbs)
    bench.TUNING["GEOIP_EXTRA"] = (f"    properties: [{args.properties}]" if args.properties else "")
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix=f"logsift-{args.stage}-", dir=base)
    res = {plain.key: [], staged.key: []}
    try:
        warm = None
        if args.warm:
            warm, inp = split_input(tmp, bench.make_input(tmp, 2 * args.lines, {}, gen_args),
                                    args.lines)
        else:
            inp = bench.make_input(tmp, args.lines, {}, gen_args)
        rp = (rules.write_all(plain.nrules, os.path.join(tmp, "rules"), traffic=inp["path"])
              if plain.nrules else {})
        for run in range(args.runs):
            order = [plain, staged] if run % 2 == 0 else [staged, plain]
            for scn in order:
                r = bench.run_one("logsift", scn, inp, tmp, run, rp, idle_timeout=5.0,
                                  warmup=warm)
                res[scn.key].append(r)
                bench.log(f"{args.stage}: {scn.key:<8} run {run + 1}/{args.runs} "
                          + (f"{r['lps']:>10,.0f} lines/s cpu {r['cpu']:6.2f}s rss {r['rss']:5.0f} MB"
                             f" lost {r['lost']:,}" if "lps" in r else "")
                          + (f"  ERROR: {r['error']}" if r["error"] else ""))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    stats = {}
    for key, rs in res.items():
        ok = [r for r in rs if not r["error"] and r.get("lps")]
        if not ok:
            print(f"{args.stage}: every {key} run failed: {[r['error'] for r in rs]}")
            return 2
        stats[key] = {"lps": statistics.median(r["lps"] for r in ok),
                      "min": min(r["lps"] for r in ok), "max": max(r["lps"] for r in ok),
                      "cpu": statistics.median(r["cpu"] for r in ok),
                      "best": max(r["lps"] for r in ok), "cpu_min": min(r["cpu"] for r in ok),
                      "rss": statistics.median(r["rss"] for r in ok),
                      "lost": max(r["lost"] for r in ok)}
    # The two runs of a round follow each other, so they share the machine's
    # moment: their ratio cancels the drift that moves runs minutes apart.
    pairs = [(s["lps"] / p["lps"], p["cpu"] / s["cpu"])
             for p, s in zip(res[plain.key], res[staged.key])
             if not p["error"] and not s["error"] and p.get("lps") and s.get("lps")
             and p["cpu"] > 0 and s["cpu"] > 0]
    ratio = stats[staged.key]["best"] / stats[plain.key]["best"]
    cpu_ratio = stats[plain.key]["cpu_min"] / stats[staged.key]["cpu_min"]
    med_ratio = stats[staged.key]["lps"] / stats[plain.key]["lps"]
    print(f"\n{bench.machine()}, commit {bench.commit()}; {args.lines:,} lines "
          f"(benchmarks/gen.c {' '.join(gen_args)})"
          + (f" after {args.lines:,} lines of warm-up" if args.warm else ", from a fresh start")
          + f", median of {args.runs} run(s) (min-max)")
    if args.stage == "geoip":
        print("properties: " + (args.properties or "the default") + "; databases: "
              + ", ".join(os.path.relpath(p, ROOT) for p in dbs)
              + ("" if real else "  (MaxMind's test databases: run `make geoip-db` for real "
                 "figures)"))
    print("\n| scenario | lines/s | CPU s | peak RSS MB | lost |\n|---|---|---|---|---|")
    for scn in (plain, staged):
        st = stats[scn.key]
        print(f"| {scn.title} | {bench.human(st['lps'])} ({bench.human(st['min'])}-"
              f"{bench.human(st['max'])}) | {st['cpu']:.2f} | {st['rss']:.0f} | {st['lost']:,} |")
    print(f"\nwith {args.stage} / without, best runs: {ratio:.2f} in lines/s, {cpu_ratio:.2f} in "
          f"CPU time ({'meets' if ratio >= target else 'MISSES'} the {target:.2f} target); "
          f"medians: {med_ratio:.2f} in lines/s")
    if pairs:
        print(f"round by round (the two runs of a round back to back): lines/s "
              f"{' '.join(f'{a:.2f}' for a, _ in pairs)}, median "
              f"{statistics.median(a for a, _ in pairs):.2f}; CPU time "
              f"{' '.join(f'{c:.2f}' for _, c in pairs)}, median "
              f"{statistics.median(c for _, c in pairs):.2f}")
    return 0 if ratio >= target else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# eval.sh - `make eval`: the quality of anomaly scoring and template mining on
# the public benchmarks in ../shared, with the scorers in ../shared/tools.
#
#   NAB:    `logsift score` over every series of $LSF_SHARED/datasets/nab/data into
#           a results folder mirroring data/, scored by tools/nab/nabscore.py
#           (standard / reward_low_FP_rate / reward_low_FN_rate), per file.
#   Loghub: each system's Content column through `logsift templates`, scored by
#           tools/loghub/grouping_accuracy.py on the original and the corrected
#           ground truth, per system.
# One configuration (the defaults) for every file and every system. The scorers
# are run where they are, never copied; when they or the datasets are missing
# this says so and skips that table.
#
# Usage: tests/eval.sh [--keep DIR]   (results are kept in DIR when given)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
LOGSIFT="$PWD/$BUILD/logsift"
SHARED=${LSF_SHARED:-$(cd .. && pwd)/shared}
keep=
[ "${1:-}" = --keep ] && keep=${2:?--keep needs a directory}
[ -x "$LOGSIFT" ] || { echo "eval: $LOGSIFT is missing (run make first)"; exit 1; }
command -v python3 >/dev/null || { echo "eval: python3 is missing"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

echo "== NAB (Numenta Anomaly Benchmark): logsift score, default numeric detector"
nab_data=$SHARED/datasets/nab/data
nab_labels=$SHARED/datasets/nab/labels/combined_windows.json
nab_score=$SHARED/tools/nab/nabscore.py
if [ ! -d "$nab_data" ] || [ ! -f "$nab_labels" ]; then
    echo "SKIPPED: the NAB dataset is missing ($SHARED/datasets/nab)"
elif [ ! -f "$nab_score" ]; then
    echo "SKIPPED: the NAB scorer is missing ($nab_score)"
else
    res=$work/nab
    n=0
    for f in "$nab_data"/*/*.csv; do
        rel=${f#"$nab_data"/}
        mkdir -p "$res/$(dirname "$rel")"
        "$LOGSIFT" score "$f" >"$res/$rel" || { echo "eval: logsift score failed on $rel"; status=1; }
        n=$((n + 1))
    done
    echo "scored $n series"
    python3 "$nab_score" --labels "$nab_labels" --data "$nab_data" "$res" --per-file || status=1
    [ -n "$keep" ] && mkdir -p "$keep" && rm -rf "$keep/nab" && cp -r "$res" "$keep/nab"
fi

echo
echo "== Loghub 2k: logsift templates, grouping accuracy"
lh=$SHARED/datasets/loghub
ga=$SHARED/tools/loghub/grouping_accuracy.py
if [ ! -d "$lh" ]; then
    echo "SKIPPED: the Loghub dataset is missing ($lh)"
elif [ ! -f "$ga" ]; then
    echo "SKIPPED: the Loghub scorer is missing ($ga)"
else
    pred=$work/loghub
    mkdir -p "$pred"
    for dir in "$lh"/*/; do
        s=$(basename "$dir")
        csv=$dir/${s}_2k.log_structured.csv
        [ -f "$csv" ] || continue
        # the Content column, one message per line (RFC 4180 quoting handled by Python)
        python3 -c 'import csv, sys
for r in csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")):
    print(r["Content"].replace("\n", " "))' "$csv" | "$LOGSIFT" templates >"$pred/$s.csv" ||
            { echo "eval: logsift templates failed on $s"; status=1; }
    done
    echo "-- original ground truth"
    python3 "$ga" --data-dir "$lh" --pred-dir "$pred" || status=1
    echo "-- corrected ground truth (Khan et al. 2022 / Loghub-2.0)"
    python3 "$ga" --data-dir "$lh" --pred-dir "$pred" --corrected || status=1
    [ -n "$keep" ] && mkdir -p "$keep" && rm -rf "$keep/loghub" && cp -r "$pred" "$keep/loghub"
fi
exit $status

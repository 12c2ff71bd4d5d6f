# calbridge — see README.md. `make check` runs every test; `make demo` shows
# a real sync on embedded defaults. Both install their Debian packages first.

CC      ?= cc
PKGS    := libpq libical libcurl libxml-2.0 libevent lmdb inih jansson
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
B       := build

MAPPING := mapping/cb_err.c mapping/people.c mapping/sbuf.c mapping/tzmap.c mapping/recur.c \
           mapping/tzdef.c mapping/ews_item.c mapping/ical_zone.c mapping/occur.c mapping/ical_in.c \
           mapping/ews_in.c mapping/ical_out.c mapping/xml_in.c mapping/peruser.c mapping/hash.c
STATE   := state/store.c state/keys.c
# bridge/: side.h is the contract of a calendar side; apple/ and exchange/
# implement it (CalendarServer's tables, EWS), engine/ reconciles through
# it and knows neither, sides.c chooses them, cli/ is the command line.
APPLE   := bridge/apple/pg_source.c bridge/apple/pg_sink.c bridge/apple/ccs_notify.c \
           bridge/apple/side_apple.c
EXCH    := bridge/exchange/ews_client.c bridge/exchange/ews_xml.c bridge/exchange/ews_ops.c \
           bridge/exchange/ews_stream.c bridge/exchange/oauth2.c bridge/exchange/side_ews.c \
           bridge/exchange/autodiscover.c
ENGINE  := bridge/side.c bridge/engine/rules.c bridge/engine/reconcile.c \
           bridge/engine/service.c bridge/engine/cutover.c
CLI     := bridge/sides.c bridge/cli/config.c bridge/cli/report.c bridge/cli/translate.c
BRIDGE  := $(APPLE) $(EXCH) $(ENGINE) $(CLI)
LIBSRC  := $(MAPPING) $(STATE) $(BRIDGE)
LIBOBJ  := $(LIBSRC:%.c=$(B)/%.o)
UNITS   := test_people test_config test_store test_keys test_rules test_engine test_ews_xml test_ical_in \
           test_mapping test_sim_recur test_peruser
SIMSRC  := tests/ewssim/ewssim.c tests/ewssim/sim_ops.c tests/ewssim/sim_route.c tests/ewssim/sim_ntlm.c tests/ewssim/sim_buf.c tests/ewssim/sim_recur.c
HDRS    := $(wildcard mapping/*.h state/*.h bridge/*.h bridge/*/*.h tests/ewssim/*.h tests/fuzz/*.h tests/unit/*.h)
FUZZERS := fuzz_ical_in fuzz_ews_xml fuzz_ews_in fuzz_stream
FUZZ_CC := clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SECONDS ?= 300

.SECONDARY:
.PHONY: all deps check unit unit-asan it it-v66 it-v66-chaos it-asan it-chaos fuzz fuzz-short torture demo bench env env-stop clean
all: $(B)/calbridge $(B)/ewssim $(B)/ccsload $(B)/bothsides $(B)/revorder $(B)/readparse \
     $(UNITS:%=$(B)/%)

deps:
	@tests/install-deps.sh

$(B)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/asan/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN) -c -o $@ $<

$(B)/calbridge: $(B)/bridge/cli/main.o $(LIBOBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The simulator models Exchange, not calbridge: it links nothing of mapping/
# or bridge/.
# The simulator's NTLM needs MD4 and HMAC-MD5 (libcrypto; calbridge's own
# NTLM is libcurl's).
$(B)/ewssim: $(SIMSRC:%.c=$(B)/%.o)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcrypto

$(B)/ccsload: $(B)/tests/ccsload.o $(LIBOBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/revorder: $(B)/tests/revorder.o $(LIBOBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# make bench's floor: reading and parsing alone (tests/readparse.c).
$(B)/readparse: $(B)/tests/readparse.o $(LIBOBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bothsides: $(B)/tests/bothsides.o $(MAPPING:%.c=$(B)/%.o)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The engine's tests run it on two in-memory sides (tests/unit/fake_side.c).
$(B)/test_engine: $(B)/tests/unit/fake_side.o
$(B)/asan/test_engine: $(B)/asan/tests/unit/fake_side.o
# The simulator's expansion is tested on its own, against the documentation.
$(B)/test_sim_recur: $(B)/tests/ewssim/sim_recur.o
$(B)/asan/test_sim_recur: $(B)/asan/tests/ewssim/sim_recur.o

$(B)/test_%: $(B)/tests/unit/test_%.o $(LIBOBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(B)/asan/test_%: $(B)/asan/tests/unit/test_%.o $(LIBSRC:%.c=$(B)/asan/%.o)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS) -lcmocka

# The programs built with ASan+UBSan, for `make it-asan`.
ASANOBJ := $(LIBSRC:%.c=$(B)/asan/%.o)
$(B)/asan/calbridge: $(B)/asan/bridge/cli/main.o $(ASANOBJ)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)
$(B)/asan/ewssim: $(SIMSRC:%.c=$(B)/asan/%.o)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS) -lcrypto
$(B)/asan/ccsload: $(B)/asan/tests/ccsload.o $(ASANOBJ)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)
$(B)/asan/bothsides: $(B)/asan/tests/bothsides.o $(MAPPING:%.c=$(B)/asan/%.o)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)
$(B)/asan/revorder: $(B)/asan/tests/revorder.o $(ASANOBJ)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

# libFuzzer harnesses (clang), every library object built for them.
$(B)/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS) -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c -o $@ $<
$(B)/fuzz/%: $(B)/fuzz/obj/tests/fuzz/%.o $(LIBSRC:%.c=$(B)/fuzz/obj/%.o)
	$(FUZZ_CC) $(CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(LDLIBS)

# `make fuzz` runs each harness FUZZ_SECONDS (300); check runs each 15 s
# from a fixed seed (one minute in all).
fuzz: deps $(FUZZERS:%=$(B)/fuzz/%)
	@tests/fuzz/run.sh $(FUZZ_SECONDS)
fuzz-short: $(FUZZERS:%=$(B)/fuzz/%)
	@tests/fuzz/run.sh seed=1 15

unit: $(UNITS:%=$(B)/%)
	@set -e; for t in $^; do echo "== $$t"; $$t; done

unit-asan: $(UNITS:%=$(B)/asan/%)
	@set -e; for t in $^; do echo "== $$t (ASan+UBSan)"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $$t; done

it: all
	@tests/it/run.sh

# The same suite on CalendarServer's current schema (v66); `it` runs on v58,
# the oldest calbridge supports (macOS Server 5, CalendarServer 7.1).
it-v66: all
	@CCS_SCHEMA=v66-current tests/it/run.sh

# What `make check` runs on v66: the same suite against a simulator where
# 20 per mille of calbridge's requests meet a fault Exchange sends under
# load and ChangeKeys move by themselves (a fixed seed: the same faults in
# the same order, as far as timing allows).
it-v66-chaos: all
	@CCS_SCHEMA=v66-current IT_CHAOS=$${IT_CHAOS:-20} IT_SEED=$${IT_SEED:-1} tests/it/run.sh

# Every integration test against a simulator where IT_CHAOS per mille of
# requests meet a fault Exchange sends under load (busy, 503, an item busy
# inside a 200, an answer lost after the work was done) and ChangeKeys move
# by themselves; IT_SEED picks the sequence. Not in check yet: see README.
it-chaos: all
	@IT_CHAOS=$${IT_CHAOS:-20} tests/it/run.sh

# The integration tests against sanitized programs (slower; not in check).
it-asan: $(B)/asan/calbridge $(B)/asan/ewssim $(B)/asan/ccsload $(B)/asan/bothsides \
         $(B)/asan/revorder
	@ASAN_OPTIONS=detect_leaks=0 BIN=$(B)/asan tests/it/run.sh

check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory unit-asan
	@$(MAKE) --no-print-directory fuzz-short
	@$(MAKE) --no-print-directory it
	@$(MAKE) --no-print-directory it-v66-chaos

# kill -9 at 100 random points over every phase (a few minutes; not in check).
torture: deps
	@$(MAKE) --no-print-directory all
	@tests/torture.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@tests/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@tests/bench.sh

env: deps
	@$(MAKE) --no-print-directory all
	@tests/env.sh start

env-stop:
	@tests/env.sh stop

clean:
	rm -rf $(B)

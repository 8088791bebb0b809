# tern - one Makefile for the whole tree (see docs/HACKING.md for why not CMake).
#
#   make            build build/tern
#   make run        install what is missing, build, start the development server
#   make test       install what is missing, run every test tier, normal build then ASan+UBSan
#   make check      the same tiers on the current build only (no sanitizer pass)
#   make fuzz       run each fuzz target for FUZZ_SECONDS
#   make bench      tern against Postfix, same machine, same run
#   make bench-submission  the same on the submission path: STARTTLS, AUTH PLAIN, TLS handshakes
#   make bench-relay  tern against Postfix as relays, end to end: smtp-source -> server -> smtp-sink
#   make bench-relay-big  the same with 1 MiB and 10 MiB messages: peak memory and throughput
#   make bench-bounce-storm  DATA-to-250 latency of tern while 5,000 bounces are composed
#   make SAN=1      build with AddressSanitizer and UndefinedBehaviorSanitizer into build-san/
#   make install    tern into $(PREFIX)/sbin, its man page, and links named sendmail, mailq and
#                   newaliases where no other mail system has them (DESTDIR= for staging)
#   make WERROR=1   warnings are errors (CI does this)

CC ?= cc
SAN ?= 0
WERROR ?= 0
FUZZ_SECONDS ?= 60
PREFIX ?= /usr/local
DESTDIR ?=
# Where Debian's programs look for the sendmail command (cron, PHP, mailx, ...).
SENDMAIL_LINKS ?= /usr/sbin/sendmail /usr/bin/mailq /usr/sbin/newaliases

ifeq ($(SAN),1)
BUILD := build-san
OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SANLD := -fsanitize=address,undefined
else
BUILD := build
OPT := -O2 -g -D_FORTIFY_SOURCE=2
SANLD :=
endif

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wcast-qual -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif

PKGS := libevent_core libevent_pthreads libevent_openssl openssl sqlite3 libunbound
CPPFLAGS += -D_GNU_SOURCE -Isrc
CFLAGS += -std=c11 $(OPT) $(WARN) -fstack-protector-strong -fPIE -pthread -MMD -MP \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS += -pie -pthread -Wl,-z,relro,-z,now $(SANLD)
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypt

LIB_SRC := $(sort $(wildcard src/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/src/main.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run test check unit dialog e2e crash fuzz bench bench-submission bench-relay bench-relay-big bench-bounce-storm clean deps test-deps lint docs \
	install

all: $(BUILD)/tern

$(BUILD)/tern: $(MAIN_OBJ) $(BUILD)/libtern.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libtern.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libtern.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libtern.a $(LDLIBS)

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

# The development default: loopback only, data in ./var, local domain localhost.
run:
	@scripts/install-deps.sh run
	@$(MAKE) --no-print-directory all
	./$(BUILD)/tern serve

unit: $(UNIT_BIN)
	@tests/run-unit.sh $(UNIT_BIN)

# check: every tier against the current build (normal, or SAN=1).
check: all unit
	@TERN_BIN=$(CURDIR)/$(BUILD)/tern tests/run-py.sh tests/dialog tests/e2e tests/crash

test: test-deps
	@scripts/check-banned.sh
	@scripts/check-alloc.sh
	@scripts/check-names.sh
	@$(MAKE) --no-print-directory WERROR=1 check
	@$(MAKE) --no-print-directory WERROR=1 SAN=1 check

fuzz: test-deps
	@fuzz/run.sh $(FUZZ_SECONDS)

bench:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh $(CURDIR)/build/tern

bench-submission:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh --submission $(CURDIR)/build/tern

bench-relay:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh --relay $(CURDIR)/$(BUILD)/tern

bench-relay-big:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh --relay-big $(CURDIR)/$(BUILD)/tern

bench-bounce-storm:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh --bounce-storm $(CURDIR)/$(BUILD)/tern

# INSTALL_BIN: the binary to install (the build by default).
INSTALL_BIN ?= $(BUILD)/tern
install: $(INSTALL_BIN)
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(PREFIX)/sbin/tern
	install -m 0644 docs/tern.8 $(DESTDIR)$(PREFIX)/share/man/man8/tern.8
	@scripts/install-links.sh "$(DESTDIR)" "$(PREFIX)/sbin/tern" $(SENDMAIL_LINKS)

docs: all
	./$(BUILD)/tern config defaults --markdown > docs/CONFIG.md

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)

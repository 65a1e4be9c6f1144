# mxlane - a drop-in sendmail with a transactional BerkeleyDB spool.
#
#   make                 build sendmail/sendmail and queuerun/queuerun
#   make check           build, then run every unit and integration test
#   make check-sanitize  the same suite under AddressSanitizer + UBSan
#                        (objects and programs go to build-sanitize/)
#   make fuzz            build the libFuzzer harnesses of tests/fuzz/ with
#                        clang into build-fuzz/ and run each FUZZ_SECONDS
#                        (default 60) on its corpus; fails on any finding
#   make bench           benchmarks (numbers go in README)
#   make check-servers   the C test servers of tests/servers/ (rtsink), which
#                        check and bench build first
#   make install         honours DESTDIR, PREFIX, SYSCONFDIR, SPOOLDIR,
#                        MXLANE_USER and MXLANE_GROUP
#
# O= puts objects and programs in another tree, so a sanitizer build can sit
# beside the normal one.

O        ?= .
PREFIX   ?= /usr
SBINDIR  ?= $(PREFIX)/sbin
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
SPOOLDIR ?= /var/spool/mxlane
MXLANE_USER  ?= mxlane
MXLANE_GROUP ?= mxlane

CC       ?= cc
OPTFLAGS ?= -O2 -g
PKGS      = libconfuse libesmtp-1.0 openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) libcurl 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARNFLAGS = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
HARDENING = -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE \
            -fstack-clash-protection
HARDEN_LD = -pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack
ifdef SANITIZE
OPTFLAGS  = -O1 -g -fno-omit-frame-pointer
HARDENING = -fPIE
SANFLAGS  = -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
# The parsers built for libFuzzer: coverage-instrumented (fuzzer-no-link:
# the harness brings main) and sanitized the same way, with clang.
ifdef FUZZ
OPTFLAGS  = -O1 -g -fno-omit-frame-pointer
HARDENING = -fPIE
SANFLAGS  = -fsanitize=fuzzer-no-link,address,undefined \
            -fno-sanitize-recover=undefined
endif

ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(OPTFLAGS) $(WARNFLAGS) $(HARDENING) \
             $(SANFLAGS) -I. $(PKG_CFLAGS) $(CFLAGS) \
             -DMXL_SYSCONFDIR='"$(SYSCONFDIR)"' -DMXL_SPOOLDIR='"$(SPOOLDIR)"' \
             -DMXL_SBINDIR='"$(SBINDIR)"'
ALL_LDFLAGS = $(HARDEN_LD) $(SANFLAGS) $(LDFLAGS)
# What each layer needs beyond libc: lib/ reads the configuration with
# libconfuse, spool/ is BerkeleyDB, dns/ uses libresolv's parsers, and
# queuerun alone fetches MTA-STS policies with libcurl (queuerun/mtasts.c)
# and signs with libopendkim (queuerun/dkim.c).
LIBS_LIB   = $(shell pkg-config --libs libconfuse 2>/dev/null)
LIBS_SPOOL = -ldb
LIBS_DNS   = -lresolv
LIBS_CURL  = $(shell pkg-config --libs libcurl 2>/dev/null)
LIBS_DKIM  = $(shell pkg-config --libs opendkim 2>/dev/null || echo -lopendkim)

LIB_SRCS      = lib/util.c lib/log.c lib/config.c lib/replyrules.c lib/gate.c \
                lib/proc.c \
                lib/strmap.c lib/units.c lib/escape.c \
                lib/safefile.c
SPOOL_SRCS    = spool/record.c spool/txn.c spool/schedule.c spool/wakeup.c \
                spool/maildrop.c spool/pickup.c \
                spool/throttle.c spool/cache.c spool/spool.c spool/aliasdb.c \
                spool/compact.c spool/suppress.c spool/admin.c spool/msgflags.c \
                spool/submitcount.c spool/runners.c \
                spool/shaping.c spool/stats.c
DNS_SRCS      = dns/dns.c
SENDMAIL_SRCS = sendmail/main.c sendmail/options.c sendmail/address.c \
                sendmail/message.c sendmail/submit.c sendmail/aliases.c \
                sendmail/smtpd.c sendmail/mailq.c sendmail/headercheck.c \
                sendmail/limits.c
QUEUERUN_SRCS = queuerun/main.c queuerun/show.c queuerun/runner.c \
                queuerun/longlines.c queuerun/dkim.c queuerun/dkimtool.c \
                queuerun/job.c queuerun/worker.c queuerun/dest.c \
                queuerun/deliver.c queuerun/connect.c queuerun/wire.c \
                queuerun/pipeline.c \
                queuerun/bounce.c \
                queuerun/nexthop.c queuerun/mtasts.c queuerun/notice.c \
                queuerun/explain.c queuerun/classify.c \
                queuerun/suppress.c queuerun/shaping.c queuerun/admin.c \
                queuerun/spamcheck.c queuerun/limits.c \
                queuerun/stats.c queuerun/status.c queuerun/metrics.c
ROUTE_SRCS    = route/route.c route/replies.c
UNIT_TESTS    = tests/unit/test_address tests/unit/test_record \
                tests/unit/test_config tests/unit/test_aliases \
                tests/unit/test_message tests/unit/test_spool \
                tests/unit/test_smtpd tests/unit/test_mailq_format \
                tests/unit/test_bounce tests/unit/test_dns tests/unit/test_schedule \
                tests/unit/test_route tests/unit/test_safefile \
                tests/unit/test_nexthop tests/unit/test_strmap \
                tests/unit/test_pipeline tests/unit/test_mtasts \
                tests/unit/test_replies \
                tests/unit/test_shaping tests/unit/test_admin \
                tests/unit/test_spamcheck tests/unit/test_submitcount \
                tests/unit/test_stats
# Test servers in C (tests/servers/), for the integration tests and the
# benchmarks: dependency-free, built with the same flags.
TEST_SERVERS  = tests/servers/rtsink tests/servers/slowpoll.so

LIB_OBJS      = $(LIB_SRCS:%.c=$(O)/%.o)
SPOOL_OBJS    = $(SPOOL_SRCS:%.c=$(O)/%.o)
DNS_OBJS      = $(DNS_SRCS:%.c=$(O)/%.o)
SENDMAIL_OBJS = $(SENDMAIL_SRCS:%.c=$(O)/%.o)
QUEUERUN_OBJS = $(QUEUERUN_SRCS:%.c=$(O)/%.o)
ROUTE_OBJS    = $(ROUTE_SRCS:%.c=$(O)/%.o)
# Everything in sendmail/ and queuerun/ but main() (and the connect(),
# read() and write() interposition), for the unit tests.
SENDMAIL_LIB_OBJS = $(filter-out $(O)/sendmail/main.o,$(SENDMAIL_OBJS))
QUEUERUN_LIB_OBJS = $(filter-out $(O)/queuerun/main.o $(O)/queuerun/connect.o \
                    $(O)/queuerun/wire.o,\
                    $(QUEUERUN_OBJS))

# The harnesses link only the parsers they drive and lib/, as its archive
# so that only the members those need come along: no spool, so neither
# BerkeleyDB nor the spool code has to build with clang.
FUZZ_HARNESSES = fuzz_address fuzz_message fuzz_smtpd fuzz_aliases \
                 fuzz_config
FUZZ_OBJS = $(addprefix $(O)/,sendmail/address.o sendmail/message.o \
              sendmail/smtpd.o sendmail/aliases.o) $(O)/lib/libmxl.a
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60

PROGRAMS = $(O)/sendmail/sendmail $(O)/queuerun/queuerun
SRCDIRS  = lib spool dns route sendmail queuerun

.PHONY: all check check-unit check-servers check-sanitize fuzz fuzz-build \
        bench install clean demo
all: $(PROGRAMS)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(LIB_OBJS:.o=.d) $(SPOOL_OBJS:.o=.d) $(DNS_OBJS:.o=.d) \
         $(ROUTE_OBJS:.o=.d) $(SENDMAIL_OBJS:.o=.d) $(QUEUERUN_OBJS:.o=.d)

$(O)/lib/libmxl.a: $(LIB_OBJS)
	@echo "  AR      $@"
	@rm -f $@ && $(AR) rcs $@ $^

$(O)/dns/libdns.a: $(DNS_OBJS)
	@echo "  AR      $@"
	@rm -f $@ && $(AR) rcs $@ $^

$(O)/spool/libspool.a: $(SPOOL_OBJS)
	@echo "  AR      $@"
	@rm -f $@ && $(AR) rcs $@ $^

$(O)/queuerun/libqueuerun.a: $(QUEUERUN_LIB_OBJS)
	@echo "  AR      $@"
	@rm -f $@ && $(AR) rcs $@ $^

$(O)/route/libroute.a: $(ROUTE_OBJS)
	@echo "  AR      $@"
	@rm -f $@ && $(AR) rcs $@ $^

$(O)/sendmail/libsubmit.a: $(SENDMAIL_LIB_OBJS)
	@echo "  AR      $@"
	@rm -f $@ && $(AR) rcs $@ $^

$(O)/sendmail/sendmail: $(O)/sendmail/main.o $(O)/sendmail/libsubmit.a \
                       $(O)/route/libroute.a $(O)/spool/libspool.a \
                       $(O)/lib/libmxl.a
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_SPOOL) $(LIBS_LIB)

# queuerun list prints what mailq prints (sendmail/mailq.c), and more.
$(O)/queuerun/queuerun: $(QUEUERUN_OBJS) $(O)/sendmail/mailq.o \
                       $(O)/route/libroute.a \
                       $(O)/dns/libdns.a $(O)/spool/libspool.a \
                       $(O)/lib/libmxl.a
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_SPOOL) $(LIBS_DNS) $(LIBS_LIB) \
	    $(LIBS_CURL) $(LIBS_DKIM) $(PKG_LIBS)

UNIT_LIBS = $(O)/queuerun/libqueuerun.a $(O)/sendmail/libsubmit.a \
            $(O)/route/libroute.a $(O)/dns/libdns.a $(O)/spool/libspool.a \
            $(O)/lib/libmxl.a
$(O)/tests/unit/%: tests/unit/%.c tests/unit/unit.h $(UNIT_LIBS)
	@mkdir -p $(dir $@)
	@echo "  CC/LD   $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(UNIT_LIBS) $(LIBS_SPOOL) $(LIBS_DNS) \
	    $(LIBS_LIB) $(LIBS_CURL) $(LIBS_DKIM) $(PKG_LIBS)

check-unit: $(UNIT_TESTS:%=$(O)/%)

$(O)/tests/servers/%: tests/servers/%.c
	@mkdir -p $(dir $@)
	@echo "  CC/LD   $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $<

# Test instruments loaded with LD_PRELOAD: shared, and not sanitized
# (the sanitizer's run-time comes first in a sanitized program).
$(O)/tests/servers/%.so: tests/servers/%.c
	@mkdir -p $(dir $@)
	@echo "  CC/LD   $@"
	@$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARNFLAGS) -fPIC -shared -o $@ $< -ldl

check-servers: $(TEST_SERVERS:%=$(O)/%)

check: all check-unit check-servers
	MXL_BUILD=$(abspath $(O)) sh tests/run.sh

check-sanitize:
	$(MAKE) O=build-sanitize SANITIZE=1 all check-unit check-servers
	MXL_BUILD=$(abspath build-sanitize) MXL_SANITIZE=1 \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 sh tests/run.sh

$(O)/tests/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	@echo "  CC/LD   $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $< \
	    $(FUZZ_OBJS) $(LIBS_LIB)

fuzz-build: $(FUZZ_HARNESSES:%=$(O)/tests/fuzz/%)

fuzz:
	$(MAKE) O=build-fuzz FUZZ=1 CC=$(FUZZ_CC) fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh build-fuzz \
	    $(FUZZ_HARNESSES)

bench: all check-servers
	MXL_BUILD=$(abspath $(O)) sh tests/bench/run.sh

demo: all
	sh contrib/demo.sh

install: all
	sh contrib/install.sh "$(DESTDIR)" "$(SBINDIR)" "$(BINDIR)" "$(MANDIR)" \
	   "$(SYSCONFDIR)" "$(SPOOLDIR)" "$(MXLANE_USER)" "$(MXLANE_GROUP)" \
	   "$(O)"

clean:
	rm -rf build-sanitize build-fuzz
	rm -f $(addsuffix /*.o,$(SRCDIRS)) $(addsuffix /*.d,$(SRCDIRS)) \
	      $(addsuffix /*.a,$(SRCDIRS)) $(PROGRAMS) $(UNIT_TESTS:%=$(O)/%) \
	      $(TEST_SERVERS:%=$(O)/%)

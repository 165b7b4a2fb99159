# Raven Zero - build, test, bench, fuzz, run, install.
# One binary, ./raven-zero, from master/ worker/ shredder/ common/.
# Objects go to build/rel (the binary) and build/asan (ASan+UBSan, used by make test).

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
PKGS := libh2o-evloop hiredis libcrypto libmagic libcjson yaml-0.1

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wformat=2
DEFS := -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -DRZ_PREFIX='"$(PREFIX)"'
INCS := -Icommon -Iworker -Ishredder -Imaster
CFLAGS_rel := -O2 -g
CFLAGS_asan := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_asan := -fsanitize=address,undefined

LIB_SRC := $(wildcard common/*.c) $(filter-out master/main.c,$(wildcard worker/*.c shredder/*.c master/*.c))
MAIN_SRC := master/main.c
UNIT_SRC := $(wildcard test/unit/test_*.c)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
HDRS := $(wildcard common/*.h worker/*.h shredder/*.h master/*.h)

define flavour
build/$(1)/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	@echo "  CC [$(1)] $$<"
	@$$(CC) $$(WARN) $$(DEFS) $$(INCS) $$(CFLAGS_$(1)) $$(PKG_CFLAGS) -c $$< -o $$@

build/$(1)/libraven.a: $$(LIB_SRC:%.c=build/$(1)/%.o)
	@rm -f $$@
	@ar rcs $$@ $$^

build/$(1)/raven-zero: build/$(1)/master/main.o build/$(1)/libraven.a
	@echo "  LD [$(1)] $$@"
	@$$(CC) $$(LDFLAGS_$(1)) -o $$@ $$^ $$(PKG_LIBS)

build/$(1)/test/unit/%: build/$(1)/test/unit/%.o build/$(1)/libraven.a
	@echo "  LD [$(1)] $$@"
	@$$(CC) $$(LDFLAGS_$(1)) -o $$@ $$^ $$(PKG_LIBS) $$(shell pkg-config --libs cmocka)
endef
$(eval $(call flavour,rel))
$(eval $(call flavour,asan))

.PHONY: all deps run test unit clean install bench fuzz
.SECONDARY:

all: raven-zero

raven-zero: build/rel/raven-zero
	@cp $< $@.tmp && mv -f $@.tmp $@

deps:
	@scripts/deps.sh

UNITS_rel := $(UNIT_SRC:%.c=build/rel/%)
UNITS_asan := $(UNIT_SRC:%.c=build/asan/%)

unit: deps $(UNITS_rel)

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory all build/asan/raven-zero $(UNITS_rel) $(UNITS_asan)
	@python3 test/run.py

bench: deps
	@$(MAKE) --no-print-directory all
	@python3 test/bench.py

FUZZ_SECONDS ?= 60
fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build raven-zero

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/raven-zero $(DESTDIR)/etc/raven-zero
	install -m 0755 raven-zero $(DESTDIR)$(PREFIX)/sbin/raven-zero
	install -m 0644 wordlists/eff_large_wordlist.txt wordlists/LICENSE.md $(DESTDIR)$(PREFIX)/share/raven-zero/
	install -m 0644 etc/raven-zero.yaml $(DESTDIR)/etc/raven-zero/raven-zero.yaml

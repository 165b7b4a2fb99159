# Raven Zero - build, test, bench, fuzz, run, install, screenshots.
# One binary, ./raven-zero, from master/ worker/ shredder/ common/. Each flavour has its
# objects under build/FLAVOUR: rel (./raven-zero: optimised and hardened), asan
# (AddressSanitizer + UndefinedBehaviorSanitizer, for make test), fuzz (clang with
# libFuzzer, for make fuzz).
# Packages: scripts/packages.txt, the one list; targets install the groups they need.
# The user's CFLAGS, CPPFLAGS and LDFLAGS come last on every command line.

all: raven-zero

PREFIX ?= /usr/local
DESTDIR ?=
UNITDIR ?= $(PREFIX)/lib/systemd/system
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
PACKAGES := scripts/packages.txt

# The pkg-config modules of the build group (the program) and of the test group (the
# unit tests), and the package providing a module, from the package list.
modules = $(shell awk '/^[a-z]/ && $$3 ~ /^pkg-config:/ && index("," $$1 ",", ",$1,") \
    { print substr($$3, 12) }' $(PACKAGES))
package_of = $(shell awk '/^[a-z]/ && $$3 == "pkg-config:$1" { print $$2 }' $(PACKAGES))
PKGS_build := $(call modules,build)
PKGS_test := $(call modules,test)

# pkg-config OPTION over the modules of GROUP; a missing module stops the build, naming
# its package. Expanded only by the recipes that compile or link, so that `make deps`
# or `make clean` work without them, and cached after the first use.
missing = $(strip $(foreach m,$(PKGS_$1),$(if $(shell pkg-config --exists $m && echo yes),,$m)))
pkg = $(if $(call missing,$2),$(error missing $(call missing,$2) (apt install $(foreach \
    m,$(call missing,$2),$(call package_of,$m)), or run scripts/deps.sh $2)),$(shell \
    pkg-config $1 $(PKGS_$2)))
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(call pkg,--cflags,build))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $$(call pkg,--libs,build))$(PKG_LIBS)
UNIT_CFLAGS = $(eval UNIT_CFLAGS := $$(call pkg,--cflags,test))$(UNIT_CFLAGS)
UNIT_LIBS = $(eval UNIT_LIBS := $$(call pkg,--libs,test))$(UNIT_LIBS)

WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wformat=2
DEFS := -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -DRZ_PREFIX='"$(PREFIX)"'
INCS := -Icommon -Iworker -Ishredder -Imaster -Iworker/compat
HARDEN_CFLAGS := -fstack-protector-strong -fPIE
HARDEN_LDFLAGS := -pie -Wl,-z,relro,-z,now
# Unless the user chose another level, or no optimisation (glibc then warns, and -Werror).
FORTIFY = $(if $(findstring _FORTIFY_SOURCE,$(CPPFLAGS))$(filter -O0,$(lastword $(filter -O%,$(CFLAGS)))),,-D_FORTIFY_SOURCE=2)

CC_rel = $(CC)
CPPFLAGS_rel = $(FORTIFY)
CFLAGS_rel := -O2 -g $(HARDEN_CFLAGS)
LDFLAGS_rel := $(HARDEN_LDFLAGS)
# The sanitizers' builds have no _FORTIFY_SOURCE: its checked copies of memcpy and the
# like would be called instead of the functions the sanitizers intercept.
CC_asan = $(CC)
CFLAGS_asan := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
    -fno-sanitize-recover=undefined $(HARDEN_CFLAGS)
LDFLAGS_asan := -fsanitize=address,undefined $(HARDEN_LDFLAGS)
# Library objects get libFuzzer's coverage hooks; only the targets link libFuzzer itself.
CC_fuzz = $(FUZZ_CC)
CFLAGS_fuzz := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
    -fno-sanitize-recover=undefined
LDFLAGS_fuzz := -fsanitize=address,undefined

LIB_SRC := $(wildcard common/*.c) $(filter-out master/main.c,$(wildcard worker/*.c shredder/*.c master/*.c))
MAIN_SRC := master/main.c
UNIT_SRC := $(wildcard test/unit/test_*.c)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)

# Files built into the binary, so that it needs none at run time: FILE becomes the C
# array rz_NAME and its length rz_NAME_len, NAME being FILE with '/', '.' and '-' as '_'
# (openapi.json: rz_openapi_json). Adding one is a word here and an extern declaration.
EMBED := openapi.json web/index.html web/drop.css web/drop.js web/icon.svg
EMBED_SRC := $(EMBED:%=build/embed/%.c)
LIB_SRC += $(EMBED_SRC)
embed_name = rz_$(subst -,_,$(subst .,_,$(subst /,_,$1)))

# `make install` installs what `make` built: it never compiles or links (under sudo, as
# root), so every recipe that builds starts with this.
building = $(if $(filter install,$(MAKECMDGOALS)),$(error ./raven-zero is missing or \
    out of date (its sources or PREFIX changed): run make first, as yourself))

# A file holding a flavour's flags, rewritten only when they change: its objects depend
# on it, so `make CFLAGS=-O0` or `make PREFIX=/usr` rebuilds them. `make install` asks
# only for the same PREFIX (sudo drops the CFLAGS a user may have exported).
same = $(and $(findstring x$1x,x$2x),$(findstring x$2x,x$1x))
flags_changed = $(if $(filter install,$(MAKECMDGOALS)),$(if $(findstring $(DEFS),$(file \
    <$1)),,FORCE),$(if $(call same,$(file <$1),$2),,FORCE))
shell_quote = '$(subst ','\'',$1)'

define flavour
ALL_CPPFLAGS_$(1) = $$(DEFS) $$(INCS) $$(CPPFLAGS_$(1)) $$(CPPFLAGS)
ALL_CFLAGS_$(1) = $$(WARN) $$(CFLAGS_$(1)) $$(PKG_CFLAGS) $$(CFLAGS)
ALL_LDFLAGS_$(1) = $$(LDFLAGS_$(1)) $$(LDFLAGS)
FLAGS_$(1) = $$(strip $$(CC_$(1)) $$(DEFS) $$(CPPFLAGS_$(1)) $$(CPPFLAGS) $$(WARN) \
    $$(CFLAGS_$(1)) $$(CFLAGS) $$(ALL_LDFLAGS_$(1)))
DEPFILES += $$(patsubst %.c,build/$(1)/%.d,$$(LIB_SRC) $$(MAIN_SRC) $$(UNIT_SRC) $$(FUZZ_SRC))

build/$(1)/flags: $$(call flags_changed,build/$(1)/flags,$$(FLAGS_$(1)))
	$$(building)
	@mkdir -p $$(@D)
	@printf '%s\n' $$(call shell_quote,$$(FLAGS_$(1))) >$$@

build/$(1)/%.o: %.c build/$(1)/flags
	$$(building)
	@mkdir -p $$(@D)
	@echo "  CC [$(1)] $$<"
	@$$(CC_$(1)) $$(ALL_CPPFLAGS_$(1)) $$(ALL_CFLAGS_$(1)) $$(XCFLAGS) -MMD -MP -c $$< -o $$@

build/$(1)/libraven.a: $$(LIB_SRC:%.c=build/$(1)/%.o)
	$$(building)
	@rm -f $$@
	@ar rcs $$@ $$^

build/$(1)/raven-zero: build/$(1)/master/main.o build/$(1)/libraven.a
	$$(building)
	@echo "  LD [$(1)] $$@"
	@$$(CC_$(1)) $$(ALL_CFLAGS_$(1)) $$(ALL_LDFLAGS_$(1)) -o $$@ $$^ $$(PKG_LIBS)

# Unit tests compile with cmocka's flags too (XCFLAGS, empty for everything else).
build/$(1)/test/unit/%.o: XCFLAGS = $$(UNIT_CFLAGS)
$$(UNIT_SRC:%.c=build/$(1)/%): build/$(1)/%: build/$(1)/%.o build/$(1)/libraven.a
	$$(building)
	@echo "  LD [$(1)] $$@"
	@$$(CC_$(1)) $$(ALL_CFLAGS_$(1)) $$(ALL_LDFLAGS_$(1)) -o $$@ $$^ $$(PKG_LIBS) $$(UNIT_LIBS)
endef
$(eval $(call flavour,rel))
$(eval $(call flavour,asan))
$(eval $(call flavour,fuzz))

# A fuzz target is its own object and the fuzz flavour's library, whatever it includes.
$(FUZZ_SRC:%.c=build/fuzz/%): build/fuzz/%: build/fuzz/%.o build/fuzz/libraven.a
	$(building)
	@echo "  LD [fuzz] $@"
	@$(CC_fuzz) $(ALL_CFLAGS_fuzz) $(ALL_LDFLAGS_fuzz) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS)

-include $(DEPFILES)

raven-zero: build/rel/raven-zero
	$(building)
	@cp $< $@.tmp && mv -f $@.tmp $@

$(EMBED_SRC): build/embed/%.c: %
	$(building)
	@mkdir -p $(@D)
	@{ echo '/* Generated by make from $<: do not edit. */'; \
	  echo '#include <stddef.h>'; \
	  echo 'const unsigned char $(call embed_name,$<)[] = {'; \
	  od -An -v -tx1 $< | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo 'const size_t $(call embed_name,$<)_len = sizeof($(call embed_name,$<));'; \
	} >$@.tmp && mv -f $@.tmp $@

.PHONY: all deps run test test-container unit clean install bench fuzz screenshots FORCE
.SECONDARY:
FORCE:

UNITS_rel := $(UNIT_SRC:%.c=build/rel/%)
UNITS_asan := $(UNIT_SRC:%.c=build/asan/%)
FUZZ_TARGETS ?= $(FUZZ_SRC:fuzz/%.c=%)
FUZZ_RUNS := $(FUZZ_TARGETS:%=run-%)
.PHONY: $(FUZZ_RUNS)

# The tests' tools from npm (Redocly CLI, which lints openapi.json), at the versions
# test/lint/package-lock.json pins; installed under build/, never globally.
LINT_TOOLS := build/lint/node_modules/.package-lock.json
$(LINT_TOOLS): test/lint/package.json test/lint/package-lock.json
	@mkdir -p build/lint
	@cp test/lint/package.json test/lint/package-lock.json build/lint/
	@cd build/lint && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

# Each of these installs the package groups it needs first, then builds in a second make,
# so that a -j build never starts before its packages are there.
deps:
	@scripts/deps.sh build run

run:
	@scripts/deps.sh build run
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

test:
	@scripts/deps.sh build run test
	@$(MAKE) --no-print-directory all build/asan/raven-zero $(UNITS_rel) $(UNITS_asan) $(LINT_TOOLS)
	@python3 test/run.py

# The image built from the Dockerfile and run with podman (test/container/): minutes,
# so not part of make test; .ci/run runs both.
test-container:
	@scripts/deps.sh run container
	@python3 test/run.py --container

unit:
	@scripts/deps.sh build test
	@$(MAKE) --no-print-directory $(UNITS_rel)

# PNGs of every view of the drop page into docs/screenshots/, taken by the tests'
# headless Chromium (its packages are in the test group).
screenshots:
	@scripts/deps.sh build run test
	@$(MAKE) --no-print-directory all
	@python3 test/screenshots.py

bench:
	@scripts/deps.sh build run bench
	@$(MAKE) --no-print-directory all
	@python3 test/bench.py

# Builds every fuzz target and runs it for FUZZ_SECONDS; make -jN fuzz runs N at once,
# FUZZ_TARGETS="fuzz_key" picks some. -k: one target that crashes or does not build
# stops none of the others (the exit status tells).
fuzz:
	@scripts/deps.sh build fuzz
	@echo "fuzz: $(words $(FUZZ_TARGETS)) targets, $(FUZZ_SECONDS) s each"
	@$(MAKE) --no-print-directory -k $(FUZZ_RUNS)

$(FUZZ_RUNS): run-%: build/fuzz/fuzz/%
	@scripts/fuzz-run.sh $< $(FUZZ_SECONDS)

clean:
	rm -rf build raven-zero

# An upgrade keeps the administrator's configuration. Installed, it listens on loopback
# only: on bare metal the reverse proxy on the same host is the way in (the example's
# 0.0.0.0 is the built-in default; the container image sets LISTEN itself). The grep
# fails the install if the example's listen line ever stops matching the sed.
CONF = $(DESTDIR)/etc/raven-zero/raven-zero.yaml
install: raven-zero
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/raven-zero $(DESTDIR)/etc/raven-zero
	install -m 0755 raven-zero $(DESTDIR)$(PREFIX)/sbin/raven-zero
	install -m 0644 wordlists/eff_large_wordlist.txt wordlists/LICENSE.md $(DESTDIR)$(PREFIX)/share/raven-zero/
	[ -e $(CONF) ] || { \
	    sed -e 's/^  - 0\.0\.0\.0:8000$$/  - 127.0.0.1:8000/' etc/raven-zero.yaml >$(CONF).tmp && \
	    grep -q '^  - 127\.0\.0\.1:8000$$' $(CONF).tmp && chmod 0644 $(CONF).tmp && mv $(CONF).tmp $(CONF); }
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/|$(PREFIX)/|g' etc/raven-zero.service >$(DESTDIR)$(UNITDIR)/raven-zero.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/raven-zero.service

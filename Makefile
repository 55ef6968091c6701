# moonstat - build, deps, run, test, bench, install.
# `make run` and `make test` install what is missing (Debian packages) first.

PREFIX   ?= /usr/local
DESTDIR  ?=
SYSCONFDIR ?= /etc
VERSION  := 0.1.0
PKGS     := luajit libuv libcurl yaml-0.1 libcrypto zlib

CC       ?= cc
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
MS_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
            -Iinclude -DMS_VERSION=\"$(VERSION)\" $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl is not linked: src/curl_lazy.c loads it on first use (its
# dependency chain would cost every process a few MiB of resident pages).
MS_LIBS   = $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null) -ldl -lm -lpthread
# -Wl,-E exports ms_ffi_* so the LuaJIT FFI finds them in the binary.
MS_LDFLAGS = -Wl,-E

BUILD    ?= build
SRC      := $(sort $(wildcard src/*.c))
OBJ      := $(SRC:src/%.c=$(BUILD)/%.o)
LIBOBJ   := $(filter-out $(BUILD)/main.o,$(OBJ))

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

PHONY_EXTRA := deps-build asan-unit fuzz-build
.PHONY: all deps $(PHONY_EXTRA) run test test-only unit asan bench install uninstall format format-check clean fuzz

all: moonstat

moonstat: $(OBJ)
	$(CC) $(CFLAGS) $(MS_LDFLAGS) -o $@ $(OBJ) $(MS_LIBS)

$(BUILD)/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MS_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIBOBJ) tests/unit/t.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MS_CFLAGS) -Itests/unit $(MS_LDFLAGS) -o $@ $< $(LIBOBJ) $(MS_LIBS)

unit: $(UNIT_BIN)

-include $(OBJ:.o=.d)

# Install the Debian packages that are missing: deps-build for building and
# running, deps for everything the tests and benchmarks also need (peers).
deps:
	@sh tools/deps.sh

deps-build:
	@sh tools/deps.sh build

run: deps-build moonstat
	./moonstat -c config.yaml

# Every test: C unit tests, Lua tests, integration tests with real peers, then
# the whole suite again under ASan+UBSan. Closing line: "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory format-check moonstat unit fuzz-build
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g $(SAN_FLAGS)" \
		MS_BIN=build-asan/moonstat build-asan/moonstat asan-unit
	@sh tests/run.sh

test-only: moonstat unit
	@sh tests/run.sh

build-asan/moonstat: $(OBJ)
	$(CC) $(CFLAGS) $(MS_LDFLAGS) -o $@ $(OBJ) $(MS_LIBS)

asan-unit: $(UNIT_BIN)

bench: deps moonstat
	@sh bench/run.sh

install: moonstat
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/moonstat \
		$(DESTDIR)$(PREFIX)/share/moonstat/lua $(DESTDIR)$(PREFIX)/share/moonstat/checks \
		$(DESTDIR)$(PREFIX)/share/moonstat/forwarders $(DESTDIR)$(PREFIX)/share/moonstat/scripts \
		$(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(SYSCONFDIR)/moonstat
	install -m 755 moonstat $(DESTDIR)$(PREFIX)/bin/moonstat
	cp -R lua/. $(DESTDIR)$(PREFIX)/share/moonstat/lua/
	cp -R checks/. $(DESTDIR)$(PREFIX)/share/moonstat/checks/
	cp -R forwarders/. $(DESTDIR)$(PREFIX)/share/moonstat/forwarders/
	sed -e 's#^  \(checks\|scripts\|lua\|forwarders\): \[\(.*\)\]#  \1: [$(PREFIX)/share/moonstat/\2]#' \
		-e 's|^paths: .*|paths:|' config.yaml \
		> $(DESTDIR)$(PREFIX)/share/moonstat/config.example.yaml
	test -e $(DESTDIR)$(SYSCONFDIR)/moonstat/config.yaml || \
		install -m 644 $(DESTDIR)$(PREFIX)/share/moonstat/config.example.yaml \
		$(DESTDIR)$(SYSCONFDIR)/moonstat/config.yaml
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|/etc/moonstat|$(SYSCONFDIR)/moonstat|g' dist/moonstat.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/moonstat.service

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/moonstat $(DESTDIR)$(PREFIX)/share/moonstat \
		$(DESTDIR)$(PREFIX)/lib/systemd/system/moonstat.service

format:
	clang-format -i src/*.c src/*.h include/*.h tests/unit/*.c tests/unit/*.h fuzz/*.c

format-check:
	@clang-format --dry-run -Werror src/*.c src/*.h include/*.h tests/unit/*.c tests/unit/*.h fuzz/*.c

clean:
	rm -rf build build-asan build-fuzz moonstat tests/tmp bench/out

# libFuzzer harnesses (clang): fuzz/fuzz_<name>.c linked with the core
# objects built with -fsanitize=fuzzer-no-link,address,undefined.
# `make fuzz` runs each for FUZZ_SECONDS (60); tests/integration/test_fuzz.sh
# runs each over its corpus plus a few thousand mutations.
FUZZ_SRC   := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN   := $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
FUZZ_SECONDS ?= 60
build-fuzz/%.o: src/%.c
	@mkdir -p $(dir $@)
	clang -O1 -g -fsanitize=fuzzer-no-link,address,undefined $(MS_CFLAGS) -c -o $@ $<
FUZZ_OBJ   := $(filter-out build-fuzz/main.o,$(SRC:src/%.c=build-fuzz/%.o))
# each harness #includes the module it fuzzes (to reach static parsers), so
# that module's object is left out of its link
.SECONDEXPANSION:
build-fuzz/fuzz_%: fuzz/fuzz_%.c $$(filter-out build-fuzz/$$*.o,$$(FUZZ_OBJ))
	clang -O1 -g -fsanitize=fuzzer,address,undefined $(MS_CFLAGS) $(MS_LDFLAGS) -o $@ $^ $(MS_LIBS)
fuzz-build: $(FUZZ_BIN)
fuzz: fuzz-build
	@for f in $(FUZZ_BIN); do n=$${f#build-fuzz/fuzz_}; mkdir -p build-fuzz/corpus-$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$$n fuzz/corpus/$$n || exit 1; done

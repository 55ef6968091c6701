# moonstat - build, deps, run, test, bench, install.
# `make run` and `make test` install what is missing (Debian packages) first.

PREFIX   ?= /usr/local
DESTDIR  ?=
SYSCONFDIR ?= /etc
VERSION  := 0.1.0
PKGS     := luajit libuv libcurl yaml-0.1

CC       ?= cc
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
MS_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
            -Iinclude -DMS_VERSION=\"$(VERSION)\" $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
MS_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
# -Wl,-E exports ms_ffi_* so the LuaJIT FFI finds them in the binary.
MS_LDFLAGS = -Wl,-E

BUILD    ?= build
SRC      := $(sort $(wildcard src/*.c))
OBJ      := $(SRC:src/%.c=$(BUILD)/%.o)
LIBOBJ   := $(filter-out $(BUILD)/main.o,$(OBJ))

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all deps run test test-only unit asan bench install uninstall format format-check clean fuzz

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

# Install the Debian packages that are missing (build, run and test peers).
deps:
	@sh tools/deps.sh

run: deps moonstat
	./moonstat -c config.yaml

# Every test: C unit tests, Lua tests, integration tests with real peers, then
# the whole suite again under ASan+UBSan. Closing line: "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory moonstat unit
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
	sed -e 's|@DATADIR@|$(PREFIX)/share/moonstat|g' dist/config.example.yaml \
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
	clang-format -i src/*.c include/*.h tests/unit/*.c tests/unit/*.h

format-check:
	clang-format --dry-run -Werror src/*.c include/*.h tests/unit/*.c tests/unit/*.h

clean:
	rm -rf build build-asan moonstat tests/tmp

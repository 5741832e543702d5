# chorus build. One Makefile, every dependency from pkg-config.
#
#   make                 release build: build/release/chorus
#   make VARIANT=clang   the same with clang: build/clang/chorus
#   make asan            ASan + UBSan build: build/asan/chorus
#   make fuzz            libFuzzer harnesses (clang): build/fuzz/fuzz_*
#   make run             the main job: deps (run set), build, a demo library, ingest, serve
#   make test            install deps (test set), build everything, run every test
#   make bench           install deps (test set), run the benchmarks in bench/

PKGS     := sqlite3 openssl libavformat libavcodec libavutil jansson libpq libcurl libargon2 libarchive
VARIANT  ?= release
BUILD    := build/$(VARIANT)
CC       ?= cc

# run, test and bench install the packages (scripts/deps.sh) before they
# build, in a make of their own: asking pkg-config here would only print
# errors on a fresh machine, which has neither it nor the libraries yet.
ifneq ($(MAKECMDGOALS),)
ifeq ($(filter-out run test bench deps clean format,$(MAKECMDGOALS)),)
NO_PKG_CONFIG := 1
endif
endif
ifndef NO_PKG_CONFIG
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS_COMMON := -std=c17 -D_GNU_SOURCE -Isrc -pthread $(WARN) $(PKG_CFLAGS)
LDLIBS   := $(PKG_LIBS) -pthread -lm

ifeq ($(VARIANT),release)
OPT := -O2 -g
else ifeq ($(VARIANT),clang)
override CC := clang
OPT := -O2 -g
else ifeq ($(VARIANT),asan)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else ifeq ($(VARIANT),fuzz)
OPT := -O1 -g -fsanitize=fuzzer-no-link,address,undefined
endif
CFLAGS ?=
CFLAGS += $(OPT)
LDFLAGS += $(filter -fsanitize=%,$(OPT))

LIB_SRC  := $(filter-out src/chorus.c,$(sort $(wildcard src/*/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/web_index.o $(BUILD)/gen/web_player.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)

.PHONY: all release asan fuzz unit test bench clean deps format run

all: $(BUILD)/chorus $(UNIT_BIN)

$(BUILD)/libchorus.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/chorus: $(BUILD)/src/chorus.o $(BUILD)/libchorus.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h tests/unit/loop_runner.h $(BUILD)/libchorus.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Itests/unit $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libchorus.a $(LDLIBS)

# The console (web/console/), one HTML file with uPlot and tus-js-client
# (the upload view's client) inlined, embedded in the binary. Both come from
# npm (pinned in scripts/package.json), which scripts/deps.sh installs into
# build/npm for every variant's build.
WEB_SRC := $(sort $(wildcard web/console/*))
UPLOT   := build/npm/node_modules/uplot/dist
UPLOT_FILES := $(UPLOT)/uPlot.iife.min.js $(UPLOT)/uPlot.min.css
TUS     := build/npm/node_modules/tus-js-client/dist
TUS_FILES := $(TUS)/tus.min.js

$(UPLOT_FILES) $(TUS_FILES):
	@echo "make: $@ is missing: scripts/deps.sh run installs uPlot and tus-js-client (npm) into build/npm" >&2
	@exit 1

$(BUILD)/gen/console.html: $(WEB_SRC) $(UPLOT_FILES) $(TUS_FILES) scripts/web-bundle.sh
	@mkdir -p $(dir $@)
	./scripts/web-bundle.sh web/console $(UPLOT) $(TUS) > $@.tmp
	mv $@.tmp $@

$(BUILD)/gen/web_index.c: $(BUILD)/gen/console.html scripts/embed.sh
	@mkdir -p $(dir $@)
	./scripts/embed.sh $< web_index_html > $@

$(BUILD)/gen/web_index.o: $(BUILD)/gen/web_index.c
	$(CC) $(CFLAGS) -c -o $@ $<

# The store player (web/player/, docs/player.md): its page, bundled the
# same way (it inlines nothing from npm), and its Service Worker, served
# as a script of its own (a Service Worker cannot be inlined).
PLAYER_SRC := $(sort $(wildcard web/player/*))

$(BUILD)/gen/player.html: $(PLAYER_SRC) $(UPLOT_FILES) $(TUS_FILES) scripts/web-bundle.sh
	@mkdir -p $(dir $@)
	./scripts/web-bundle.sh web/player $(UPLOT) $(TUS) > $@.tmp
	mv $@.tmp $@

$(BUILD)/gen/web_player.c: $(BUILD)/gen/player.html web/player/sw.js scripts/embed.sh
	@mkdir -p $(dir $@)
	{ ./scripts/embed.sh $(BUILD)/gen/player.html web_player_html && \
	  ./scripts/embed.sh web/player/sw.js web_player_sw_js; } > $@.tmp
	mv $@.tmp $@

$(BUILD)/gen/web_player.o: $(BUILD)/gen/web_player.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(LIB_OBJ:.o=.d) $(BUILD)/src/chorus.d

asan:
	$(MAKE) VARIANT=asan CC=$(CC)

fuzz:
	$(MAKE) VARIANT=fuzz CC=clang fuzz-bins

fuzz-bins: $(FUZZ_BIN)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libchorus.a
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libchorus.a $(LDLIBS)

deps:
	./scripts/deps.sh test

test: deps
	./tests/run.sh

run:
	./scripts/demo.sh

bench: deps
	./bench/run.sh

format:
	clang-format -i $(wildcard src/*.c src/*/*.[ch] tests/*/*.[ch])

clean:
	rm -rf build

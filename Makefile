# Thin wrapper over meson.  `make run` and `make test` are the two commands
# from the README; both install missing Debian packages first.
BUILD ?= build

.PHONY: all build deps run test valgrind clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD)
	@meson compile -C $(BUILD)

run: build
	@sh scripts/run.sh

test:
	@sh scripts/test.sh

valgrind: build
	@sh scripts/valgrind.sh

clean:
	rm -rf build build-asan build-fuzz build-fuzz-http *.compile.log

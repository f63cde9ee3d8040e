# Thin front door over CMake. `make demo` and `make test` are the README's two commands.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release
CTEST_FLAGS ?=
STRESS_RUNS ?= 20

.PHONY: setup configure build demo test bench clean asan sanitize tsan stress format format-check

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD)

# Every doctest case is a CTest test; skipped cases are listed with their reasons after the run.
test: build
	@rc=0; ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) $(CTEST_FLAGS) || rc=$$?; \
	  bash scripts/ctest-skips.sh $(BUILD); exit $$rc

bench: build
	@test -f $(BUILD)/models/llama-3.2-1b/model.safetensors || $(BUILD)/bin/troupe make-model --preset llama-3.2-1b --out $(BUILD)/models/llama-3.2-1b
	@$(BUILD)/bin/troupe bench model --model $(BUILD)/models/llama-3.2-1b

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (Debug); any report fails.
sanitize:
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
	 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	 $(MAKE) --no-print-directory test BUILD=build-sanitize \
	   CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DTROUPE_SANITIZE=address,undefined"

asan: sanitize

# The whole suite under ThreadSanitizer. TSan needs the kernel's high-entropy ASLR off for the run
# (setarch -R) and UCX's memory hooks off (they intercept madvise under TSan's own interceptors and
# crash); the suppressions name third-party code only (scripts/tsan.supp).
tsan:
	@$(MAKE) --no-print-directory build BUILD=build-tsan \
	   CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_SANITIZE=thread -DTROUPE_CUDA=OFF"
	@rc=0; TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/scripts/tsan.supp" \
	  UCX_MEM_MMAP_HOOK_MODE=none UCX_MEM_MALLOC_HOOKS=no \
	  setarch "$$(uname -m)" -R ctest --test-dir build-tsan --output-on-failure -j $(JOBS) $(CTEST_FLAGS) || rc=$$?; \
	  bash scripts/ctest-skips.sh build-tsan; exit $$rc

# The multi-process suites (actors, comm, cli) STRESS_RUNS times under CPU contention and under
# ASan; prints a flake table (scripts/stress.sh).
stress:
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory build BUILD=build-sanitize \
	   CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DTROUPE_SANITIZE=address,undefined"
	@bash scripts/stress.sh $(STRESS_RUNS) $(BUILD) build-sanitize

FORMAT_FILES = git ls-files '*.cpp' '*.hpp' '*.h' '*.cu' '*.cuh'
format:
	@$(FORMAT_FILES) | xargs clang-format -i

format-check:
	@$(FORMAT_FILES) | xargs clang-format --dry-run --Werror && echo "format-check: every file follows .clang-format"

clean:
	rm -rf $(BUILD) build-sanitize build-tsan

# Thin front door over CMake. `make demo` and `make test` are the README's two commands.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: setup configure build demo test bench clean asan

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	@test -f $(BUILD)/models/llama-3.2-1b/model.safetensors || $(BUILD)/bin/troupe make-model --preset llama-3.2-1b --out $(BUILD)/models/llama-3.2-1b
	@$(BUILD)/bin/troupe bench model --model $(BUILD)/models/llama-3.2-1b

asan:
	@$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DTROUPE_SANITIZE=address"

clean:
	rm -rf $(BUILD)

# Thin wrapper: `make run` and `make test` set up a fresh Debian machine,
# build, and run. The real build is CMake (CMakeLists.txt).
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
WERROR ?= $(if $(CI),ON,OFF)

.PHONY: all deps build build-asan run test test-fidelity clean bench bench-big fuzz

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DFLEETSIM_WERROR=$(WERROR) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFLEETSIM_SANITIZE=ON -DFLEETSIM_WERROR=$(WERROR) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	$(BUILD)/fleetsim run scenarios/bank-peak.yaml --out results/bank-peak

test: build build-asan
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE fidelity
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -L fast

# realbench's closed loop against fleetsim's prediction: run it on a quiet
# machine (it times a real serving loop on the CPUs).
test-fidelity: build
	cd $(BUILD) && ctest --output-on-failure -L fidelity

bench: build
	bench/run.sh

# the million-QPS minute, the 100k-QPS hour and start-up at 10,000 hosts
# (bench/scenarios/big/): long; SCALE=0.05 runs 5% of each duration
bench-big: build
	bench/big.sh

# Coverage-guided fuzzing of every reader of user input (tests/fuzz/): builds
# the libFuzzer harnesses with clang, ASan and UBSan in $(FUZZ_BUILD), then
# runs each for FUZZ_S seconds, one at a time (FUZZ=scenario nginx ... for
# some only). Findings land in $(FUZZ_BUILD)/fuzz-artifacts/.
FUZZ_BUILD ?= build-fuzz
FUZZ_S ?= 60
FUZZ ?=
fuzz:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DFLEETSIM_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_harnesses
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_S) $(FUZZ)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) results

# The bank case study, before vs after, with the reported figures beside
# fleetsim's: writes docs/bank-case.md and results/bank-case/compare.html.
.PHONY: bank-report
bank-report: build
	scripts/bank-report.sh $(BUILD)/fleetsim

# The DeepSeek-V3 case study (published day beside fleetsim's, the peak and
# its remedies): writes docs/deepseek-case.md, runs in results/deepseek-case/.
.PHONY: deepseek-report
deepseek-report: build
	scripts/deepseek-case.sh $(BUILD)/fleetsim

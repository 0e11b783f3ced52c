# Lucid — build, test, demo and benchmarks. Everything builds in release mode: numeric Swift is
# 10–100× slower in debug builds.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG = -c release
APT_PACKAGES = libopenblas-dev libfftw3-dev libtiff-dev libpng-dev zlib1g-dev libzstd-dev libblosc-dev pkg-config util-linux libopenmpi-dev openmpi-bin
LUCID = .build/release/lucid

.PHONY: deps build test test-faults test-asan test-tsan fuzz fuzz-seeds demo demo-labelfree demo-diffusion bench bench-reference clean

## Install the Debian packages Lucid links against, when missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build $(CONFIG)

## The whole test suite (XCTest), in release mode, then the fault tests of the binary.
test: deps
	$(SWIFT) build $(CONFIG) --build-tests -Xswiftc -enable-testing
	$(SWIFT) test $(CONFIG) -Xswiftc -enable-testing --skip-build --disable-swift-testing
	bash scripts/fault_tests.sh

## SIGKILL during checkpointing (20 times), two runs on one folder, a damaged weights file and a
## full disk (a tmpfs in a private mount namespace), against the built binary (about 20 s).
test-faults: build
	bash scripts/fault_tests.sh

## The suite under AddressSanitizer (own build folder). LUCID_STORAGE_CACHE=0 frees tensor
## storage at once instead of keeping it for reuse, so use-after-free is seen.
ASAN = --sanitize=address --scratch-path .build-asan
test-asan: deps
	$(SWIFT) build $(CONFIG) --build-tests -Xswiftc -enable-testing $(ASAN)
	LUCID_STORAGE_CACHE=0 ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no \
	  $(SWIFT) test $(CONFIG) -Xswiftc -enable-testing --skip-build --disable-swift-testing $(ASAN)

## The suite under ThreadSanitizer (own build folder), every parallel loop split over 4 workers
## (LUCID_THREADS) so that the threaded kernels, readers and renderers really overlap.
TSAN = --sanitize=thread --scratch-path .build-tsan
test-tsan: deps
	$(SWIFT) build $(CONFIG) --build-tests -Xswiftc -enable-testing $(TSAN)
	LUCID_THREADS=4 TSAN_OPTIONS=halt_on_error=1 SWIFT_BACKTRACE=enable=no \
	  $(SWIFT) test $(CONFIG) -Xswiftc -enable-testing --skip-build --disable-swift-testing $(TSAN)

## Coverage-guided fuzzing (libFuzzer + AddressSanitizer) of the parsers of untrusted input:
## each harness of Fuzz/ for FUZZ_SECONDS, one after another, from the seeds in Fuzz/seeds/
## into Fuzz/corpus/ (not in git); an input that crashes is kept in Fuzz/crashes/.
FUZZ_SECONDS ?= 60
FUZZERS = tiff safetensors recipe manifest checkpoint
FUZZ_BUILD = cd Fuzz && $(SWIFT) build $(CONFIG) --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer \
	-Xcc -fsanitize=fuzzer-no-link
fuzz: deps
	$(FUZZ_BUILD)
	@mkdir -p Fuzz/crashes
	@for f in $(FUZZERS); do mkdir -p Fuzz/corpus/$$f; echo "== fuzz-$$f, $(FUZZ_SECONDS) s"; \
	  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 Fuzz/.build/release/fuzz-$$f Fuzz/corpus/$$f Fuzz/seeds/$$f \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
	    -artifact_prefix=Fuzz/crashes/$$f- 2>&1 | grep -E "^Done|DONE|stat::(number|average)|ERROR|Fatal|SUMMARY|Test unit" ; \
	  status=$${PIPESTATUS[0]}; echo "corpus: $$(ls Fuzz/corpus/$$f | wc -l) inputs, $$(du -sk Fuzz/corpus/$$f | cut -f1) KiB"; \
	  [ $$status = 0 ] || exit 1; done

## Rewrites the seed corpora (needs python3 with numpy, tifffile, safetensors).
fuzz-seeds: deps
	$(FUZZ_BUILD)
	python3 Fuzz/make_seeds.py

## Train a Noise2Self denoiser on the built-in synthetic dataset and restore it.
demo: build
	$(LUCID) demo

## Train label-free prediction (brightfield → nuclei fluorescence) on synthetic pairs and
## score it on held-out ones.
demo-labelfree: build
	$(LUCID) demo labelfree

## Train a conditional diffusion model on simulated blurred, noisy pairs and sample a held-out
## acquisition: posterior mean and per-pixel standard deviation.
demo-diffusion: build
	$(LUCID) demo diffusion

## Benchmarks as JSON lines (see README for the PyTorch comparison).
bench: build
	$(LUCID) bench

## Lucid, OpenBLAS's sgemm harness, PyTorch, SciPy/scikit-image and whole `lucid deconvolve`
## processes (cold and warm wisdom) in one run; prints the ratio table (needs torch,
## scikit-image, tifffile, gcc). `python3 scripts/compare_bench.py --from FILE` reprints a run.
bench-reference: build
	python3 scripts/compare_bench.py

clean:
	rm -rf .build .build-asan .build-tsan Fuzz/.build

# Lucid — build, test, demo and benchmarks. Everything builds in release mode: numeric Swift is
# 10–100× slower in debug builds.
SWIFT ?= swift
CONFIG = -c release
APT_PACKAGES = libopenblas-dev libfftw3-dev libtiff-dev libpng-dev zlib1g-dev libzstd-dev libblosc-dev pkg-config libopenmpi-dev openmpi-bin
LUCID = .build/release/lucid

.PHONY: deps build test demo demo-labelfree bench bench-reference clean

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

## The whole test suite (XCTest), in release mode.
test: deps
	$(SWIFT) build $(CONFIG) --build-tests -Xswiftc -enable-testing
	$(SWIFT) test $(CONFIG) -Xswiftc -enable-testing --skip-build --disable-swift-testing

## Train a Noise2Self denoiser on the built-in synthetic dataset and restore it.
demo: build
	$(LUCID) demo

## Train label-free prediction (brightfield → nuclei fluorescence) on synthetic pairs and
## score it on held-out ones.
demo-labelfree: build
	$(LUCID) demo labelfree

## Benchmarks as JSON lines (see README for the PyTorch comparison).
bench: build
	$(LUCID) bench

## Lucid, OpenBLAS's sgemm harness, PyTorch, SciPy/scikit-image and whole `lucid deconvolve`
## processes (cold and warm wisdom) in one run; prints the ratio table (needs torch,
## scikit-image, tifffile, gcc). `python3 scripts/compare_bench.py --from FILE` reprints a run.
bench-reference: build
	python3 scripts/compare_bench.py

clean:
	rm -rf .build

# Darkroom. `make run` starts the app on its embedded defaults; `make test` runs every test.
# Both install what they need (wasm target, cargo-leptos, wasm-bindgen, Chromium, npm packages)
# when it is missing.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export LEPTOS_OUTPUT_NAME := darkroom
export CARGO_TARGET_DIR ?= $(CURDIR)/target
TOOLS := .ci/tools.sh
# The same packages and features in every test run, so cargo never rebuilds between them (the
# unit tests run again each time; they take a second).
TEST_PACKAGES := -p darkroom -p app --features app/ssr,darkroom/fake-fal

.PHONY: run release test test-sqlite test-postgres test-garage test-replicas test-e2e test-network site

## Build and run the app on http://127.0.0.1:3000 (SQLite and objects under ./data).
run: site
	"$(CARGO_TARGET_DIR)/debug/darkroom" serve

## An optimised build for production: target/release/darkroom plus target/site.
release:
	$(TOOLS) rust-wasm cargo-leptos wasm-bindgen wasm-opt
	cargo leptos build --release --precompress

## Every test: unit and integration on SQLite with the embedded S3 endpoint, integration on
## PostgreSQL, integration on SQLite with Garage as storage, two replicas behind nginx on
## PostgreSQL and Garage, browser tests, and the browser test across a real network (namespaces;
## skipped, saying so, without root).
test: test-sqlite test-postgres test-garage test-replicas test-e2e test-network

test-sqlite:
	@echo "==> unit tests and the integration suite on SQLite (with the API fuzzer)"
	$(TOOLS) ffmpeg
	fuzz="$$($(TOOLS) api-fuzz)" && DARKROOM_TEST_API_FUZZ="$$fuzz" cargo test $(TEST_PACKAGES) -- --skip replicas::

test-postgres:
	@echo "==> the integration suite on PostgreSQL (with the API fuzzer)"
	$(TOOLS) ffmpeg
	fuzz="$$($(TOOLS) api-fuzz)" && pg="$$($(TOOLS) postgres)" && DARKROOM_TEST_API_FUZZ="$$fuzz" DARKROOM_TEST_PG_URL="$$pg" \
	  DARKROOM_TEST_DB=postgres cargo test $(TEST_PACKAGES) -- --skip replicas::

test-garage:
	@echo "==> the integration suite with Garage as storage"
	$(TOOLS) ffmpeg
	eval "$$($(TOOLS) garage)" && DARKROOM_TEST_STORAGE=garage cargo test $(TEST_PACKAGES) -- --skip replicas::

## The replicas test alone: it needs PostgreSQL, Garage and nginx together.
test-replicas:
	@echo "==> two replicas behind nginx, on PostgreSQL and Garage"
	$(TOOLS) network
	eval "$$($(TOOLS) garage)" && DARKROOM_TEST_PG_URL="$$($(TOOLS) postgres)" DARKROOM_TEST_DB=postgres \
	  DARKROOM_TEST_STORAGE=garage cargo test $(TEST_PACKAGES) --test api -- replicas::

## The wasm, CSS and static files under target/site, and the server binary.
site:
	$(TOOLS) rust-wasm cargo-leptos wasm-bindgen ffmpeg
	cargo leptos build --frontend-only
	cargo build -p darkroom --features fake-fal

test-e2e: site
	@echo "==> browser tests in Chromium"
	$(TOOLS) chromium node-deps
	cd end2end && npx playwright test

## Three hosts in network namespaces (proxy + Darkroom, the fake fal, Chromium), TLS between them.
test-network: site
	@echo "==> across a network: Darkroom behind nginx, the fake fal and Chromium on hosts of their own"
	$(TOOLS) chromium node-deps network
	end2end/network/run.sh

# flightdeck — the Makefile is the interface: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c

BIN      := $(CURDIR)/bin
MODULE   := github.com/flightdeck/flightdeck
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X $(MODULE)/internal/version.Version=$(VERSION)
GO       ?= go

# Tools, pinned by version and installed into ./bin.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(BIN)/staticcheck-$(STATICCHECK_VERSION)

# Test flags: every suite with the race detector; suites start their own PostgreSQL.
TEST_FLAGS ?= -race -count=1 -timeout 30m

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "usage: make <target>\n\ntargets:\n"} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/flightdeck
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/flightdeck ./cmd/flightdeck

.PHONY: run
run: build ## Start a local PostgreSQL, the Fly simulator, the controller and the dashboard (Ctrl-C stops all)
	FLIGHTDECK_BIN=$(BIN)/flightdeck hack/run.sh

.PHONY: test
test: prereqs lint ## Install prerequisites if missing, lint, then run every suite with -race
	$(GO) test $(TEST_FLAGS) ./...

.PHONY: prereqs
prereqs: ## Install what the tests need (PostgreSQL, Chromium) when missing
	hack/install-prereqs.sh

.PHONY: lint
lint: fmt-check vet staticcheck ## gofmt check + go vet + staticcheck

.PHONY: fmt
fmt: ## Format every Go file
	gofmt -w $$(git ls-files -co --exclude-standard '*.go')

.PHONY: fmt-check
fmt-check:
	@files=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$files" ]; then echo "gofmt would change:"; echo "$$files"; exit 1; fi

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...

.PHONY: staticcheck
staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

$(STATICCHECK):
	mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(BIN)/staticcheck $(STATICCHECK)

# Extra flags of the benchmark program, e.g. BENCH_FLAGS="-n 1000 -keep" (go run ./hack/bench -h lists them).
BENCH_FLAGS ?=

.PHONY: bench
bench: build ## Measure detection latency, CPU, memory and writes at N=1,000 and 10,000 (see docs/benchmarks.md)
	$(GO) run ./hack/bench -flightdeck $(BIN)/flightdeck $(BENCH_FLAGS)

.PHONY: clean
clean: ## Remove build output
	rm -rf $(BIN)

# Skiff's build and test entry points. `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

# The official tarball's location is not always on PATH (CI runs with a plain
# environment). Appended, so a go already on PATH wins.
export PATH := $(PATH):/usr/local/go/bin
# A local Go older than go.mod's fetches the right toolchain from the Go module
# proxy; an explicit GOTOOLCHAIN in the environment still wins.
export GOTOOLCHAIN ?= auto

# An absolute path when go is only in /usr/local/go/bin: $(shell) below runs
# with make's starting PATH, not the one exported above.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN ?= bin/skiff
MODULE := github.com/skiff-sh/skiff

# The embedded kubectl and the API server report the Kubernetes release whose
# libraries they are built from: k8s.io/component-base v0.37.2 is Kubernetes
# v1.37.2. Derived from go.mod so a dependency bump cannot leave it stale.
# Recursive (=) variables: evaluated only when a recipe needs them, after
# hack/setup.sh has made sure go and git exist.
KUBE_LIB_VERSION = $(shell $(GO) list -m -f '{{.Version}}' k8s.io/component-base)
KUBE_VERSION ?= $(patsubst v0.%,v1.%,$(KUBE_LIB_VERSION))
KUBE_MAJOR = $(word 1,$(subst ., ,$(patsubst v%,%,$(KUBE_VERSION))))
KUBE_MINOR = $(word 2,$(subst ., ,$(patsubst v%,%,$(KUBE_VERSION))))

GIT_COMMIT = $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
GIT_TREE_STATE = $(shell if [ -z "$$(git status --porcelain 2>/dev/null)" ]; then echo clean; else echo dirty; fi)
SKIFF_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BUILD_DATE = $(shell date -u +%Y-%m-%dT%H:%M:%SZ)

# Both version packages are stamped, as upstream's build does: component-base
# feeds `kubectl version` and /version, client-go's the User-Agent.
LDFLAGS = $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(pkg).gitVersion=$(KUBE_VERSION) \
	-X $(pkg).gitMajor=$(KUBE_MAJOR) \
	-X $(pkg).gitMinor=$(KUBE_MINOR) \
	-X $(pkg).gitCommit=$(GIT_COMMIT) \
	-X $(pkg).gitTreeState=$(GIT_TREE_STATE) \
	-X $(pkg).buildDate=$(BUILD_DATE)) \
	-X $(MODULE)/internal/version.skiffVersion=$(SKIFF_VERSION)

# Extra flags for `make run`, e.g. make run SERVER_FLAGS='--secure-port 7443'.
SERVER_FLAGS ?=
# Extra flags for every `go test`, e.g. GOTESTFLAGS='-run TestSmoke -v'.
GOTESTFLAGS ?=

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.PHONY: setup
setup: ## install missing build and test dependencies (Debian; idempotent)
	@bash hack/setup.sh

.PHONY: build
build: ## build bin/skiff
	@test -n "$(KUBE_VERSION)" || { echo "cannot derive the Kubernetes version from go.mod (is go installed? try make setup)" >&2; exit 1; }
	@mkdir -p $(dir $(BIN))
	$(GO) build -o $(BIN) -ldflags '$(strip $(LDFLAGS))' ./cmd/skiff

.PHONY: run
run: setup build ## run a control plane in the foreground with default flags
	@echo "Starting skiff server (Ctrl-C stops it). In another terminal, once it is ready:"
	@echo "  $(BIN) kubectl get nodes"
	@echo "or, with any kubectl:"
	@echo "  export KUBECONFIG=/etc/skiff/skiff.yaml"
	@echo "  kubectl get nodes"
	@echo
	exec $(BIN) server $(SERVER_FLAGS)

.PHONY: test
test: setup ## all three tiers; fails if any fails (each still runs)
	@failed=""; \
	$(MAKE) --no-print-directory test-unit || failed="$$failed unit"; \
	$(MAKE) --no-print-directory test-integration || failed="$$failed integration"; \
	$(MAKE) --no-print-directory test-e2e || failed="$$failed e2e"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED tiers:$$failed" >&2; exit 1; fi; \
	echo "make test: all tiers passed"

.PHONY: test-unit
test-unit: ## vet, gofmt, and unit tests (no root, no network)
	$(GO) vet -tags integration,e2e ./...
	@unformatted=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -print0 | xargs -0 -r "$$($(GO) env GOROOT)/bin/gofmt" -l); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) test $(GOTESTFLAGS) ./...

.PHONY: test-integration
test-integration: ## in-process API server on embedded etcd
	$(GO) test -tags integration -count=1 $(GOTESTFLAGS) ./...

.PHONY: test-e2e
test-e2e: build ## the built binary and real kubectl; needs root
	SKIFF_BINARY=$(abspath $(BIN)) $(GO) test -tags e2e -count=1 -timeout 15m $(GOTESTFLAGS) ./test/e2e/...

.PHONY: bench
bench: ## benchmarks under bench/ (see docs/performance.md)
	@if [ -z "$$(find bench -name '*_test.go' 2>/dev/null)" ]; then \
		echo "no benchmarks under bench/ yet"; \
	else \
		$(GO) test -run '^$$' -bench . $(GOTESTFLAGS) ./bench/...; \
	fi

.PHONY: clean
clean: ## remove build and coverage outputs
	rm -rf bin/ coverage.out coverage.html *.coverprofile

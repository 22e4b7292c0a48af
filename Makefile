# walhook — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
SQLC_VERSION := v1.31.1
GOLANGCI_VERSION := v2.15.0
OAPI_CODEGEN_VERSION := v2.8.2
SQLC := $(GOBIN)/sqlc
GOLANGCI := $(GOBIN)/golangci-lint
OAPI_CODEGEN := $(GOBIN)/oapi-codegen
# The Go client of the /v1 API, generated from the OpenAPI document (client/oapi-codegen.yaml).
CLIENT_GEN := client/client.gen.go
CLIENT_GEN_CONFIG := -config client/oapi-codegen.yaml
OPENAPI := admin/openapi.yaml
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: dev
dev: ## run walhook on a private local PostgreSQL with demo data (./.walhook)
	$(GO) run ./cmd/walhook dev

.PHONY: dev-hostapp
dev-hostapp: ## walhook dev for the worked example: its catalog, its page framed by http://127.0.0.1:8090
	$(GO) run ./cmd/walhook dev --catalog examples/hostapp/catalog.yaml --frame-ancestors http://127.0.0.1:8090

.PHONY: hostapp
hostapp: ## the worked example host application (examples/hostapp) on http://127.0.0.1:8090, against walhook dev
	$(GO) run ./examples/hostapp

.PHONY: build
build: ## build bin/walhook
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/walhook ./cmd/walhook

# The browser tests (admin/uitest) drive Debian's Chromium at this path; without it they skip, or
# fail when CI=true. `make test` says so before and after the run, so a skip is never silent.
CHROMIUM := /usr/bin/chromium
BROWSER_NOTE = if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$CI" = true ]; then echo "make test: no Chromium at $(CHROMIUM): the browser tests (admin/uitest) FAIL (CI=true). Run 'make browser-deps' to install it."; \
	  else echo "make test: no Chromium at $(CHROMIUM): the browser tests (admin/uitest) are SKIPPED. Run 'make browser-deps' to install it."; fi; fi

.PHONY: test
test: ## run every test with the race detector (starts private PostgreSQL clusters), then the capture tests with two databases
	@$(BROWSER_NOTE)
	@status=0; $(GO) test -race -count=1 -timeout 15m ./... || status=$$?; \
	  $(MAKE) --no-print-directory test-two || status=$$?; $(BROWSER_NOTE); exit $$status

# The tests that capture, again with the application's database apart from walhook's
# (xtest.Source returns a database of its own): what --source-database-url changes. Short: the
# other packages do not read the application's database. The chaos tests that capture or reach
# the application's database run too (reduced sizes); `make chaos` runs the whole suite so.
CHAOS_TWO := TestKillNineDuringStream|TestPostgresRestartMidStream|TestLeaderKilledStandbyTakesOver|TestSlotLostThenRecreated|TestUnreachableAtStart|TestTenantIsolationEndToEnd
.PHONY: test-two
test-two: ## the capture tests, and the chaos tests that capture, with walhook's database apart from the application's (WALHOOK_TEST_TWO_DATABASES=1)
	WALHOOK_TEST_TWO_DATABASES=1 $(GO) test -race -count=1 -timeout 10m ./relay/capture/ ./relay/catalog/
	WALHOOK_TEST_TWO_DATABASES=1 $(GO) test -race -count=1 -timeout 10m -run 'TestSlot|TestMigrate|TestRelay' ./cmd/walhook/
	WALHOOK_TEST_TWO_DATABASES=1 $(GO) test -race -count=1 -timeout 10m -run '^($(CHAOS_TWO))$$' ./internal/chaos/

.PHONY: browser-deps
browser-deps: ## install Chromium (Debian's chromium package) for the web page's browser tests
	@if [ -x $(CHROMIUM) ]; then echo "Chromium is installed at $(CHROMIUM)"; else \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; \
	  test -x $(CHROMIUM) || { echo "browser-deps: the chromium package did not install $(CHROMIUM)"; exit 1; }; fi

# The suite twice, one mode after the other: one database, then walhook's database apart from the
# application's (WALHOOK_TEST_TWO_DATABASES=1). Each FIGURE line names its mode; both passes run
# even when the first fails.
.PHONY: chaos
chaos: ## full-size fault tests in both modes (one database, two): 10 kill -9 during 20,000 events, PostgreSQL restarts, leader kill, cells, hostile receivers
	@set -o pipefail; status=0; for two in 0 1; do \
	  if [ $$two = 1 ]; then echo "== make chaos: two databases"; else echo "== make chaos: one database"; fi; \
	  WALHOOK_CHAOS_FULL=1 WALHOOK_TEST_TWO_DATABASES=$$two $(GO) test -count=1 -timeout 20m -v ./internal/chaos/ \
	    | grep -E '^(=== RUN|--- |FIGURE|PASS|FAIL|ok)' || status=1; done; exit $$status

# Every fuzz target, FUZZTIME each (Go runs one -fuzz target per package per invocation).
FUZZTIME ?= 10s
# Every FuzzXxx in the tests, as package:function (found in the source, so a new target runs too).
FUZZ_TARGETS := $(shell grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz.*)|\1:\2|' | sort)

.PHONY: fuzz
# A target fails when the fuzzer found an input (it writes it to testdata/fuzz/<target>/). Go 1.26's
# fuzz coordinator can also fail a target with a bare "context deadline exceeded" at the end of
# -fuzztime, finding nothing (golang/go#75804, fixed in Go 1.27): such a run is tried again once,
# and only a written reproducer (or the failure twice) fails the target.
fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; dir=$$pkg/testdata/fuzz/$$fn; \
	  echo "fuzz $$pkg $$fn"; before=$$(ls $$dir 2>/dev/null | wc -l); \
	  if ! $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; then \
	    if [ "$$(ls $$dir 2>/dev/null | wc -l)" -gt "$$before" ]; then echo "fuzz $$fn: found a failing input in $$dir"; exit 1; fi; \
	    echo "fuzz $$fn: failed without a failing input (golang/go#75804); once more"; \
	    $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; fi; done

.PHONY: tools
tools: $(SQLC) $(GOLANGCI) $(OAPI_CODEGEN) ## install the pinned sqlc, golangci-lint and oapi-codegen

$(SQLC):
	$(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)

$(GOLANGCI):
	$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

$(OAPI_CODEGEN):
	$(GO) install github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@$(OAPI_CODEGEN_VERSION)

.PHONY: generate
generate: $(SQLC) $(OAPI_CODEGEN) ## regenerate the sqlc query code and the Go API client
	$(SQLC) generate
	$(OAPI_CODEGEN) $(CLIENT_GEN_CONFIG) -o $(CLIENT_GEN) $(OPENAPI)

.PHONY: verify
verify: $(SQLC) $(OAPI_CODEGEN) ## generated code, go.mod and formatting are up to date
	$(SQLC) diff
	$(SQLC) vet
	@gen=$$(mktemp --suffix=.go); trap 'rm -f $$gen' EXIT; \
	$(OAPI_CODEGEN) $(CLIENT_GEN_CONFIG) -o $$gen $(OPENAPI) && \
	if ! diff -u $(CLIENT_GEN) $$gen; then \
	  echo "$(CLIENT_GEN) is stale: run make generate (admin/openapi.yaml changed, or another oapi-codegen than $(OAPI_CODEGEN_VERSION))"; exit 1; fi
	@cp go.mod /tmp/walhook-go.mod.bak; cp go.sum /tmp/walhook-go.sum.bak; \
	$(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then \
	  echo "go mod tidy changes go.mod/go.sum:"; git --no-pager diff -- go.mod go.sum; \
	  cp /tmp/walhook-go.mod.bak go.mod; cp /tmp/walhook-go.sum.bak go.sum; exit 1; fi
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: lint
lint: $(GOLANGCI) ## run golangci-lint (config: .golangci.yaml)
	$(GOLANGCI) run ./...

.PHONY: check-deploy
check-deploy: ## check the Prometheus alert rules and their unit tests with promtool
	promtool check rules deploy/prometheus/alerts.yaml
	promtool test rules deploy/prometheus/alerts_test.yaml

.PHONY: fmt
fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

.PHONY: bench
bench: ## run the benchmark (every scenario, several minutes; results in bench-results/)
	$(GO) run ./cmd/walhook bench

.PHONY: bench-history
bench-history: ## measure history at scale, weekly partitions (0029) against the layout before them (ROWS deliveries, default 1000000)
	nice -n 19 $(GO) run ./cmd/walhook bench history --deliveries $(or $(ROWS),1000000) $(BENCH_HISTORY_FLAGS)

.PHONY: bench-quick
bench-quick: ## run every benchmark scenario small (about a minute)
	$(GO) run ./cmd/walhook bench --quick

.PHONY: bench-two
bench-two: ## run every benchmark scenario with walhook's own database in a second cluster (issue 17)
	$(GO) run ./cmd/walhook bench --two-databases

.PHONY: bench-impact
bench-impact: ## application impact at full size in both deployments, their runs alternated (a few minutes)
	$(GO) run ./cmd/walhook bench --modes both --only application-impact

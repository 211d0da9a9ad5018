# AI Telemetry collector. `make help` lists the targets.
#
# Tool versions are pinned in the tools modules under internal/tools/ (go.mod and
# go.sum), library versions in go.mod, and the distribution's modules in
# builder-config.yaml; internal/buildconfig's test checks that they agree.

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
GO           ?= go
TOOLS_BIN    := .tools/bin
BUILDER      := $(TOOLS_BIN)/builder
MDATAGEN     := $(TOOLS_BIN)/mdatagen
GOLANGCI     := $(TOOLS_BIN)/golangci-lint
KUSTOMIZE    := $(TOOLS_BIN)/kustomize
JAEGER       := $(TOOLS_BIN)/jaeger
DIST         := _build/otelcol-ai-telemetry
COMPONENTS   := $(dir $(wildcard */*/metadata.yaml))
GO_SOURCES   := $(shell find . -name '*.go' -not -path './_build/*' -not -path './.tools/*') go.mod go.sum

# Example values for the variables the shipped configs require, used only to
# validate them; none of them is a secret.
VALIDATE_ENV := CLUSTER_NAME=nerc-ocp-prod GATEWAY_OTLP_ENDPOINT=otel-gateway.example.org:4317 \
	KEYCLOAK_URL=https://keycloak.example.org \
	KEYCLOAK_CLIENT_ID=nerc-ocp-prod-agent KEYCLOAK_CLIENT_SECRET=placeholder \
	PROM_PROXY_URL=https://prom-keycloak-proxy.example.org PROM_PROXY_CLIENT_SECRET=placeholder TEMPO_ENDPOINT=tempo-distributor.example.org:4317 \
	CLICKHOUSE_ENDPOINT=tcp://clickhouse.example.org:9440?secure=true CLICKHOUSE_PASSWORD=placeholder \
	CLICKHOUSE_SITE_PASSWORD=placeholder SITE_PUBLIC_URL=https://site.example.org SITE_LOGIN_CLIENT_SECRET=placeholder \
	STORAGE_DIR=$(CURDIR)/_build/validate/storage SERVICE_ACCOUNT_TOKEN_FILE=$(CURDIR)/_build/validate/token

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BUILDER): internal/tools/builder/go.mod internal/tools/builder/go.sum
	$(GO) -C internal/tools/builder build -o $(CURDIR)/$(BUILDER) go.opentelemetry.io/collector/cmd/builder

$(MDATAGEN): internal/tools/mdatagen/go.mod internal/tools/mdatagen/go.sum
	$(GO) -C internal/tools/mdatagen build -o $(CURDIR)/$(MDATAGEN) go.opentelemetry.io/collector/cmd/mdatagen

$(GOLANGCI): internal/tools/golangci-lint/go.mod internal/tools/golangci-lint/go.sum
	$(GO) -C internal/tools/golangci-lint build -o $(CURDIR)/$(GOLANGCI) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

$(KUSTOMIZE): internal/tools/kustomize/go.mod internal/tools/kustomize/go.sum
	$(GO) -C internal/tools/kustomize build -o $(CURDIR)/$(KUSTOMIZE) sigs.k8s.io/kustomize/kustomize/v5

# Jaeger v2, the trace store of the e2e test (standing in for Tempo), in its
# own tools module so its dependencies never mix with the collector's.
$(JAEGER): internal/tools/jaeger/go.mod internal/tools/jaeger/go.sum
	$(GO) -C internal/tools/jaeger build -o $(CURDIR)/$(JAEGER) github.com/jaegertracing/jaeger/cmd/jaeger

.PHONY: build
build: $(DIST) ## Build the collector distribution into _build/otelcol-ai-telemetry

$(DIST): $(BUILDER) builder-config.yaml $(GO_SOURCES)
	$(BUILDER) --config builder-config.yaml
	@touch $(DIST)

.PHONY: generate
generate: $(MDATAGEN) ## Regenerate component metadata code (mdatagen) and the vocabulary docs
	$(GO) run ./cmd/gen-vocabulary
	@for d in $(COMPONENTS); do echo "mdatagen $$d"; (cd $$d && $(CURDIR)/$(MDATAGEN) metadata.yaml); done

.PHONY: run
run: deps build ## Build and run the collector locally: the site on http://localhost:8080 with hours of replayed history
	$(GO) build -o _build/dcgm-replay ./cmd/dcgm-replay
	$(GO) build -o _build/otlp-replay ./cmd/otlp-replay
	./scripts/run-local.sh

.PHONY: deps
deps: ## Install the system packages the tests need (Debian: prometheus-alertmanager, prometheus, curl, maven, unzip)
	./scripts/install-deps.sh

.PHONY: test
test: deps ## Everything: unit tests (race), brief fuzzing, integration tests, build, validate configs, smoke test
	$(GO) test -race -timeout 30m ./...
	$(MAKE) rules-test
	$(MAKE) dashboards-test
	$(MAKE) gpustore-test
	$(MAKE) fuzz
	$(MAKE) integration
	$(MAKE) browser-test
	$(MAKE) build
	$(MAKE) validate
	$(MAKE) smoke
	$(MAKE) deploy-test
	$(MAKE) attack
	$(MAKE) e2e

VENV := .tools/venv

# The Python tools of the dashboards test (chDB, pytest), pinned in the
# requirements file; the venv is rebuilt when the file changes.
$(VENV)/.installed: tests/dashboards/requirements.txt
	@python3 -m venv --help >/dev/null 2>&1 || { echo "dashboards-test: python3 -m venv is missing (Debian: python3-venv; make deps)" >&2; exit 1; }
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/dashboards/requirements.txt
	@touch $@

.PHONY: dashboards-test
dashboards-test: $(VENV)/.installed ## Run every Grafana dashboard query in chDB on the exporter's own tables; check GPU-hours
	GO=$(GO) $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/dashboards

.PHONY: gpustore-test
gpustore-test: $(VENV)/.installed ## The ClickHouse backend of internal/gpustore in chDB: its .sql files (pytest), then its Go code over HTTP
	GO=$(GO) $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/gpustore
	CHDB_PYTHON=$(CURDIR)/$(VENV)/bin/python $(GO) test -race -tags integration -count=1 -run 'Real' ./internal/gpustore/clickhouse/

.PHONY: dashboards-fixtures
dashboards-fixtures: ## Re-record the dashboards' fixtures through the real pipeline (after changing schedule.json or a component)
	$(GO) test -count=1 ./internal/dashboardfixture/ -update
	$(GO) test -count=1 ./cmd/gen-row-policies/ -update

RULES := configs/prometheus/gpu-usage-rules.yaml configs/prometheus/gpu-usage-rules.e2e.yaml

.PHONY: rules-test
rules-test: ## Check and unit-test the Prometheus rules (promtool) and the Alertmanager config (amtool)
	@command -v promtool >/dev/null && command -v amtool >/dev/null || \
		{ echo "rules-test: promtool and amtool are needed (Debian: prometheus, prometheus-alertmanager; make deps)" >&2; exit 1; }
	$(GO) test -count=1 ./internal/rulescheck/
	promtool check rules $(RULES)
	promtool test rules configs/prometheus/tests/gpu-usage-rules.test.yaml
	amtool check-config configs/alertmanager/alertmanager.yaml
	@for a in GPUInUse GPUAllocatedIdle; do \
		amtool config routes test --config.file=configs/alertmanager/alertmanager.yaml \
			--verify.receivers=ai-telemetry alertname=$$a namespace=team-a 2>/dev/null >/dev/null \
			|| { echo "rules-test: $$a is not routed to ai-telemetry" >&2; exit 1; }; \
	done
	@echo "rules-test: GPUInUse and GPUAllocatedIdle route to ai-telemetry"

# A count, not a duration: with a duration Go 1.26's fuzz coordinator can fail a target with a bare
# "context deadline exceeded" at the deadline (golang/go#75804, fixed in Go 1.27); it did in CI.
FUZZTIME ?= 30000x

.PHONY: fuzz
fuzz: ## Run each fuzz target briefly (FUZZTIME: executions, default 30000x)
	$(GO) test -run '^$$' -fuzz '^FuzzNotification$$' -fuzztime $(FUZZTIME) ./receiver/alertmanagerreceiver/
	$(GO) test -run '^$$' -fuzz '^FuzzAuthenticate$$' -fuzztime $(FUZZTIME) ./extension/keycloakauth/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeResponse$$' -fuzztime $(FUZZTIME) ./receiver/promqlreceiver/
	$(GO) test -run '^$$' -fuzz '^FuzzQueryParams$$' -fuzztime $(FUZZTIME) ./extension/gpuqueryextension/
	$(GO) test -run '^$$' -fuzz '^FuzzParseResource$$' -fuzztime $(FUZZTIME) ./internal/topology/

.PHONY: keycloak
keycloak: ## Download Keycloak (Maven Central, once, into .tools/keycloak) and find a Java for it
	./scripts/keycloak.sh fetch

.PHONY: integration
integration: deps keycloak ## Integration tests against real peers (Alertmanager, Prometheus, Keycloak)
	KEYCLOAK_HOME="$$(./scripts/keycloak.sh home)" KEYCLOAK_JAVA_HOME="$$(./scripts/keycloak.sh java-home)" \
		$(GO) test -race -tags integration -count=1 -run 'Real' ./receiver/... ./extension/...

# axe-core for the browser tests, pinned by the lockfile (npm ci).
test/browser/node_modules/.installed: test/browser/package.json test/browser/package-lock.json
	npm ci --prefix test/browser --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: browser-test
browser-test: deps keycloak test/browser/node_modules/.installed ## The pages in Debian's chromium (chromedp): console, requests, charts, axe-core, CSP, the login through the real Keycloak; screenshots in _build/browser
	CHROMIUM_BINARY=$$(command -v chromium) AXE_CORE_JS=$(CURDIR)/test/browser/node_modules/axe-core/axe.min.js \
		BROWSER_ARTIFACTS=$(CURDIR)/_build/browser \
		KEYCLOAK_HOME="$$(./scripts/keycloak.sh home)" KEYCLOAK_JAVA_HOME="$$(./scripts/keycloak.sh java-home)" \
		$(GO) test -tags browser -count=1 -run 'Browser' -v ./extension/gpuqueryextension/

.PHONY: validate
validate: $(DIST) ## Check every file in configs/ with the built binary
	@mkdir -p _build/validate && touch _build/validate/token
	@for f in configs/*.yaml; do \
		echo "validate $$f"; \
		gates=; case $$f in configs/site.yaml) gates=--feature-gates=service.AllowNoPipelines;; esac; \
		env $(VALIDATE_ENV) ./$(DIST) validate $$gates --config $$f; \
	done

.PHONY: smoke
smoke: $(DIST) ## Start the built binary on configs/local.yaml and check scraped GPU metrics reach the files
	OTELCOL_BINARY=$(CURDIR)/$(DIST) $(GO) test -tags smoke -count=1 -v ./test/smoke/

.PHONY: e2e
e2e: deps keycloak $(DIST) $(JAEGER) ## The whole chain on loopback: DCGM schedule, Prometheus rules, Alertmanager, Keycloak, collector, Jaeger, with faults
	$(GO) build -o _build/dcgm-replay ./cmd/dcgm-replay
	OTELCOL_BINARY=$(CURDIR)/$(DIST) DCGM_REPLAY_BINARY=$(CURDIR)/_build/dcgm-replay JAEGER_BINARY=$(CURDIR)/$(JAEGER) \
		PROMETHEUS_BINARY=$$(command -v prometheus) ALERTMANAGER_BINARY=$$(command -v prometheus-alertmanager || command -v alertmanager) \
		KEYCLOAK_HOME="$$(./scripts/keycloak.sh home)" KEYCLOAK_JAVA_HOME="$$(./scripts/keycloak.sh java-home)" \
		$(GO) test -tags e2e -count=1 -timeout 15m -v ./test/e2e/

.PHONY: attack
attack: deps keycloak $(DIST) ## Cross-project write attacks on the built collector with the real Keycloak (test/attack)
	OTELCOL_BINARY=$(CURDIR)/$(DIST) \
		KEYCLOAK_HOME="$$(./scripts/keycloak.sh home)" KEYCLOAK_JAVA_HOME="$$(./scripts/keycloak.sh java-home)" \
		$(GO) test -tags attack -count=1 -timeout 10m -v ./test/attack/

# Open-loop load through the built collector with TLS and a real Keycloak; not
# in `make test` (it takes about 3 minutes, most of it Keycloak's start).
LOAD_RATE     ?= 1000
LOAD_DURATION ?= 60s
LOAD_ALERTS   ?= 10
# The collector's CPU profile over the middle half of the run (summarized in docs/load.md); empty: none.
LOAD_CPU_PROFILE ?= $(CURDIR)/_build/load-cpu.pprof

.PHONY: load
load: deps keycloak $(DIST) ## LOAD_RATE webhooks/s (LOAD_ALERTS alerts each) for LOAD_DURATION through the collector with auth; writes docs/load.md
	KEYCLOAK_HOME="$$(./scripts/keycloak.sh home)" KEYCLOAK_JAVA_HOME="$$(./scripts/keycloak.sh java-home)" \
		OTELCOL_BINARY=$(CURDIR)/$(DIST) LOAD_RATE=$(LOAD_RATE) LOAD_DURATION=$(LOAD_DURATION) LOAD_ALERTS=$(LOAD_ALERTS) \
		LOAD_REPORT=$(CURDIR)/docs/load.md LOAD_CPU_PROFILE=$(LOAD_CPU_PROFILE) $(GO) test -tags load -count=1 -v -timeout 30m ./test/load/

.PHONY: site-load
site-load: deps keycloak $(DIST) ## The site's load target: SITE_LOAD_USERS logged-in users over the synthetic 1,000-GPU, 400-day fleet; writes docs/site-load.md
	KEYCLOAK_HOME="$$(./scripts/keycloak.sh home)" KEYCLOAK_JAVA_HOME="$$(./scripts/keycloak.sh java-home)" \
		OTELCOL_BINARY=$(CURDIR)/$(DIST) SITE_LOAD_REPORT=$(CURDIR)/docs/site-load.md \
		$(GO) test -tags load -count=1 -v -timeout 90m ./test/siteload/

# The container image. No engine runs in the test environment: deploy-test
# checks the Containerfile against the build's paths instead of building it.
CONTAINER_ENGINE ?= podman
IMAGE_VERSION    := $(shell awk '/^dist:/{d=1;next} /^[^ ]/{d=0} d && $$1=="version:"{print $$2}' builder-config.yaml)
IMAGE            ?= quay.io/nerc-project/otelcol-ai-telemetry:$(IMAGE_VERSION)

.PHONY: image
image: $(DIST) ## Build the container image IMAGE with CONTAINER_ENGINE (podman or docker) from Containerfile
	$(CONTAINER_ENGINE) build -f Containerfile -t $(IMAGE) .

.PHONY: deploy-build
deploy-build: $(KUSTOMIZE) ## Render every overlay under deploy/overlays into _build/deploy/
	@rm -rf _build/deploy && mkdir -p _build/deploy
	@for k in $$(find deploy/overlays -name kustomization.yaml | sort); do \
		grep -q '^kind: Component' $$k && continue; \
		d=$$(dirname $$k); out=_build/deploy/$$(echo $${d#deploy/overlays/} | tr / -).yaml; \
		echo "kustomize build $$d > $$out"; $(KUSTOMIZE) build $$d > $$out; \
	done

.PHONY: deploy-test
deploy-test: $(KUSTOMIZE) $(DIST) ## Render every overlay and check it: collector configs validate, references agree, no secrets
	@mkdir -p _build/validate && touch _build/validate/token
	env $(VALIDATE_ENV) KUSTOMIZE=$(CURDIR)/$(KUSTOMIZE) OTELCOL_BINARY=$(CURDIR)/$(DIST) \
		$(GO) test -tags deploy -count=1 ./internal/deploycheck/

.PHONY: lint
lint: $(GOLANGCI) ## go vet and golangci-lint (configured in .golangci.yaml)
	$(GO) vet ./...
	$(GOLANGCI) run ./...

.PHONY: bench
bench: $(VENV)/.installed ## Benchmarks side by side with upstream (and the ClickHouse backend in chDB); writes docs/benchmarks.md
	./scripts/bench.sh

.PHONY: clean
clean: ## Remove build output, tools and ./data
	rm -rf _build .tools data

# drill — make targets. `make help` lists them.

GO        ?= go
BIN       := bin
DRILL     := $(BIN)/drill
SCENARIO  ?= scenarios/reviews-failover.yaml
PROVIDER  ?= local
# Tests run with the race detector, one package at a time: several packages start
# whole clusters and run timed drills, and on a small machine two at once would
# judge each other's CPU starvation. pkg/drill runs a dozen whole drills under
# the race detector: more than go test's default 10 minutes.
TESTFLAGS ?= -race -count=1 -p 1 -timeout 45m
PKGS      ?= ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/drill
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(DRILL) ./cmd/drill

.PHONY: tools
tools: ## build the local provider's control plane (etcd, kube-apiserver, istiod) into bin/, cached
	hack/build-tools.sh

.PHONY: docker
docker: ## start a Docker engine where none answers (installs docker.io when missing), for the kind provider
	hack/docker.sh

.PHONY: images
images: ## build the kind images without a registry (node image, kubeadm's images, Istio, MetalLB, Bookinfo), cached
	hack/kind-images.sh

.PHONY: drill
# With PROVIDER=kind and DRILL_KIND_IMAGES=offline, the offline images are built
# first (only what is missing or stale).
drill: build $(if $(filter local,$(PROVIDER)),tools) $(if $(and $(filter kind,$(PROVIDER)),$(filter offline,$(DRILL_KIND_IMAGES))),images) ## run the seed drill (SCENARIO=..., PROVIDER=local|kind|existing, DRILLFLAGS=...)
	$(DRILL) run $(SCENARIO) --provider $(PROVIDER) $(DRILLFLAGS)

.PHONY: test
test: tools ## run every test (needs the tools; builds them the first time)
	$(GO) test $(TESTFLAGS) $(PKGS)
	@# The race detector slows Go code 2-20 times: the latency bounds of whole
	@# drills, and the partition drill, run again in a build without it.
	$(if $(filter ./...,$(PKGS)),$(GO) test -count=1 -run '^(TestSeedDrill|TestDrillThatFails|TestPartitionDrill)$$' ./pkg/drill)

.PHONY: test-short
test-short: ## unit tests only, without the local control plane
	DRILL_SKIP_CONTROL_PLANE=1 $(GO) test -short $(TESTFLAGS) $(PKGS)

.PHONY: validate
validate: build ## validate every scenario in scenarios/ and scenarios/conformance/
	$(DRILL) validate scenarios/*.yaml scenarios/conformance/*.yaml

.PHONY: schema
schema: build ## write the JSON Schemas of the scenario file and report.json to docs/schema/
	$(DRILL) schema > docs/schema/scenario.schema.json
	$(DRILL) schema --report > docs/schema/report.schema.json

.PHONY: lint
lint: ## gofmt, go vet, go.mod tidy, actionlint on the workflows, ajv on the JSON Schemas, the CI example
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }
	hack/actionlint.sh
	hack/schema-check.sh

.PHONY: bench
bench: ## run the Go benchmarks (event bus, stats parser, translator, load, run history)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

.PHONY: bench-load
bench-load: ## drill's load generator against the vegeta CLI, side by side
	hack/bench-load.sh

FUZZTIME ?= 30s
# Each parser of outside input has a fuzz target; -fuzzminimizetime keeps a short
# run from spending its time minimizing.
FUZZ_TARGETS := pkg/scenario:FuzzParse pkg/scenario:FuzzParseAmount pkg/scenario:FuzzSchemaAcceptsWhatDrillAccepts internal/stats:FuzzParse internal/stats:FuzzParseClusters pkg/event:FuzzReadLog \
	pkg/event:FuzzWriteLog pkg/report:FuzzBuild pkg/translate:FuzzTranslate \
	pkg/translate:FuzzParseRemote pkg/load:FuzzWindower pkg/load:FuzzStepsPacer \
	pkg/fault:FuzzShellQuote internal/localcluster:FuzzParseCRDs hack/runc-caps:FuzzFitHost \
	internal/envoyemu:FuzzParseBootstrap internal/envoyemu/cmd/envoy:FuzzParseArgs \
	internal/localcluster:FuzzParseIstiodVersion hack/ci-example:FuzzExpressions
.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$pkg $$fn"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s; \
	done

.PHONY: clean
clean: ## remove bin/drill (keeps the cached tools)
	rm -f $(DRILL)

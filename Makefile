# kvdb — build, test, run.
GO      ?= go
BIN     ?= bin/kvdb
PKGS    ?= ./...

.PHONY: build test vet lint fmt-check robustness bench cluster experiment clean

build: ## build bin/kvdb
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/kvdb

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# staticcheck at the version pinned in scripts/tools.sh (installed on first
# use, cached in GOBIN), on both modules: this one and bench/ (the peer
# clients), and on the node-only build of the image (tag kvdb_node).
lint: ## staticcheck, pinned by scripts/tools.sh, on both modules and both builds
	@sc="$$(scripts/tools.sh staticcheck)" && set -x && \
		"$$sc" $(PKGS) && \
		"$$sc" -tags kvdb_node ./cmd/... ./internal/cli/... && \
		cd bench && "$$sc" ./...

test: fmt-check vet lint ## the whole test suite, with the race detector
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -tags kvdb_node -run NodeBuild ./internal/cli/

# The long randomized linearizability test: ROBUSTNESS_SEEDS seeds per config, ROBUSTNESS_DURATION of traffic per run.
# ROBUSTNESS_HTTP=1 puts node-to-node traffic on loopback sockets (the binary
# stream, HTTP while it is down) instead of the in-memory network.
ROBUSTNESS_SEEDS    ?= 200
ROBUSTNESS_DURATION ?= 2s
ROBUSTNESS_HTTP     ?=
robustness: ## the long robustness test: every config x ROBUSTNESS_SEEDS seeds, faults, porcupine (ROBUSTNESS_HTTP=1: over real sockets)
	$(GO) test -count=1 -timeout 3h -parallel 4 -run TestRobustness ./internal/cluster/ \
		-robustness.seeds=$(ROBUSTNESS_SEEDS) -robustness.duration=$(ROBUSTNESS_DURATION) $(if $(ROBUSTNESS_HTTP),-robustness.http)

bench: ## Go benchmarks of the hot paths
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

cluster: build ## a local 5-node cluster (CONFIG=w5r1|w1r5|w3r3|leaderless, DELAYS=paper|none)
	./$(BIN) cluster --config $(or $(CONFIG),w5r1) --delays $(or $(DELAYS),paper)

experiment: build ## the main job: every config x every write ratio, then the report (ARGS=--quick ...)
	./$(BIN) experiment $(ARGS)

clean:
	rm -rf bin

# --- container image (FROM scratch, static binary) ---
IMAGE      ?= kvdb:latest
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
IMAGE_BIN  ?= bin/kvdb-linux-$(IMAGE_ARCH)
# The image runs nodes only: tag kvdb_node compiles out experiment, report and
# bench (charting, PDF, benchmark: ~10 of the binary's 20 MB; those commands
# then say this build lacks them). `make build` keeps the full binary.
# IMAGE_TAGS= builds the image with the full binary.
IMAGE_TAGS ?= kvdb_node
DOCKER     ?= docker

.PHONY: image image-bin failover-measure

image-bin: ## static linux binary for the container image (+ the empty /data directory it needs)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags='-s -w' -tags '$(IMAGE_TAGS)' -o $(IMAGE_BIN) ./cmd/kvdb
	mkdir -p bin/image-data

image: image-bin ## container image $(IMAGE), FROM scratch (IMAGE=kvdb:latest)
	$(DOCKER) build --build-arg BINARY=$(IMAGE_BIN) -t $(IMAGE) .

# Leader failover measured in containers: FAILOVER_TRIALS `docker kill`s of
# the leader per config under load; reports the write-unavailability window
# (median, max) and the acknowledged writes lost (internal/systemtest,
# TestFailoverMeasure). A config may name a delay profile: w1r5:paper.
FAILOVER_TRIALS  ?= 10
FAILOVER_CONFIGS ?= w3r3,w5r1,w1r5
failover-measure: image ## leader kill x FAILOVER_TRIALS per config (FAILOVER_CONFIGS) in containers: unavailability window, writes lost
	KVDB_DOCKER_TESTS=1 KVDB_TEST_IMAGE=$(IMAGE) KVDB_FAILOVER_TRIALS=$(FAILOVER_TRIALS) KVDB_FAILOVER_CONFIGS=$(FAILOVER_CONFIGS) \
		$(GO) test -count=1 -timeout 60m -v -run TestFailoverMeasure ./internal/systemtest/

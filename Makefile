# kvdb — build, test, run.
GO      ?= go
BIN     ?= bin/kvdb
PKGS    ?= ./...

.PHONY: build test vet fmt-check bench cluster clean

build: ## build bin/kvdb
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/kvdb

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: fmt-check vet ## the whole test suite, with the race detector
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

bench: ## Go benchmarks of the hot paths
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

cluster: build ## a local 5-node cluster (CONFIG=w5r1|w1r5|w3r3|leaderless, DELAYS=paper|none)
	./$(BIN) cluster --config $(or $(CONFIG),w5r1) --delays $(or $(DELAYS),paper)

clean:
	rm -rf bin

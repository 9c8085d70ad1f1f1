# A thin wrapper: the logic lives in hack/. `make help` lists the targets.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin

.DEFAULT_GOAL := help
.PHONY: help build unit e2e chaos test lint images cluster-up cluster-down kind-up demo bench kwok-up kwok-down scale

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## compile everything
	go build ./...

test: ## unit tests, then e2e on the local cluster (started and stopped here unless it already runs)
	hack/test.sh

unit: ## unit tests (go test -race) of every module
	hack/test.sh unit

e2e: ## e2e tests only, against the running cluster (make cluster-up first)
	hack/test.sh e2e

chaos: ## the fault drills only (then the node drills: kubelet paused, API server crashed), against the running cluster (make test runs them too)
	hack/test.sh chaos

lint: ## go vet and gofmt
	hack/lint.sh

images: ## build the local images; import them when the cluster runs
	hack/cluster/images.sh

cluster-up: ## start the local cluster (or reuse it); writes .cluster/kubeconfig
	hack/cluster/up.sh

cluster-down: ## stop the local cluster and check nothing is left (WIPE=1 also drops its state)
	hack/cluster/down.sh

kwok-up: ## fake kwok nodes on the running cluster, for scale runs (KWOK_NODES=10)
	hack/cluster/kwok.sh up

kwok-down: ## delete the fake nodes and stop kwok (cluster-down does it too)
	hack/cluster/kwok.sh down

scale: ## simulated scale on kwok nodes (SCALE_ARGS=-quick; make kwok-up first)
	go run ./internal/scale/cmd/scale $(SCALE_ARGS)

kind-up: ## the e2e cluster on kind instead (needs Docker or Podman)
	go run ./hack/kind-up

demo: ## the demo
	hack/demo.sh

bench: ## the benchmarks
	hack/bench.sh

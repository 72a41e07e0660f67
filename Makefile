# sipward — build and test entry points. CGO is off: the SQLite driver is pure Go.
export CGO_ENABLED ?= 0
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build run test check fuzz e2e bench screenshots clean

build:
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/sipward ./cmd/sipward

run: build
	./bin/sipward serve

# The full test suite, as CI runs it. PostgreSQL and Redis tests run when
# SIPWARD_TEST_PG / SIPWARD_TEST_REDIS are set (.ci/run sets both).
test:
	gofmt -l . | (! grep .) || (echo "gofmt: the files above need formatting"; exit 1)
	go vet ./...
	CGO_ENABLED=1 go test -race -count=1 -timeout 15m ./...
	$(MAKE) fuzz FUZZTIME=20000x

# A count, not a duration, in CI: Go 1.26's fuzz coordinator can fail a
# duration-bounded run with "context deadline exceeded" and no crasher
# (golang/go#75804, fixed in Go 1.27). Locally: make fuzz FUZZTIME=60s.
FUZZTIME ?= 60s

# Fuzzing of the parsers, the stream framing and the whole pipeline; `make test` runs each for 20,000 inputs.
fuzz:
	go test -run X -fuzz FuzzParseCredentials -fuzztime $(FUZZTIME) ./internal/digest/
	go test -run X -fuzz FuzzSanity -fuzztime $(FUZZTIME) ./internal/stage/sanity/
	go test -run X -fuzz FuzzFilter -fuzztime $(FUZZTIME) ./internal/sdpfilter/
	go test -run X -fuzz FuzzPipeline -fuzztime $(FUZZTIME) ./internal/app/
	go test -run X -fuzz FuzzStatelessPath -fuzztime $(FUZZTIME) ./internal/app/
	go test -run X -fuzz FuzzStreamFraming -fuzztime $(FUZZTIME) ./internal/siptcp/

# SIPp benchmark of the built binary, side by side with Kamailio when PEER=kamailio
# (docs/performance.md). Not part of CI: it takes about an hour (QUICK=1: a few minutes)
# and needs sipp (and kamailio) installed. CLUSTER=3 instead measures what Redis-shared limits
# cost per call and a 3-node cluster on one machine (bench/cluster.sh, docs/scaling.md).
bench:
	bench/run.sh

# Screenshots of the web UI's main pages, taken by the browser tests in
# headless Chromium (Debian's chromium; apt-get install chromium).
screenshots:
	go test -count=1 -run TestScreenshots ./internal/web/browsertest/ -args -screenshots=$(CURDIR)/docs/screenshots

clean:
	rm -rf bin

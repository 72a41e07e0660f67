# sipward — build and test entry points. CGO is off: the SQLite driver is pure Go.
export CGO_ENABLED ?= 0
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build run test check fuzz e2e clean

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

# Short fuzzing of the parsers and the pipeline (also run briefly by `make test` via seeds).
fuzz:
	go test -run X -fuzz FuzzParseCredentials -fuzztime 30s ./internal/digest/
	go test -run X -fuzz FuzzSanity -fuzztime 30s ./internal/stage/sanity/

clean:
	rm -rf bin

// Command sipward is the authenticating SIP edge of a wholesale voice
// platform. `sipward serve` runs a node; the other subcommands administer a
// running node through its REST API.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/sipward/sipward/internal/app"
	"github.com/sipward/sipward/internal/cli"
	"github.com/sipward/sipward/internal/config"
	"github.com/sipward/sipward/internal/gcfloor"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `sipward — authenticating SIP edge

Usage:
  sipward serve [flags]     run a node (sipward serve -h lists the flags)
  sipward version`)
	fmt.Fprintln(w)
	cli.Usage(w)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "sipward", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	for _, c := range cli.Commands() {
		if c == args[0] {
			return cli.Run(args, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "sipward: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func serve(args []string, stderr io.Writer) int {
	cfg := config.Default()
	cfg.Version = version
	fs := flag.NewFlagSet("sipward serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.Register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sipward serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "sipward serve:", err)
		return 2
	}
	// Under load a third of the CPU went to the garbage collector (pprof of
	// the SIPp benchmark). The live heap of an edge is small, so collect when
	// it has grown 4× rather than 1× — unless the operator set GOGC.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// GOGC 400 lets the heap grow to several GB at thousands of calls per
	// second (docs/performance.md); a soft limit of half the memory it may use
	// makes the collector work harder only when memory gets tight.
	total := memTotal()
	if os.Getenv("GOMEMLIMIT") == "" && total > 0 {
		debug.SetMemoryLimit(total / 2)
	}
	log := newLogger(cfg, stderr)
	// Below the floor the collector waits: at load an edge's live heap is a
	// fraction of it, and every cycle takes the idle cores for ~100 ms.
	if floor := heapFloor(cfg.GCHeapFloor, total); floor > 0 {
		base := gcfloor.GOGC()
		if f := gcfloor.Start(floor, base); f != nil {
			defer f.Stop()
			log.Info("gc heap floor", "mib", floor>>20, "gogc_above_it", base)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := app.Run(ctx, cfg, log, stderr, nil); err != nil {
		log.Error("sipward stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// heapFloor is --gc-heap-floor in bytes: -1 is an eighth of the machine's
// memory (total bytes, 0 when unknown), at most 1 GiB.
func heapFloor(mib int, total int64) uint64 {
	if mib >= 0 {
		return uint64(mib) << 20
	}
	return uint64(min(total/8, 1<<30))
}

// memTotal is the memory this process may use, in bytes: the machine's
// (/proc/meminfo), or its cgroup's limit when lower — in a container
// /proc/meminfo shows the host's. 0 when unknown.
func memTotal() int64 { return memLimit("/") }

// memLimit is memTotal with the file system rooted at root (for tests).
func memLimit(root string) int64 {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	var total int64
	for _, line := range strings.Split(read("proc/meminfo"), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				total = kb * 1024
			}
		}
	}
	// cgroup v2 ("0::/path": memory.max) and v1 ("N:memory:/path":
	// memory.limit_in_bytes), at the process's cgroup and at the mount's
	// root (a container sees its own cgroup as the root).
	var files []string
	for _, line := range strings.Split(read("proc/self/cgroup"), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			files = append(files, filepath.Join("sys/fs/cgroup", parts[2], "memory.max"), "sys/fs/cgroup/memory.max")
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			files = append(files, filepath.Join("sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"),
				"sys/fs/cgroup/memory/memory.limit_in_bytes")
		}
	}
	for _, f := range files {
		v, err := strconv.ParseInt(read(f), 10, 64) // "max" (no limit) does not parse
		if err == nil && v > 0 && (total == 0 || v < total) {
			total = v
		}
	}
	return total
}

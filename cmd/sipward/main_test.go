package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMemTotal reads this machine's memory, which the soft memory limit is half of.
func TestMemTotal(t *testing.T) {
	if got := memTotal(); got < 64<<20 {
		t.Errorf("memTotal() = %d bytes; want this machine's memory from /proc/meminfo", got)
	}
}

func TestHeapFloor(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		mib   int
		total int64
		want  uint64
	}{
		{-1, 24 * gib, gib},       // auto on a large machine: capped at 1 GiB
		{-1, 2 * gib, gib / 4},    // auto on a small one: an eighth
		{-1, 0, 0},                // memory unknown: no floor
		{0, 24 * gib, 0},          // off
		{300, 2 * gib, 300 << 20}, // the operator's size, as given
	} {
		if got := heapFloor(c.mib, c.total); got != c.want {
			t.Errorf("heapFloor(%d, %d) = %d, want %d", c.mib, c.total, got, c.want)
		}
	}
}

// TestMemLimit: in a container /proc/meminfo is the host's; the cgroup's
// limit, when lower, is what the heap floor and the soft limit are cut from.
func TestMemLimit(t *testing.T) {
	const meminfo = "MemTotal:       24000000 kB\nMemFree:        22000000 kB\n"
	for _, c := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"no cgroup", map[string]string{"proc/meminfo": meminfo}, 24000000 * 1024},
		{"cgroup v2 limit", map[string]string{"proc/meminfo": meminfo, "proc/self/cgroup": "0::/pod/c1\n",
			"sys/fs/cgroup/pod/c1/memory.max": "536870912\n"}, 512 << 20},
		{"cgroup v2, own cgroup as the root", map[string]string{"proc/meminfo": meminfo, "proc/self/cgroup": "0::/\n",
			"sys/fs/cgroup/memory.max": "1073741824\n"}, 1 << 30},
		{"cgroup v2 without a limit", map[string]string{"proc/meminfo": meminfo, "proc/self/cgroup": "0::/\n",
			"sys/fs/cgroup/memory.max": "max\n"}, 24000000 * 1024},
		{"cgroup v1 limit", map[string]string{"proc/meminfo": meminfo,
			"proc/self/cgroup": "5:devices:/\n4:memory:/docker/abc\n0::/\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "268435456"}, 256 << 20},
		{"cgroup v1 without a limit", map[string]string{"proc/meminfo": meminfo, "proc/self/cgroup": "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712"}, 24000000 * 1024},
		{"a limit above the machine's memory", map[string]string{"proc/meminfo": meminfo, "proc/self/cgroup": "0::/\n",
			"sys/fs/cgroup/memory.max": "99999999999999"}, 24000000 * 1024},
		{"nothing readable", map[string]string{}, 0},
	} {
		root := t.TempDir()
		for p, body := range c.files {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := memLimit(root); got != c.want {
			t.Errorf("%s: memLimit = %d, want %d", c.name, got, c.want)
		}
	}
}

package main

import "testing"

// TestMemTotal reads this machine's memory, which the soft memory limit is half of.
func TestMemTotal(t *testing.T) {
	if got := memTotal(); got < 64<<20 {
		t.Errorf("memTotal() = %d bytes; want this machine's memory from /proc/meminfo", got)
	}
}

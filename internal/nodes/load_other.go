//go:build !unix

package nodes

import "time"

// processCPU is not measured here: load reads 0.
func processCPU() (time.Duration, bool) { return 0, false }

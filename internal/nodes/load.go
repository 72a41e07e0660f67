package nodes

import (
	"runtime"
	"time"
)

// cpuLoad measures the process's CPU use between two samples as a fraction
// of the cores it may use.
type cpuLoad struct {
	cpu  time.Duration // CPU time (user + system) at the last sample
	wall time.Time
}

// sample returns the load since the previous sample (0 at the first).
func (l *cpuLoad) sample(now time.Time) float64 {
	cpu, ok := processCPU()
	if !ok {
		return 0
	}
	prevCPU, prevWall := l.cpu, l.wall
	l.cpu, l.wall = cpu, now
	return loadOf(cpu-prevCPU, now.Sub(prevWall), prevWall.IsZero(), runtime.GOMAXPROCS(0))
}

// loadOf is used CPU time over wall time on cores, rounded to 3 places.
func loadOf(used, wall time.Duration, first bool, cores int) float64 {
	if first || wall <= 0 || used < 0 || cores < 1 {
		return 0
	}
	f := float64(used) / float64(wall) / float64(cores)
	return float64(int64(f*1000+0.5)) / 1000
}

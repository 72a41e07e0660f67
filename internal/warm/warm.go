// Package warm runs request handlers on long-lived goroutines that keep
// their grown stacks (the edge's worker pool).
package warm

import (
	"sync"
	"time"
)

// Pool runs request handlers on long-lived goroutines.
//
// sipgo calls each handler on a new goroutine, which starts with a small
// stack; the chain (eight stages, then the B2BUA) is deep enough that the
// stack is grown and copied several times per request (runtime.newstack and
// copystack took 7–9 % of the CPU in profiles under SIPp load). A warm
// worker keeps its grown stack from one request to the next, and sipgo's
// goroutine only waits, on a shallow stack. Workers are made on demand (an
// INVITE holds one until its final answer); at most maxIdle wait idle, and
// trim ends the ones no request needed since the last trim, so that the
// pool shrinks back after a burst instead of keeping its peak.
// Over UDP there is no sipgo goroutine: the UDP transport's transactions
// spawn the handler from the UDP reader and do not wait.
type Pool struct {
	mu      sync.Mutex
	idle    []*worker // a stack: give takes the most recently idle
	maxIdle int
	lowIdle int // the fewest idle workers since the last trim
	stopped bool
	jobs    sync.Pool
}

type worker struct{ in chan *job } // buffered (1): a send never blocks

type job struct {
	f     func()
	done  chan struct{}
	async bool // spawn: nobody waits; the worker recycles the job
}

func New(maxIdle int) *Pool {
	return &Pool{maxIdle: maxIdle,
		jobs: sync.Pool{New: func() any { return &job{done: make(chan struct{}, 1)} }}}
}

// Run runs f on a warm worker and returns when f has returned. f must not
// panic (serve recovers its own panics).
func (p *Pool) Run(f func()) {
	j := p.jobs.Get().(*job)
	j.f = f
	p.give(j)
	<-j.done
	j.f = nil
	p.jobs.Put(j)
}

// Spawn runs f on a warm worker and returns at once. f must not panic.
func (p *Pool) Spawn(f func()) {
	j := p.jobs.Get().(*job)
	j.f, j.async = f, true
	p.give(j)
}

// give hands j to an idle worker, or to a new one.
func (p *Pool) give(j *job) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.lowIdle = min(p.lowIdle, n-1)
		p.mu.Unlock()
		w.in <- j
	} else {
		p.mu.Unlock()
		go p.work(&worker{in: make(chan *job, 1)}, j)
	}
}

func (p *Pool) work(w *worker, j *job) {
	for j != nil {
		j.f()
		// Idle again before the caller learns f returned, so that its next
		// request finds this worker.
		p.mu.Lock()
		keep := !p.stopped && len(p.idle) < p.maxIdle
		if keep {
			p.idle = append(p.idle, w)
		}
		p.mu.Unlock()
		if j.async {
			j.f, j.async = nil, false
			p.jobs.Put(j)
		} else {
			j.done <- struct{}{}
		}
		if !keep {
			return
		}
		j = <-w.in // nil from stop
	}
}

// TrimEvery is how often the edge trims its pool.
const TrimEvery = 10 * time.Second

// Trim ends the workers that stayed idle since the last trim -- the bottom
// of the idle stack, which give never reached -- and returns how many.
func (p *Pool) Trim() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(p.lowIdle, len(p.idle))
	for _, w := range p.idle[:n] {
		w.in <- nil
	}
	p.idle = append(p.idle[:0], p.idle[n:]...)
	p.lowIdle = len(p.idle)
	return n
}

// Stop ends the idle workers; busy ones end after their request, and later
// requests still run (each on a worker of its own).
func (p *Pool) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for _, w := range p.idle {
		w.in <- nil
	}
	p.idle = nil
}

package mailer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// DefaultBackoff is the wait before attempts 2 to 7 when
// QueueConfig.Backoff is nil: about 4 hours in all, enough to ride out a
// mail server's restart or a short outage without holding mail for days.
var DefaultBackoff = []time.Duration{
	30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour,
}

// Result is the outcome of one attempt to send the mail enqueued as Key.
type Result struct {
	Key      int64
	Attempts int   // attempts made so far, this one included (from 1)
	Err      error // nil when sent
	Final    bool  // sent (Err nil) or given up; false: a retry is scheduled
}

// QueueConfig configures a Queue. Only Sender is required.
type QueueConfig struct {
	// Sender makes one attempt; a *Mailer.
	Sender Sender
	// Backoff holds the waits before attempts 2..n, so there are
	// len(Backoff)+1 attempts. nil means DefaultBackoff; an empty non-nil
	// slice means a single attempt.
	Backoff []time.Duration
	// OnResult, when set, is called after every attempt from the queue's
	// goroutines (concurrently when Workers > 1), e.g. to store the outcome.
	// It should not block for long: it holds up a worker.
	OnResult func(Result)
	// Log gets one line per failed attempt; nil discards.
	Log *slog.Logger
	// Workers is how many sends run at once; 2 when <= 0.
	Workers int
	// After is the clock for back-off waits; nil means time.After. Tests
	// replace it so that retries need no real waiting.
	After func(time.Duration) <-chan time.Time
}

// Queue sends mail in the background and retries failures. Enqueue never
// blocks; Run does the work.
type Queue struct {
	send     func(context.Context, Mail) error
	backoff  []time.Duration
	onResult func(Result)
	log      *slog.Logger
	workers  int
	after    func(time.Duration) <-chan time.Time

	mu    sync.Mutex
	ready []job         // due now, oldest first; unbounded so Enqueue never drops or blocks
	wake  chan struct{} // cap 1: "ready may be non-empty"
}

// job is one mail and the number of the attempt it is waiting for.
type job struct {
	key     int64
	msg     Mail
	attempt int
}

// NewQueue applies the defaults of cfg. It panics without a Sender, a
// wiring mistake rather than a run-time condition.
func NewQueue(cfg QueueConfig) *Queue {
	if cfg.Sender == nil {
		panic("mailer: NewQueue without a Sender")
	}
	q := &Queue{
		send:     cfg.Sender.Send,
		backoff:  cfg.Backoff,
		onResult: cfg.OnResult,
		log:      cfg.Log,
		workers:  cfg.Workers,
		after:    cfg.After,
		wake:     make(chan struct{}, 1),
	}
	if q.backoff == nil {
		q.backoff = DefaultBackoff
	}
	if q.onResult == nil {
		q.onResult = func(Result) {}
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if q.workers <= 0 {
		q.workers = 2
	}
	if q.after == nil {
		q.after = time.After
	}
	return q
}

// Enqueue adds msg for its first attempt; key comes back in its Results.
// It never blocks and never drops, whether or not Run is running: mail
// enqueued before Run waits for it.
func (q *Queue) Enqueue(key int64, msg Mail) {
	q.push(job{key: key, msg: msg, attempt: 1})
}

func (q *Queue) push(j job) {
	q.mu.Lock()
	q.ready = append(q.ready, j)
	q.mu.Unlock()
	q.signal()
}

// signal wakes one idle worker, or none if a wake-up is already pending.
func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue) pop() (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ready) == 0 {
		return job{}, false
	}
	j := q.ready[0]
	q.ready[0] = job{} // let the attachment be collected once sent
	q.ready = q.ready[1:]
	if len(q.ready) == 0 {
		q.ready = nil
	} else {
		// One wake-up may stand for many jobs: pass it on so that a second
		// idle worker starts too.
		q.signal()
	}
	return j, true
}

// Run sends until ctx is cancelled, then returns once its goroutines have
// ended. Cancelling aborts sends in flight (not reported) and abandons
// waiting retries: the caller keeps such mail as pending in its store and
// enqueues it again after a restart, where attempts count from 1. Call Run
// once at a time.
func (q *Queue) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range q.workers {
		wg.Go(func() { q.work(ctx, &wg) })
	}
	wg.Wait()
}

func (q *Queue) work(ctx context.Context, wg *sync.WaitGroup) {
	for ctx.Err() == nil {
		j, ok := q.pop()
		if !ok {
			select {
			case <-ctx.Done():
			case <-q.wake:
			}
			continue
		}
		q.attempt(ctx, wg, j)
	}
}

// attempt sends j once, reports the outcome and, unless it was the last
// attempt, schedules the next one on wg so that Run waits for the timer
// goroutine too.
func (q *Queue) attempt(ctx context.Context, wg *sync.WaitGroup, j job) {
	err := q.send(ctx, j.msg)
	if err != nil && ctx.Err() != nil {
		// Shutting down, not a verdict on the mail: it stays pending.
		q.log.Debug("mail attempt abandoned at shutdown", "key", j.key, "attempt", j.attempt)
		return
	}
	final := err == nil || j.attempt > len(q.backoff) || errors.Is(err, ErrInvalidMessage)
	q.onResult(Result{Key: j.key, Attempts: j.attempt, Err: err, Final: final})
	switch {
	case err == nil:
		q.log.Debug("mail sent", "key", j.key, "attempt", j.attempt)
		return
	case final:
		q.log.Error("mail given up", "key", j.key, "attempts", j.attempt, "err", err)
		return
	}
	wait := q.backoff[j.attempt-1]
	q.log.Warn("mail attempt failed", "key", j.key, "attempt", j.attempt, "retry_in", wait, "err", err)
	j.attempt++
	// The worker's own count keeps wg above zero, so this Add cannot race
	// with Wait returning.
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-q.after(wait):
			q.push(j)
		}
	})
}

package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// eventWait bounds every wait for something the queue does. Generous: a
// busy 2-core CI machine is slow, but never seconds slow when nothing hangs.
const eventWait = 10 * time.Second

// runQueue runs q until the test ends and checks that Run then returns.
func runQueue(t *testing.T, q *Queue) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(ctx)
	}()
	stop = func() {
		t.Helper()
		cancel()
		select {
		case <-done:
		case <-time.After(eventWait):
			t.Fatal("Run did not return after its context was cancelled")
		}
	}
	t.Cleanup(cancel)
	return stop
}

// results collects OnResult calls.
type results chan Result

func (rs results) on(r Result) { rs <- r }

func (rs results) next(t *testing.T) Result {
	t.Helper()
	select {
	case r := <-rs:
		return r
	case <-time.After(eventWait):
		t.Fatal("no result from the queue")
		return Result{}
	}
}

// instantAfter is a clock whose waits are over at once; it records how
// long each would have been.
type instantAfter chan time.Duration

func (ia instantAfter) after(d time.Duration) <-chan time.Time {
	ia <- d
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}

func TestQueueRetriesThenSends(t *testing.T) {
	be := newBackend()
	be.refuse = func(n int) error {
		if n <= 2 {
			return refuse451
		}
		return nil
	}
	addr := startServer(t, be, plainServer, tls.Certificate{})
	rs, waits := make(results, 10), make(instantAfter, 10)
	q := NewQueue(QueueConfig{
		Sender:   newMailer(t, Config{URL: "smtp://" + addr}),
		OnResult: rs.on,
		After:    waits.after, // default Backoff, without the waiting
	})
	q.Enqueue(42, voicemail()) // before Run: it waits for Run
	stop := runQueue(t, q)

	for attempt := 1; attempt <= 2; attempt++ {
		r := rs.next(t)
		if r.Key != 42 || r.Attempts != attempt || r.Final || r.Err == nil {
			t.Fatalf("result %+v, want key 42 attempt %d failed, not final", r, attempt)
		}
		for _, want := range []string{"451", "try again later", addr} {
			if !strings.Contains(r.Err.Error(), want) {
				t.Errorf("attempt %d: error %q lacks %q", attempt, r.Err, want)
			}
		}
	}
	if r := rs.next(t); r.Key != 42 || r.Attempts != 3 || !r.Final || r.Err != nil {
		t.Fatalf("result %+v, want key 42 attempt 3 sent", r)
	}
	checkVoicemail(t, waitMail(t, be))
	stop()
	close(waits)
	var got []time.Duration
	for d := range waits {
		got = append(got, d)
	}
	if want := DefaultBackoff[:2]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waited %v, want %v", got, want)
	}
}

func TestQueueGivesUp(t *testing.T) {
	be := newBackend()
	be.refuse = func(int) error { return refuse451 }
	addr := startServer(t, be, plainServer, tls.Certificate{})
	rs := make(results, 10)
	backoff := []time.Duration{time.Millisecond, 2 * time.Millisecond} // the real clock
	q := NewQueue(QueueConfig{
		Sender:   newMailer(t, Config{URL: "smtp://" + addr}),
		Backoff:  backoff,
		OnResult: rs.on,
	})
	stop := runQueue(t, q)
	q.Enqueue(7, voicemail())

	for attempt := 1; attempt <= len(backoff)+1; attempt++ {
		r := rs.next(t)
		t.Logf("%+v", r)
		final := attempt == len(backoff)+1
		if r.Key != 7 || r.Attempts != attempt || r.Final != final || r.Err == nil ||
			!strings.Contains(r.Err.Error(), "451") {
			t.Fatalf("result %+v, want key 7 attempt %d failed with 451, final %v", r, attempt, final)
		}
	}
	stop()
	if mails, _ := be.counts(); mails != len(backoff)+1 {
		t.Errorf("server saw %d attempts, want %d", mails, len(backoff)+1)
	}
	if len(rs) != 0 {
		t.Errorf("results after giving up: %+v", <-rs)
	}
}

// TestQueueEnqueueWhileServerHangs: Enqueue returns at once while the only
// worker is stuck in a send, and cancelling Run aborts that send.
func TestQueueEnqueueWhileServerHangs(t *testing.T) {
	addr, accepted := hangingServerAccepts(t)
	rs := make(results, 10)
	q := NewQueue(QueueConfig{
		Sender:   newMailer(t, Config{URL: "smtp://" + addr, Timeout: time.Hour}),
		OnResult: rs.on,
		Workers:  1,
	})
	stop := runQueue(t, q)
	q.Enqueue(1, voicemail())
	select {
	case <-accepted:
	case <-time.After(eventWait):
		t.Fatal("the queue never connected")
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		msg := voicemail()
		for i := range 10000 {
			q.Enqueue(int64(i+2), msg)
		}
	}()
	select {
	case <-done:
	case <-time.After(eventWait):
		t.Fatal("Enqueue blocked while the server hangs")
	}
	stop() // fails the test unless the hanging send is aborted
	if len(rs) != 0 {
		t.Errorf("an attempt aborted by shutdown was reported: %+v", <-rs)
	}
}

// fakeSender answers from a function; started announces each call.
type fakeSender struct {
	send    func(ctx context.Context, msg Mail) error
	started chan string
}

func (f *fakeSender) Send(ctx context.Context, msg Mail) error {
	f.started <- msg.To
	return f.send(ctx, msg)
}

// TestQueueWorkers: two jobs enqueued together are sent at once by two
// workers, though a single wake-up announced them.
func TestQueueWorkers(t *testing.T) {
	release := make(chan struct{})
	f := &fakeSender{started: make(chan string, 10), send: func(ctx context.Context, _ Mail) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	rs := make(results, 10)
	q := NewQueue(QueueConfig{Sender: f, OnResult: rs.on, Workers: 2})
	q.Enqueue(1, Mail{To: "a@example.net"})
	q.Enqueue(2, Mail{To: "b@example.net"})
	stop := runQueue(t, q)
	for range 2 {
		select {
		case <-f.started:
		case <-time.After(eventWait):
			t.Fatal("two workers did not send at the same time")
		}
	}
	close(release)
	keys := map[int64]bool{}
	for range 2 {
		r := rs.next(t)
		if !r.Final || r.Err != nil || r.Attempts != 1 {
			t.Errorf("result %+v, want sent at once", r)
		}
		keys[r.Key] = true
	}
	if !keys[1] || !keys[2] {
		t.Errorf("results for keys %v, want 1 and 2", keys)
	}
	stop()
}

// TestQueueInvalidMessage: a mail that can never be sent is given up at
// its first attempt instead of being retried for hours.
func TestQueueInvalidMessage(t *testing.T) {
	f := &fakeSender{started: make(chan string, 10), send: func(context.Context, Mail) error {
		return fmt.Errorf("mailer: %w: recipient: no address", ErrInvalidMessage)
	}}
	rs, waits := make(results, 10), make(instantAfter, 10)
	q := NewQueue(QueueConfig{Sender: f, OnResult: rs.on, After: waits.after})
	stop := runQueue(t, q)
	q.Enqueue(9, Mail{To: "nobody"})
	if r := rs.next(t); !r.Final || r.Attempts != 1 || !errors.Is(r.Err, ErrInvalidMessage) {
		t.Errorf("result %+v, want given up at attempt 1", r)
	}
	stop()
	if len(waits) != 0 {
		t.Errorf("a retry was scheduled for an invalid message")
	}
}

// TestQueueSingleAttempt: an empty, non-nil Backoff means one attempt.
func TestQueueSingleAttempt(t *testing.T) {
	f := &fakeSender{started: make(chan string, 10), send: func(context.Context, Mail) error {
		return refuse451
	}}
	rs := make(results, 10)
	q := NewQueue(QueueConfig{Sender: f, OnResult: rs.on, Backoff: []time.Duration{}})
	stop := runQueue(t, q)
	q.Enqueue(3, Mail{})
	if r := rs.next(t); !r.Final || r.Attempts != 1 || r.Err == nil {
		t.Errorf("result %+v, want given up after one attempt", r)
	}
	stop()
}

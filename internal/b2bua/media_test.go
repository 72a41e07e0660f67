package b2bua

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
)

// fakeRelay records the commands it gets; fail makes every offer fail.
type fakeRelay struct {
	mu   sync.Mutex
	cmds []string
	fail bool
}

func (f *fakeRelay) log(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, s)
}

func (f *fakeRelay) Offer(_ context.Context, callID, from, to string, sdp []byte) ([]byte, error) {
	f.log(fmt.Sprintf("offer %s>%s %s", from, to, sdp))
	if f.fail {
		return nil, errors.New("no answer")
	}
	return []byte("relayed " + string(sdp)), nil
}

func (f *fakeRelay) Answer(_ context.Context, callID, from, to string, sdp []byte) ([]byte, error) {
	f.log(fmt.Sprintf("answer %s>%s %s", from, to, sdp))
	return []byte("relayed " + string(sdp)), nil
}

func (f *fakeRelay) Delete(_ context.Context, callID string) error {
	f.log("delete")
	return nil
}

func (f *fakeRelay) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

// TestMediaRelayCommands: a relayed call's offer, answer and re-offers from
// either side go to the relay with the sides' tags the right way round; a
// call that is not relayed passes its SDP untouched; the session is deleted
// once however often the call is dropped; a failed offer leaves the call
// unrelayed.
func TestMediaRelayCommands(t *testing.T) {
	relay := &fakeRelay{}
	b, err := New(Config{Sender: nullSender{}, Answer: func(*pipeline.Request, pipeline.Result) {}, Relay: relay})
	if err != nil {
		t.Fatal(err)
	}
	r := siptest.Request(siptest.Req{User: "442071234567", From: "441110000001"}.Msg(t), "198.51.100.7:40000", t0)
	c := b.newCall(r)
	if out, _ := b.mediaAnswer(c, []byte("x")); string(out) != "x" {
		t.Errorf("an unrelayed call's answer: %q, want it untouched", out)
	}
	if out, err := b.mediaOffer(c, []byte("o1")); err != nil || string(out) != "relayed o1" {
		t.Fatalf("offer: %q, %v", out, err)
	}
	if out, _ := b.mediaAnswer(c, []byte("a1")); string(out) != "relayed a1" {
		t.Errorf("answer: %q", out)
	}
	if _, err := b.mediaInDialog(c, false, false, []byte("o2")); err != nil { // the callee re-offers
		t.Fatal(err)
	}
	if _, err := b.mediaInDialog(c, false, true, []byte("a2")); err != nil { // the caller's answer to it
		t.Fatal(err)
	}
	b.drop(c)
	b.drop(c)
	b.unrelaying.Wait()
	want := []string{"offer caller> o1", "answer caller>callee a1", "offer callee>caller o2", "answer callee>caller a2", "delete"}
	if got := relay.got(); !slices.Equal(got, want) {
		t.Errorf("relay commands:\n%q\nwant\n%q", got, want)
	}

	failing := &fakeRelay{fail: true}
	b2, _ := New(Config{Sender: nullSender{}, Answer: func(*pipeline.Request, pipeline.Result) {}, Relay: failing})
	c2 := b2.newCall(r)
	if _, err := b2.mediaOffer(c2, []byte("o1")); err == nil {
		t.Fatal("a failed offer: no error")
	}
	if out, _ := b2.mediaAnswer(c2, []byte("a1")); string(out) != "a1" {
		t.Errorf("after a failed offer the answer is %q, want it untouched (the call is not relayed)", out)
	}
	b2.drop(c2)
	b2.unrelaying.Wait()
	if got := failing.got(); len(got) != 1 {
		t.Errorf("relay commands after a failed offer: %q, want the offer only (no delete)", got)
	}
}

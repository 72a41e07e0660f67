package b2bua

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
)

// TestCallerTimer: the caller's leg's interval and refresher (RFC 4028
// §9), and the headers of the 2xx that says them.
func TestCallerTimer(t *testing.T) {
	b, err := New(Config{Sender: nullSender{}, Answer: func(*pipeline.Request, pipeline.Result) {}, MinSE: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		headers []string
		want    string // Session-Expires of the 2xx
		require bool   // Require: timer on the 2xx
	}{
		{"no timer asked, no support: sipward refreshes the customer's interval", nil, "1800;refresher=uas", false},
		{"support, no interval: the caller refreshes", []string{"Supported: timer"}, "1800;refresher=uac", true},
		{"a shorter interval is taken", []string{"Session-Expires: 300", "Supported: timer"}, "300;refresher=uac", true},
		{"a longer one is lowered to the customer's", []string{"Session-Expires: 7200;refresher=uac", "Supported: timer"}, "1800;refresher=uac", true},
		{"refresher=uas asked: sipward refreshes", []string{"Session-Expires: 600;refresher=uas", "Supported: timer"}, "600;refresher=uas", false},
		{"the caller's Min-SE is kept", []string{"Session-Expires: 300", "Min-SE: 400", "Supported: timer"}, "400;refresher=uac", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := siptest.Req{User: "442071234567", From: "441110000001"}.Msg(t)
			for _, h := range tt.headers {
				name, v, _ := cutHeader(h)
				req.AppendHeader(sip.NewHeader(name, v))
			}
			r := siptest.Request(req, "198.51.100.7:40000", t0)
			c := b.newCall(r)
			c.timers, c.expires = true, 1800*time.Second
			b.callerTimer(c, req, t0)
			hs := c.a.timer.headers(false)
			if len(hs) == 0 || hs[0].Value() != tt.want {
				t.Fatalf("Session-Expires %v, want %s", hs, tt.want)
			}
			if got := len(hs) == 2 && hs[1].Name() == "Require" && hs[1].Value() == "timer"; got != tt.require {
				t.Errorf("Require: timer = %v, want %v (%v)", got, tt.require, hs)
			}
		})
	}
}

func cutHeader(h string) (string, string, bool) {
	for i := 0; i+1 < len(h); i++ {
		if h[i] == ':' && h[i+1] == ' ' {
			return h[:i], h[i+2:], true
		}
	}
	return h, "", false
}

// TestTimerHeadersBothWays: the refresher parameter names the same party
// whichever side sends the message.
func TestTimerHeadersBothWays(t *testing.T) {
	var st sessionTimer
	if hs := st.headers(true); hs != nil {
		t.Errorf("no timer: headers %v, want none", hs)
	}
	st.set(120*time.Second, true, t0) // sipward refreshes
	if got := st.headers(true)[0].Value(); got != "120;refresher=uac" {
		t.Errorf("our request: %s, want refresher=uac (us)", got)
	}
	if got := st.headers(false)[0].Value(); got != "120;refresher=uas" {
		t.Errorf("our answer: %s, want refresher=uas (us)", got)
	}
	st.set(120*time.Second, false, t0) // the peer refreshes
	if got := st.headers(true)[0].Value(); got != "120;refresher=uas" {
		t.Errorf("our request: %s, want refresher=uas (the peer)", got)
	}
	if hs := st.headers(false); hs[0].Value() != "120;refresher=uac" || len(hs) != 2 || hs[1].Name() != "Require" {
		t.Errorf("our answer: %v, want refresher=uac and Require: timer", hs)
	}
}

// TestRetryTimer: a 422's Min-SE becomes the new request's interval.
func TestRetryTimer(t *testing.T) {
	inv := siptest.Req{User: "442071234567", From: "441110000001"}.Msg(t)
	inv.AppendHeader(sip.NewHeader("Session-Expires", "90"))
	inv.AppendHeader(sip.NewHeader("Min-SE", "90"))
	res := sip.NewResponseFromRequest(inv, 422, "Session Interval Too Small", nil)
	res.AppendHeader(sip.NewHeader("Min-SE", "600"))
	req, iv, ok := retryTimer(inv, res, 2)
	if !ok || iv != 600*time.Second || req.GetHeader("Session-Expires").Value() != "600" || req.CSeq().SeqNo != 2 || req.Via() != nil {
		t.Fatalf("retry: ok %v, interval %s, request\n%s", ok, iv, req)
	}
	res.RemoveHeader("Min-SE")
	if _, _, ok := retryTimer(inv, res, 3); ok {
		t.Error("a 422 without Min-SE was retried")
	}
}

package sanity

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// FuzzSanity feeds bytes to sipgo's parser and every parsed request to
// Check and to the stage, over each transport. It must never panic, and
// every Result must be one the edge can send (or a drop).
func FuzzSanity(f *testing.F) {
	for _, pattern := range []string{"testdata/*.sip", "testdata/rfc4475/*.sip"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	cfg := Config{Supported: []string{"replaces"}}
	c, err := NewChecker(cfg)
	if err != nil {
		f.Fatal(err)
	}
	stage, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	chain := pipeline.Build(&recorder{}, stage)

	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		for _, transport := range []string{pipeline.UDP, pipeline.TCP, pipeline.TLS} {
			res, ok := c.Check(req, transport)
			if ok {
				if res.Status != 0 || res.Drop || res.Headers != nil || res.Stage != "" {
					t.Fatalf("passed with a non-zero Result %+v", res)
				}
			} else {
				checkResult(t, req, res)
			}
			r := &pipeline.Request{Msg: req, Transport: transport}
			sres, err := chain.ServeSIP(context.Background(), r)
			if err != nil {
				t.Fatalf("ServeSIP error: %v", err)
			}
			if ok != sres.Answered() {
				t.Fatalf("Check ok = %v but stage Result %+v", ok, sres)
			}
		}
	})
}

// checkResult fails t unless res is a rejection the edge can send.
func checkResult(t *testing.T, req *sip.Request, res pipeline.Result) {
	t.Helper()
	if res.Stage != Name || res.Why == "" || !isPrintableText(res.Why) {
		t.Fatalf("bad Result %+v", res)
	}
	if res.Drop {
		if res.Status != 0 || res.Headers != nil {
			t.Fatalf("drop with a status or headers: %+v", res)
		}
		return
	}
	if req.Method == sip.ACK {
		t.Fatalf("ACK answered: %+v", res)
	}
	phrases := map[int]string{
		400: "Bad Request", 406: "Not Acceptable", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
		420: "Bad Extension", 483: "Too Many Hops", 505: "Version Not Supported", 513: "Message Too Large",
	}
	if phrases[res.Status] != res.Reason {
		t.Fatalf("status %d with reason %q", res.Status, res.Reason)
	}
	for _, h := range res.Headers {
		if !isPrintableText(h.Value()) {
			t.Fatalf("header %s carries control bytes: %q", h.Name(), h.Value())
		}
	}
}

package sipudp

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestScanRaw(t *testing.T) {
	const tail = "Call-ID: a\r\nCSeq: 1 X\r\n\r\nbody To: <sip:x>;tag=notme\r\n"
	for _, c := range []struct {
		name, msg string
		ok        bool
		method    sip.RequestMethod
		tag       string // "" = none
		creds     bool
	}{
		{"invite", "INVITE sip:1@h SIP/2.0\r\nTo: <sip:1@h>\r\n" + tail, true, sip.INVITE, "", false},
		{"tagged", "INVITE sip:1@h SIP/2.0\r\nTo: <sip:1@h>;tag=abc\r\n" + tail, true, sip.INVITE, "abc", false},
		{"compact to", "ACK sip:1@h SIP/2.0\r\nt: <sip:1@h> ; TAG = swsl-9 ;x=1\r\n" + tail, true, sip.ACK, "swsl-9", false},
		{"no brackets", "REGISTER sip:h SIP/2.0\r\nTO:sip:1@h;tag=q\r\n" + tail, true, sip.REGISTER, "q", false},
		{"uri param is no tag", "OPTIONS sip:h SIP/2.0\r\nTo: <sip:1@h;tag=uri>\r\n" + tail, true, sip.OPTIONS, "", false},
		{"empty tag", "OPTIONS sip:h SIP/2.0\r\nTo: <sip:1@h>;tag=\r\n" + tail, true, sip.OPTIONS, "", false},
		{"proxy credentials", "INVITE sip:1@h SIP/2.0\r\nproxy-authorization: Digest x\r\n" + tail, true, sip.INVITE, "", true},
		{"credentials", "REGISTER sip:h SIP/2.0\r\nAuthorization : Digest x\r\n" + tail, true, sip.REGISTER, "", true},
		{"other header", "INVITE sip:1@h SIP/2.0\r\nX-Authorization-Hint: 1\r\n" + tail, true, sip.INVITE, "", false},
		{"bye", "BYE sip:1@h SIP/2.0\r\n" + tail, false, "", "", false},
		{"response", "SIP/2.0 200 OK\r\n" + tail, false, "", "", false},
		{"prefix only", "INVITEX sip:1@h SIP/2.0\r\n" + tail, false, "", "", false},
		{"truncated", "INVITE", false, "", "", false},
		{"bare LF", "INVITE sip:1@h SIP/2.0\nTo: <sip:1@h>;tag=lf\n\n", true, sip.INVITE, "lf", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, ok := scanRaw([]byte(c.msg))
			if ok != c.ok {
				t.Fatalf("ok %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			if m.method != c.method || string(m.toTag) != c.tag || (m.toTag == nil) != (c.tag == "") || m.credentials != c.creds {
				t.Errorf("got %s tag %q creds %v, want %s tag %q creds %v", m.method, m.toTag, m.credentials, c.method, c.tag, c.creds)
			}
		})
	}
}

func TestScanRawAllocatesNothing(t *testing.T) {
	msg := []byte("INVITE sip:1@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:1@h>;tag=a\r\nProxy-Authorization: Digest x\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() { _, _ = scanRaw(msg) }); n != 0 {
		t.Errorf("scanRaw allocates %v times", n)
	}
}

func TestAbsorberKeepsAnswersForTheirLifetime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := absorber{ttl: 32 * time.Second}
	claim := func(key string, at time.Duration, wantAnswer string, wantSeen bool) {
		t.Helper()
		b, seen := a.claim(key, t0.Add(at))
		if string(b) != wantAnswer || seen != wantSeen {
			t.Errorf("claim %q at %v: %q %v, want %q %v", key, at, b, seen, wantAnswer, wantSeen)
		}
	}
	claim("k", 0, "", false)               // first: being served now
	claim("k", time.Millisecond, "", true) // a retransmission while it is served: dropped
	a.put("k", []byte("answer"), t0.Add(2*time.Millisecond))
	claim("k", 31*time.Second, "answer", true)
	a.put("k2", []byte("later"), t0.Add(33*time.Second)) // rotates: k is in the older generation
	claim("k", 40*time.Second, "answer", true)           // an entry lives at least ttl
	claim("k", 66*time.Second, "", false)                // two rotations: gone (and claimed anew)
	claim("k2", 66*time.Second, "later", true)
	if a.len() != 2 {
		t.Errorf("len %d, want 2 (k claimed anew, k2)", a.len())
	}
}

func TestStatelessTagIsStablePerRequest(t *testing.T) {
	parse := func(branch string) *sip.Request {
		m, err := sip.ParseMessage([]byte("INVITE sip:1@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=" + branch +
			"\r\nFrom: <sip:a@h>;tag=f\r\nTo: <sip:1@h>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return m.(*sip.Request)
	}
	a, b, other := statelessTag(parse("z9hG4bK1")), statelessTag(parse("z9hG4bK1")), statelessTag(parse("z9hG4bK2"))
	if a != b || a == other || len(a) <= len(statelessTagPrefix) || a[:len(statelessTagPrefix)] != statelessTagPrefix {
		t.Errorf("tags %q %q %q: want the first two equal, the third different, all with the prefix", a, b, other)
	}
}

// TestWriteAnswerMatchesSipgo holds writeAnswer to what sipgo's
// NewResponseFromRequest and StringWrite give (the stateless path used them
// before): the same start line and headers, the stateless To tag.
func TestWriteAnswerMatchesSipgo(t *testing.T) {
	src := netip.MustParseAddrPort("192.0.2.7:5062")
	challenge := sip.NewHeader("Proxy-Authenticate", `Digest realm="sip.test", nonce="abc", algorithm=MD5, qop="auth"`)
	for _, tc := range []struct {
		name   string
		req    string
		status int
		reason string
		extra  []sip.Header
	}{
		{"INVITE challenged, two Vias, empty rport", "INVITE sip:1000@sip.test SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK-1;rport\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-0\r\n" +
			"Record-Route: <sip:10.0.0.9;lr>\r\nFrom: \"Al\" <sip:al@sip.test>;tag=f1\r\nTo: <sip:1000@sip.test>\r\n" +
			"Call-ID: c1@x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			407, "Proxy Authentication Required", []sip.Header{challenge}},
		{"REGISTER answered 200 with its contacts", "REGISTER sip:sip.test SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK-2;rport=5062;received=192.0.2.7\r\n" +
			"Record-Route: <sip:10.0.0.9;lr>\r\nFrom: <sip:3001@sip.test>;tag=f2\r\nTo: <sip:3001@sip.test>\r\n" +
			"Call-ID: c2@x\r\nCSeq: 7 REGISTER\r\nContact: <sip:3001@192.0.2.7:5062>\r\nContent-Length: 0\r\n\r\n",
			200, "OK", []sip.Header{sip.NewHeader("Contact", "<sip:3001@192.0.2.7:5062>;expires=60"), sip.NewHeader("Date", "Thu, 26 Nov 2026 14:00:00 GMT")}},
		{"OPTIONS 200 copies Record-Route, keeps an existing To tag", "OPTIONS sip:sip.test SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK-3\r\nRecord-Route: <sip:10.0.0.9;lr>\r\n" +
			"From: <sip:ping@sip.test>;tag=f3\r\nTo: <sip:sip.test>;tag=t3\r\nCall-ID: c3@x\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			200, "OK", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parse := func(b []byte) sip.Message {
				m, err := sip.NewParser().ParseSIP(b)
				if err != nil {
					t.Fatalf("parse %q: %v", b, err)
				}
				return m
			}
			req := parse([]byte(tc.req)).(*sip.Request)
			req.SetSource(src.String())
			var buf bytes.Buffer
			writeAnswer(&buf, req, src, tc.status, tc.reason, tc.extra)
			got := parse(buf.Bytes()).(*sip.Response)

			want := sip.NewResponseFromRequest(req, tc.status, tc.reason, nil)
			if !req.To().Params.Has("tag") {
				want.To().Params.Add("tag", statelessTag(req))
			}
			for _, h := range tc.extra {
				want.AppendHeader(h)
			}
			want = parse([]byte(want.String())).(*sip.Response)

			if got.StatusCode != want.StatusCode || got.Reason != want.Reason {
				t.Errorf("start line %d %q, want %d %q", got.StatusCode, got.Reason, want.StatusCode, want.Reason)
			}
			canon := func(m *sip.Response) map[string][]string {
				out := map[string][]string{}
				for _, h := range m.Headers() {
					out[h.Name()] = append(out[h.Name()], h.Value())
				}
				return out
			}
			if g, w := canon(got), canon(want); !reflect.DeepEqual(g, w) {
				t.Errorf("headers\n got %q\nwant %q\nanswer:\n%s", g, w, buf.Bytes())
			}
		})
	}
}

package sdpfilter

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files from Filter's output")

func mustSet(t testing.TB, names ...string) Set {
	t.Helper()
	s, err := ParseSet(names)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readSDP(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".sdp"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFilterGolden runs Filter on testdata/<in>.sdp. A Changed output is
// compared with testdata/<name>.golden (go test -run TestFilterGolden
// -update rewrites them); any other outcome must return the input itself.
func TestFilterGolden(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		restricted []string
		srtp       bool
		want       Outcome
		removed    string // report.removed
	}{
		{name: "g729-removed", in: "offer-g729", restricted: []string{"G729"}, want: Changed, removed: "G729"},
		{name: "g729-static-no-rtpmap", in: "offer-static", restricted: []string{"g729"}, want: Changed, removed: "G729"},
		{name: "opus-removed", in: "offer-opus", restricted: []string{"Opus"}, want: Changed, removed: "opus"},
		{name: "telephone-event-removed", in: "offer-g729", restricted: []string{"telephone-event"}, want: Changed, removed: "telephone-event"},
		{name: "all-restricted", in: "offer-pcm", restricted: []string{"PCMU", "PCMA"}, want: NothingLeft, removed: "PCMU,PCMA"},
		{name: "only-dtmf-and-cn-left", in: "offer-g729", restricted: []string{"PCMU", "PCMA", "G729"}, want: NothingLeft, removed: "PCMU,PCMA,G729"},
		{name: "static-cn-left", in: "offer-static", restricted: []string{"PCMU", "G729"}, want: NothingLeft, removed: "PCMU,G729"},
		{name: "video-untouched", in: "offer-video", restricted: []string{"G729", "PCMA", "G722"}, want: Changed, removed: "PCMA,G729"},
		{name: "h264-and-its-rtx-removed", in: "offer-video", restricted: []string{"H264"}, want: Changed, removed: "H264"},
		{name: "video-declined", in: "offer-video", restricted: []string{"H264", "VP8", "H263"}, want: Changed, removed: "H263,H264,VP8"},
		{name: "srtp-required-avp", in: "offer-avp", srtp: true, want: NoSRTP},
		{name: "srtp-required-avp-restricted", in: "offer-avp", restricted: []string{"G729"}, srtp: true, want: NoSRTP},
		{name: "srtp-required-savp-crypto", in: "offer-savp", restricted: []string{"G729"}, srtp: true, want: Changed, removed: "G729"},
		{name: "srtp-required-savp-unrestricted", in: "offer-savp", srtp: true, want: Unchanged},
		{name: "srtp-required-avp-crypto", in: "offer-avp-crypto", srtp: true, want: Unchanged},
		{name: "srtp-required-dtls", in: "offer-dtls", srtp: true, want: Unchanged},
		{name: "srtp-not-required-avp", in: "offer-avp", restricted: []string{"G729"}, want: Changed, removed: "G729"},
		{name: "lf-only", in: "offer-lf", restricted: []string{"G729"}, want: Changed, removed: "G729"},
		{name: "lf-only-unchanged", in: "offer-lf", restricted: []string{"opus"}, want: Unchanged},
		{name: "empty-set", in: "offer-g729", want: Unchanged},
		{name: "nothing-matched", in: "offer-g729", restricted: []string{"opus", "H264", "T38"}, want: Unchanged},
		{name: "t38-declined", in: "offer-t38", restricted: []string{"T38"}, want: Changed, removed: "T38"},
		{name: "t38-only", in: "reinvite-t38", restricted: []string{"T38"}, want: NothingLeft, removed: "T38"},
		{name: "port-zero-untouched", in: "offer-port-zero", restricted: []string{"H263"}, want: Unchanged},
		{name: "g729a-alias", in: "offer-g729a", restricted: []string{"G729"}, want: Changed, removed: "G729"},
		{name: "malformed", in: "malformed-port", restricted: []string{"G729"}, want: Malformed},
		{name: "malformed-empty-set", in: "malformed-port", want: Unchanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := readSDP(t, tt.in)
			orig := bytes.Clone(in)
			out, rep := filter(in, mustSet(t, tt.restricted...), tt.srtp)
			if got, want := rep.outcome, tt.want; got != want {
				t.Fatalf("outcome %v, want %v (report %+v)", got, want, rep)
			}
			if got := rep.removed.String(); got != tt.removed {
				t.Errorf("removed %q, want %q", got, tt.removed)
			}
			if !bytes.Equal(in, orig) {
				t.Fatal("Filter modified its input")
			}
			if tt.want != Changed {
				if !sameSlice(out, in) {
					t.Fatalf("%v: got a new slice, want the input itself", tt.want)
				}
				return
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(out)); diff != "" {
				t.Errorf("output mismatch (-want +got):\n%s", diff)
			}
			checkOutput(t, out, mustSet(t, tt.restricted...), tt.srtp)
		})
	}
}

// checkOutput checks what holds for every Changed output: CRLF line
// endings, and filtering it again changes nothing (so it still parses, and
// no restricted codec is left in a live stream).
func checkOutput(t *testing.T, out []byte, set Set, srtp bool) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(out, []byte("\r\n"), nil), []byte("\n")) || !bytes.HasSuffix(out, []byte("\r\n")) {
		t.Errorf("output has lines not ending in CRLF:\n%q", out)
	}
	if again, res := Filter(out, set, srtp); res != Unchanged || !sameSlice(again, out) {
		t.Errorf("filtering the output again: %v, want unchanged", res)
	}
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// TestFilterMalformed: what Filter refuses to read, and what it tolerates.
func TestFilterMalformed(t *testing.T) {
	g729 := mustSet(t, "G729")
	tests := []struct {
		name string
		sdp  string
		want Outcome
		line int
	}{
		{name: "empty", sdp: "", want: Malformed, line: 1},
		{name: "not sdp", sdp: "hello world\r\n", want: Malformed, line: 1},
		{name: "leading blank line", sdp: "\r\nv=0\r\nm=audio 1 RTP/AVP 18\r\n", want: Malformed, line: 1},
		{name: "no equals", sdp: "v=0\r\nhello\r\nm=audio 1 RTP/AVP 18\r\n", want: Malformed, line: 2},
		{name: "CR inside a line", sdp: "v=0\r\ns=a\rb\r\nm=audio 1 RTP/AVP 18\r\n", want: Malformed, line: 2},
		{name: "m= without formats", sdp: "v=0\r\nm=audio 1 RTP/AVP\r\n", want: Malformed, line: 2},
		{name: "m= without proto", sdp: "v=0\r\nm=audio 1\r\n", want: Malformed, line: 2},
		{name: "m= empty", sdp: "v=0\r\nm=\r\n", want: Malformed, line: 2},
		{name: "m= leading space", sdp: "v=0\r\nm= audio 1 RTP/AVP 18\r\n", want: Malformed, line: 2},
		{name: "port too large", sdp: "v=0\r\nm=audio 65536 RTP/AVP 18\r\n", want: Malformed, line: 2},
		{name: "port not a number", sdp: "v=0\r\nm=audio x RTP/AVP 18\r\n", want: Malformed, line: 2},
		{name: "payload type 128", sdp: "v=0\r\nm=audio 1 RTP/AVP 18 128\r\n", want: Malformed, line: 2},
		{name: "payload type name", sdp: "v=0\r\nm=audio 1 RTP/AVP 18 pcmu\r\n", want: Malformed, line: 2},
		{name: "second m= bad", sdp: "v=0\r\nm=audio 1 RTP/AVP 18 0\r\na=x\r\nm=video 2 RTP/AVP\r\n", want: Malformed, line: 4},

		{name: "blank lines tolerated", sdp: "v=0\r\n\r\nm=audio 1 RTP/AVP 18 0\r\n\r\n", want: Changed},
		{name: "no final line ending", sdp: "v=0\r\nm=audio 1 RTP/AVP 18 0", want: Changed},
		{name: "port count", sdp: "v=0\r\nm=audio 1/2 RTP/AVP 18 0\r\n", want: Changed},
		{name: "non-RTP formats by name", sdp: "v=0\r\nm=application 1 TCP/MSRP *\r\n", want: Unchanged},
		{name: "only v=", sdp: "v=0", want: Unchanged},
		{name: "bad rtpmap ignored", sdp: "v=0\r\nm=audio 1 RTP/AVP 96 0\r\na=rtpmap:x G729/8000\r\na=rtpmap:96\r\n", want: Unchanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.sdp)
			out, rep := filter(in, g729, false)
			if rep.outcome != tt.want || rep.line != tt.line {
				t.Fatalf("outcome %v at line %d (%s), want %v at line %d", rep.outcome, rep.line, rep.why, tt.want, tt.line)
			}
			if tt.want != Changed && !sameSlice(out, in) {
				t.Fatal("got a new slice, want the input itself")
			}
			if tt.want == Changed {
				checkOutput(t, out, g729, false)
			}
		})
	}
}

// TestFilterCases covers details on inline SDP, comparing whole outputs.
func TestFilterCases(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
	tests := []struct {
		name       string
		in         string
		restricted []string
		srtp       bool
		want       Outcome
		out        string // for Changed
	}{
		{
			name:       "rtpmap overrides the static name",
			in:         head + "m=audio 1 RTP/AVP 18 0\r\na=rtpmap:18 PCMA/8000\r\n",
			restricted: []string{"G729"},
			want:       Unchanged,
		},
		{
			name:       "dynamic payload type without rtpmap is kept",
			in:         head + "m=audio 1 RTP/AVP 0 96\r\n",
			restricted: []string{"opus"},
			want:       Unchanged,
		},
		{
			name:       "unlisted rtpmap is not removed",
			in:         head + "m=audio 1 RTP/AVP 0 8\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:8 PCMA/8000\r\n",
			restricted: []string{"opus", "PCMA"},
			want:       Changed,
			out:        head + "m=audio 1 RTP/AVP 0\r\na=rtpmap:96 opus/48000/2\r\n",
		},
		{
			name:       "case-insensitive encoding name",
			in:         head + "m=audio 1 RTP/AVP 0 97\r\na=rtpmap:97 amr-wb/16000\r\na=fmtp:97 octet-align=1\r\n",
			restricted: []string{"AMR-WB"},
			want:       Changed,
			out:        head + "m=audio 1 RTP/AVP 0\r\n",
		},
		{
			name:       "AMR does not match AMR-WB",
			in:         head + "m=audio 1 RTP/AVP 0 97\r\na=rtpmap:97 AMR-WB/16000\r\n",
			restricted: []string{"AMR"},
			want:       Unchanged,
		},
		{
			name:       "every stream is filtered",
			in:         head + "m=audio 1 RTP/AVP 0 18\r\nm=audio 2 RTP/AVP 18 8\r\n",
			restricted: []string{"G729"},
			want:       Changed,
			out:        head + "m=audio 1 RTP/AVP 0\r\nm=audio 2 RTP/AVP 8\r\n",
		},
		{
			name:       "second audio stream emptied",
			in:         head + "m=audio 1 RTP/AVP 0 18\r\nm=audio 2 RTP/AVP 18\r\n",
			restricted: []string{"G729"},
			want:       NothingLeft,
		},
		{
			name:       "only stream is video, declined",
			in:         head + "m=video 1 RTP/AVP 96\r\na=rtpmap:96 VP9/90000\r\n",
			restricted: []string{"VP9"},
			want:       NothingLeft,
		},
		{
			name: "SRTP not checked on a declined stream",
			in:   head + "m=audio 0 RTP/AVP 0\r\nm=audio 2 RTP/SAVPF 8\r\n",
			srtp: true,
			want: Unchanged,
		},
		{
			name: "SRTP not checked on video",
			in:   head + "m=audio 2 RTP/SAVP 8\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\nm=video 3 RTP/AVP 34\r\n",
			srtp: true,
			want: Unchanged,
		},
		{
			name: "session-level crypto does not count",
			in:   "v=0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\nm=audio 2 RTP/AVP 8\r\n",
			srtp: true,
			want: NoSRTP,
		},
		{
			name:       "red removed with the codec it carries",
			in:         head + "m=audio 1 RTP/AVP 96 63 0\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 96/96\r\n",
			restricted: []string{"opus"},
			want:       Changed,
			out:        head + "m=audio 1 RTP/AVP 0\r\n",
		},
		{
			name:       "red kept when it carries a kept codec",
			in:         head + "m=audio 1 RTP/AVP 96 63 0\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:63 red/8000\r\na=fmtp:63 0/0\r\n",
			restricted: []string{"opus"},
			want:       Changed,
			out:        head + "m=audio 1 RTP/AVP 63 0\r\na=rtpmap:63 red/8000\r\na=fmtp:63 0/0\r\n",
		},
		{
			name:       "rtx chain",
			in:         head + "m=video 1 RTP/AVP 96 97 98 99\r\na=rtpmap:96 H264/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96;rtx-time=3000\r\na=rtpmap:98 VP8/90000\r\na=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n",
			restricted: []string{"H264"},
			want:       Changed,
			out:        head + "m=video 1 RTP/AVP 98 99\r\na=rtpmap:98 VP8/90000\r\na=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n",
		},
		{
			name:       "first rtpmap of a payload type counts",
			in:         head + "m=audio 1 RTP/AVP 0 96\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:96 PCMA/8000\r\n",
			restricted: []string{"opus"},
			want:       Changed,
			out:        head + "m=audio 1 RTP/AVP 0\r\n",
		},
		{
			name:       "white space in the m= line",
			in:         head + "m=audio  1  RTP/AVP  0   18 \r\n",
			restricted: []string{"G729"},
			want:       Changed,
			out:        head + "m=audio  1  RTP/AVP 0\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := mustSet(t, tt.restricted...)
			in := []byte(tt.in)
			out, res := Filter(in, set, tt.srtp)
			if res != tt.want {
				t.Fatalf("outcome %v, want %v", res, tt.want)
			}
			if tt.want != Changed {
				if !sameSlice(out, in) {
					t.Fatal("got a new slice, want the input itself")
				}
				return
			}
			if diff := cmp.Diff(tt.out, string(out)); diff != "" {
				t.Errorf("output mismatch (-want +got):\n%s", diff)
			}
			checkOutput(t, out, set, tt.srtp)
		})
	}
}

func TestFilterAllocs(t *testing.T) {
	offer := readSDP(t, "offer-g729")
	lf := readSDP(t, "offer-lf")
	tests := []struct {
		name       string
		sdp        []byte
		restricted Set
		srtp       bool
		want       Outcome
		allocs     float64
	}{
		{name: "empty set", sdp: offer, want: Unchanged},
		{name: "nothing matched", sdp: offer, restricted: mustSet(t, "opus", "H264", "T38"), want: Unchanged},
		{name: "SRTP check only", sdp: readSDP(t, "offer-savp"), srtp: true, want: Unchanged},
		{name: "nothing left", sdp: offer, restricted: mustSet(t, "PCMU", "PCMA", "G729"), want: NothingLeft},
		{name: "changed: one output slice", sdp: offer, restricted: mustSet(t, "G729"), want: Changed, allocs: 1},
		{name: "changed LF: one output slice", sdp: lf, restricted: mustSet(t, "G729"), want: Changed, allocs: 1},
	}
	for _, tt := range tests {
		allocs := testing.AllocsPerRun(1000, func() {
			if _, res := Filter(tt.sdp, tt.restricted, tt.srtp); res != tt.want {
				t.Fatalf("%s: outcome %v, want %v", tt.name, res, tt.want)
			}
		})
		if allocs != tt.allocs {
			t.Errorf("%s: %v allocs/op, want %v", tt.name, allocs, tt.allocs)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	var got []string
	for o := Outcome(0); o <= numOutcomes; o++ {
		got = append(got, o.String())
	}
	want := []string{"unchanged", "changed", "nothing_left", "no_srtp", "malformed", "unknown"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func BenchmarkFilter(b *testing.B) {
	offer := readSDP(b, "offer-g729") // PCMU, PCMA, G729 + telephone-event
	for _, bb := range []struct {
		name string
		set  Set
	}{
		{"changed", mustSet(b, "G729")},
		{"unchanged", mustSet(b, "opus", "H264")},
		{"empty", Set{}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(offer)))
			for b.Loop() {
				Filter(offer, bb.set, false)
			}
		})
	}
}

package sdpfilter

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzFilter feeds SDP and restriction sets to Filter. It must never panic
// or modify its input; every outcome but Changed returns the input itself;
// a Changed output ends its lines in CRLF, parses again, and filtering it
// again with the same set changes nothing.
func FuzzFilter(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.sdp"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, names := range [][]string{{"G729"}, {"PCMU", "PCMA", "G729"}, {"opus", "H264", "T38"}} {
			f.Add(data, mustSet(f, names...).bits, false)
		}
		f.Add(data, uint32(0), true)
	}
	all := uint32(1)<<len(known) - 1
	f.Fuzz(func(t *testing.T, data []byte, bits uint32, srtp bool) {
		set := Set{bits: bits & all}
		orig := bytes.Clone(data)
		out, res := Filter(data, set, srtp)
		if !bytes.Equal(data, orig) {
			t.Fatal("Filter modified its input")
		}
		if res >= numOutcomes {
			t.Fatalf("outcome %d", res)
		}
		if res != Changed {
			if !sameSlice(out, data) {
				t.Fatalf("%v: got a new slice, want the input itself", res)
			}
			return
		}
		if bytes.Contains(bytes.ReplaceAll(out, []byte("\r\n"), nil), []byte("\n")) || !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("output has lines not ending in CRLF:\n%q", out)
		}
		if again, res := Filter(out, set, srtp); res != Unchanged || !sameSlice(again, out) {
			t.Fatalf("filtering the output again: %v, want unchanged\nin:  %q\nout: %q", res, data, out)
		}
		// The output keeps every line of the input that is not an m= line
		// or an a=rtpmap/fmtp/rtcp-fb line, in order.
		var kept [][]byte
		for off := 0; off < len(data); {
			line, next := nextLine(data, off)
			off = next
			if !bytes.HasPrefix(line, []byte("m=")) && attrPT(line) < 0 {
				kept = append(kept, line)
			}
		}
		var got [][]byte
		for off := 0; off < len(out); {
			line, next := nextLine(out, off)
			off = next
			if !bytes.HasPrefix(line, []byte("m=")) && attrPT(line) < 0 {
				got = append(got, line)
			}
		}
		if len(got) != len(kept) {
			t.Fatalf("output has %d other lines, input %d\nin:  %q\nout: %q", len(got), len(kept), data, out)
		}
		for i := range got {
			if !bytes.Equal(got[i], kept[i]) {
				t.Fatalf("line %q became %q", kept[i], got[i])
			}
		}
	})
}

package sdpfilter

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSet(t *testing.T) {
	tests := []struct {
		names   []string
		want    []string // Names()
		wantErr string
	}{
		{names: nil, want: nil},
		{names: []string{"G729"}, want: []string{"G729"}},
		{names: []string{" g729 ", "OPUS", "Telephone-Event", "t38"}, want: []string{"G729", "opus", "telephone-event", "T38"}},
		{names: []string{"PCMA", "pcma"}, want: []string{"PCMA"}},
		{names: Known(), want: Known()},
		{names: []string{"PCMU", "G729A"}, wantErr: `codecs[1]: "G729A": unknown codec`},
		{names: []string{"mp3"}, wantErr: `codecs[0]: "mp3": unknown codec`},
		{names: []string{""}, wantErr: `codecs[0]: "": unknown codec`},
	}
	for _, tt := range tests {
		s, err := ParseSet(tt.names)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseSet(%q) error %v, want %q", tt.names, err, tt.wantErr)
			}
			if !s.Empty() {
				t.Errorf("ParseSet(%q) returned a non-empty Set with an error", tt.names)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSet(%q): %v", tt.names, err)
			continue
		}
		if diff := cmp.Diff(tt.want, s.Names()); diff != "" {
			t.Errorf("ParseSet(%q).Names() (-want +got):\n%s", tt.names, diff)
		}
		if s.Empty() != (len(tt.want) == 0) {
			t.Errorf("ParseSet(%q).Empty() = %v", tt.names, s.Empty())
		}
	}
}

func TestSetHas(t *testing.T) {
	s := mustSet(t, "G729", "opus", "AMR")
	for name, want := range map[string]bool{
		"G729": true, "g729": true, "G729A": true, "g729a": true, "OPUS": true, "AMR": true,
		"AMR-WB": false, "PCMU": false, "G729D": false, "": false, "opus/48000": false,
	} {
		if got := s.Has(name); got != want {
			t.Errorf("Has(%q) = %v, want %v", name, got, want)
		}
	}
	if (Set{}).Has("PCMU") || !(Set{}).Empty() {
		t.Error("the zero Set is not empty")
	}
	if a, b := mustSet(t, "opus", "G729"), mustSet(t, "g729", "OPUS"); a != b {
		t.Error("Sets with the same codecs are not equal")
	}
	if got := s.String(); got != "G729,opus,AMR" {
		t.Errorf("String() = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { s.Has("telephone-event") }); n != 0 {
		t.Errorf("Has allocates %v times", n)
	}
}

// TestKnown pins the bit of each codec: Sets may be kept (in a snapshot)
// across code versions only if the order never changes, and the static
// payload type table uses these positions.
func TestKnown(t *testing.T) {
	want := []string{"PCMU", "PCMA", "G722", "G723", "G726-32", "G728", "G729", "GSM",
		"iLBC", "opus", "speex", "AMR", "AMR-WB", "telephone-event", "H261", "H263", "H264", "VP8", "VP9", "T38"}
	if diff := cmp.Diff(want, Known()); diff != "" {
		t.Errorf("Known() (-want +got):\n%s", diff)
	}
	for idx, name := range map[int]string{idxPCMU: "PCMU", idxPCMA: "PCMA", idxG722: "G722", idxG723: "G723",
		idxG728: "G728", idxG729: "G729", idxGSM: "GSM", idxH261: "H261", idxH263: "H263"} {
		if known[idx] != name {
			t.Errorf("bit %d is %s, want %s", idx, known[idx], name)
		}
	}
	static := map[int]string{0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 15: "G728", 18: "G729", 31: "H261", 34: "H263"}
	for pt := -1; pt < 128; pt++ {
		got := ""
		if idx := staticIndex(pt); idx >= 0 {
			got = known[idx]
		}
		if got != static[pt] {
			t.Errorf("static payload type %d is %q, want %q", pt, got, static[pt])
		}
	}
}

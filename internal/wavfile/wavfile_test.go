package wavfile

import (
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	pcm := make([]byte, 16000) // one second
	for i := range pcm {
		pcm[i] = byte(i)
	}
	f := Encode(pcm)
	if len(f) != 44+len(pcm) {
		t.Fatalf("file of %d bytes, want %d", len(f), 44+len(pcm))
	}
	got, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(pcm) {
		t.Fatal("samples changed")
	}
	if d := Duration(got); d != time.Second {
		t.Fatalf("duration %v", d)
	}
}

func TestParseNamesWhatIsWrong(t *testing.T) {
	stereo := Encode(make([]byte, 8))
	stereo[22] = 2
	cd := Encode(make([]byte, 8))
	cd[24], cd[25], cd[26] = 0x44, 0xAC, 0 // 44100
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"text":   {[]byte("hello, not audio"), "not a RIFF/WAVE"},
		"stereo": {stereo, "2 channels"},
		"44.1k":  {cd, "44100 Hz"},
		"nodata": {Encode(nil)[:36], "no data chunk"},
	} {
		if _, err := Parse(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one saying %q", name, err, c.want)
		}
	}
}

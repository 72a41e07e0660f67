package prompts

import (
	"encoding/binary"
	"io/fs"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// constants lists every exported prompt name.
var constants = []string{
	Greeting, MailboxFull, EnterMailbox, EnterPIN, WrongPIN, TooManyAttempts,
	NoMailbox, YouHave, NewMessages, NewMessage, SavedMessages, SavedMessage,
	And, NoMessages, MainMenu, MessageMenu, MessageFrom, Received,
	MessageDeleted, MessageSaved, NoMoreMessages, RecordGreeting,
	GreetingSaved, NewPIN, PINChanged, PINInvalid, Goodbye, InvalidChoice,
	Beep,
}

// numberNames returns every name that Number uses for 0..999.
func numberNames() []string {
	seen := map[string]bool{}
	var out []string
	for n := 0; n <= 999; n++ {
		for _, name := range Number(n) {
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return out
}

// parseWAV checks that b is 8 kHz 16-bit mono PCM with the canonical 44-byte
// header and returns its samples.
func parseWAV(t *testing.T, name string, b []byte) []int16 {
	t.Helper()
	if len(b) < 44 {
		t.Fatalf("%s: %d bytes, shorter than a WAV header", name, len(b))
	}
	le := binary.LittleEndian
	checks := []struct {
		what      string
		got, want any
	}{
		{"RIFF tag", string(b[0:4]), "RIFF"},
		{"RIFF size", le.Uint32(b[4:8]), uint32(len(b) - 8)},
		{"WAVE tag", string(b[8:12]), "WAVE"},
		{"fmt tag", string(b[12:16]), "fmt "},
		{"fmt size", le.Uint32(b[16:20]), uint32(16)},
		{"format", le.Uint16(b[20:22]), uint16(1)},
		{"channels", le.Uint16(b[22:24]), uint16(1)},
		{"sample rate", le.Uint32(b[24:28]), uint32(8000)},
		{"byte rate", le.Uint32(b[28:32]), uint32(16000)},
		{"block align", le.Uint16(b[32:34]), uint16(2)},
		{"bits per sample", le.Uint16(b[34:36]), uint16(16)},
		{"data tag", string(b[36:40]), "data"},
		{"data size", le.Uint32(b[40:44]), uint32(len(b) - 44)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %s = %v, want %v", name, c.what, c.got, c.want)
		}
	}
	if len(b)%2 != 0 {
		t.Errorf("%s: odd file length %d", name, len(b))
	}
	samples := make([]int16, (len(b)-44)/2)
	for i := range samples {
		samples[i] = int16(le.Uint16(b[44+2*i:]))
	}
	return samples
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

// edges returns the seconds of silence before and after the sound in s:
// 10 ms windows whose RMS is under -45 dBFS.
func edges(s []int16) (lead, trail float64) {
	const win = 80
	first, last := -1, -1
	for i := 0; i+win <= len(s); i += win {
		if rms(s[i:i+win]) > 32768*math.Pow(10, -45.0/20) {
			if first < 0 {
				first = i
			}
			last = i + win
		}
	}
	if first < 0 {
		return float64(len(s)) / 8000, float64(len(s)) / 8000
	}
	return float64(first) / 8000, float64(len(s)-last) / 8000
}

func TestPromptFiles(t *testing.T) {
	for _, name := range append(append([]string{}, constants...), numberNames()...) {
		t.Run(name, func(t *testing.T) {
			s := parseWAV(t, name, Get(name))
			if d := float64(len(s)) / 8000; d < 0.2 || d > 12 {
				t.Errorf("%s: %.3f s long, want 0.2 s to 12 s", name, d)
			}
			// About -40 dBFS; speech here is near -20 dBFS.
			if r := rms(s); r < 300 {
				t.Errorf("%s: RMS %.0f, too quiet", name, r)
			}
			if lead, trail := edges(s); lead > 0.15 || trail > 0.15 {
				t.Errorf("%s: %.2f s of silence before, %.2f s after; want ≤ 0.15 s",
					name, lead, trail)
			}
		})
	}
}

// TestNoStrayFiles checks that every embedded file is a named prompt.
func TestNoStrayFiles(t *testing.T) {
	want := append(append([]string{}, constants...), numberNames()...)
	for i := range want {
		want[i] += ".wav"
	}
	got, err := fs.Glob(files, "*")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("embedded files\n%v\nwant\n%v", got, want)
	}
}

func TestNumber(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, "digit_0"},
		{7, "digit_7"},
		{10, "num_10"},
		{13, "num_13"},
		{19, "num_19"},
		{20, "num_20"},
		{21, "num_20 digit_1"},
		{25, "num_20 digit_5"},
		{40, "num_40"},
		{99, "num_90 digit_9"},
		{100, "digit_1 num_100"},
		{101, "digit_1 num_100 digit_1"},
		{110, "digit_1 num_100 num_10"},
		{115, "digit_1 num_100 num_15"},
		{200, "digit_2 num_100"},
		{342, "digit_3 num_100 num_40 digit_2"},
		{999, "digit_9 num_100 num_90 digit_9"},
	}
	for _, tt := range tests {
		if got := strings.Join(Number(tt.n), " "); got != tt.want {
			t.Errorf("Number(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"Get unknown":  func() { Get("no_such_prompt") },
		"Get empty":    func() { Get("") },
		"Number(-1)":   func() { Number(-1) },
		"Number(1000)": func() { Number(1000) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

// goertzel returns the power of s at frequency f for sample rate rate.
func goertzel(s []int16, f, rate float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*f/rate)
	var s1, s2 float64
	for _, v := range s {
		s0 := float64(v) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

func TestBeep(t *testing.T) {
	s := parseWAV(t, Beep, Get(Beep))
	if len(s) != 4000 {
		t.Errorf("beep: %d samples, want 4000 (0.5 s)", len(s))
	}
	best, bestPower := 0.0, -1.0
	for f := 50.0; f < 4000; f += 5 {
		if p := goertzel(s, f, 8000); p > bestPower {
			best, bestPower = f, p
		}
	}
	if math.Abs(best-1000) > 20 {
		t.Errorf("beep: dominant frequency %.0f Hz, want 1000 ± 20 Hz", best)
	}
	var peak float64
	for _, v := range s {
		peak = math.Max(peak, math.Abs(float64(v)))
	}
	if db := 20 * math.Log10(peak/32768); math.Abs(db+6) > 0.5 {
		t.Errorf("beep: peak %.2f dBFS, want -6", db)
	}
}

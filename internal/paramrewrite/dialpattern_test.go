package paramrewrite

import "testing"

func TestDialPattern(t *testing.T) {
	tests := []struct {
		pattern, in, want string
	}{
		{"e164", "442071234567", "442071234567"},
		{"e164", "+442071234567", "442071234567"},
		{"e164", "00442071234567", "00442071234567"},
		{"", "+15551234567", "15551234567"},
		{"international", "00442071234567", "442071234567"},
		{"international", "+442071234567", "442071234567"},
		{"international", "02071234567", "02071234567"},
		{"national:44", "02071234567", "442071234567"},
		{"national:44", "00331234567", "331234567"},
		{"national:44", "+331234567", "331234567"},
		{"national:44", "442071234567", "442071234567"},
		{"national:44", "1001", "1001"}, // an extension
		{"national:44", "0", "0"},
		{"national:1", "05551234567", "15551234567"},
		{"none", "+442071234567", "+442071234567"},
		{"none", "00442071234567", "00442071234567"},
	}
	for _, tt := range tests {
		p, err := ParseDialPattern(tt.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tt.pattern, err)
		}
		got, changed := p.Apply(tt.in)
		if got != tt.want || changed != (got != tt.in) {
			t.Errorf("%s.Apply(%q) = %q, %v; want %q", tt.pattern, tt.in, got, changed, tt.want)
		}
		if tt.pattern != "" && p.String() != tt.pattern {
			t.Errorf("%q: String() = %q", tt.pattern, p.String())
		}
	}
	for _, bad := range []string{"E164", "national", "national:", "national:0", "national:4444", "national:4a", `^00\d+$`} {
		if _, err := ParseDialPattern(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if a := testing.AllocsPerRun(100, func() { DialInternational.Apply("00442071234567") }); a != 0 {
		t.Errorf("international Apply allocates %.0f times", a)
	}
}

package digest

import (
	"strings"
	"testing"
)

func TestParseAlgorithm(t *testing.T) {
	tests := []struct {
		in   string
		want Algorithm
		ok   bool
	}{
		{"MD5", MD5, true},
		{"md5", MD5, true},
		{"SHA-256", SHA256, true},
		{"sha-256", SHA256, true},
		{"SHA-512-256", SHA512_256, true},
		{"", 0, false},
		{"MD5-sess", 0, false},
		{"SHA-512", 0, false},
		{"SHA256", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseAlgorithm(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseAlgorithm(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && !strings.EqualFold(got.String(), tt.in) {
			t.Errorf("%v.String() = %q, want %q in some case", got, got.String(), tt.in)
		}
	}
	if s := Algorithm(0).String(); s != "Algorithm(0)" {
		t.Errorf("Algorithm(0).String() = %q", s)
	}
}

func TestCheckHA1(t *testing.T) {
	md5 := HA1(MD5, "alice", "example.com", "secret123")
	sha := HA1(SHA256, "alice", "example.com", "secret123")
	tests := []struct {
		alg  Algorithm
		ha1  string
		want string
	}{
		{MD5, md5, ""},
		{MD5, strings.ToUpper(md5), ""},
		{SHA256, sha, ""},
		{SHA512_256, sha, ""}, // same length: form only
		{MD5, sha, "digest: MD5 HA1 has 64 characters, want 32"},
		{SHA256, md5, "digest: SHA-256 HA1 has 32 characters, want 64"},
		{MD5, "", "digest: MD5 HA1 has 0 characters, want 32"},
		{MD5, md5[:31] + "g", "digest: MD5 HA1 is not hex"},
		{0, md5, "digest: invalid algorithm 0"},
	}
	for _, tt := range tests {
		err := CheckHA1(tt.alg, tt.ha1)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("CheckHA1(%v, %d chars) = %q, want %q", tt.alg, len(tt.ha1), got, tt.want)
		}
	}
}

func TestDummyHA1(t *testing.T) {
	for _, alg := range []Algorithm{MD5, SHA256, SHA512_256} {
		d := DummyHA1(alg)
		if err := CheckHA1(alg, d); err != nil {
			t.Errorf("DummyHA1(%v): %v", alg, err)
		}
		if d != DummyHA1(alg) {
			t.Errorf("DummyHA1(%v) changed between calls", alg)
		}
		if d == strings.Repeat("0", len(d)) {
			t.Errorf("DummyHA1(%v) is all zeros", alg)
		}
	}
	if DummyHA1(0) != "" {
		t.Error("DummyHA1(0) is not empty")
	}
}

func TestVerifyBadHA1(t *testing.T) {
	c, err := ParseCredentials(`Digest username="alice", realm="example.com", nonce="n", uri="sip:example.com", response="` + md5Resp + `"`)
	if err != nil {
		t.Fatal(err)
	}
	for _, ha1 := range []string{"", "abc", strings.Repeat("g", 32), HA1(SHA256, "a", "b", "c")} {
		if got := Verify(&c, "REGISTER", ha1); got != BadHA1 {
			t.Errorf("Verify(ha1 %q) = %v, want BadHA1", ha1, got)
		}
	}
	c.Algorithm = 0
	if got := Verify(&c, "REGISTER", HA1(MD5, "a", "b", "c")); got != BadResponse {
		t.Errorf("Verify(invalid algorithm) = %v, want BadResponse", got)
	}
}

func TestResultString(t *testing.T) {
	seen := map[string]bool{}
	for r := BadResponse; r <= BadHA1; r++ {
		s := r.String()
		if s == "" || s == "unknown" || seen[s] {
			t.Errorf("Result(%d).String() = %q", r, s)
		}
		seen[s] = true
	}
	if Result(200).String() != "unknown" {
		t.Error("Result(200).String() is not unknown")
	}
}

func TestHA1PanicsOnInvalidAlgorithm(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("HA1(0, …) did not panic")
		}
	}()
	HA1(0, "a", "b", "c")
}

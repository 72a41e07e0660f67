package digest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

func TestNewNonces(t *testing.T) {
	tests := []struct {
		name     string
		secret   []byte
		lifetime time.Duration
		previous [][]byte
		wantErr  string
		wantLife time.Duration
	}{
		{"default lifetime", testSecret, 0, nil, "", DefaultNonceLifetime},
		{"lifetime", testSecret, 30 * time.Second, nil, "", 30 * time.Second},
		{"short secret", testSecret[:31], 0, nil, "digest: nonce secret has 31 bytes, want at least 32", 0},
		{"short previous", testSecret, 0, [][]byte{testSecret, {1}}, "digest: previous nonce secret 1 has 1 bytes, want at least 32", 0},
		{"negative lifetime", testSecret, -time.Second, nil, "digest: nonce lifetime -1s: must be at least 1s", 0},
		{"sub-second lifetime", testSecret, time.Millisecond, nil, "digest: nonce lifetime 1ms: must be at least 1s", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := NewNonces(tt.secret, tt.lifetime, tt.previous...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Fatalf("error = %q, want %q", got, tt.wantErr)
			}
			if err == nil && n.Lifetime() != tt.wantLife {
				t.Errorf("Lifetime = %v, want %v", n.Lifetime(), tt.wantLife)
			}
		})
	}
}

func TestNonceFormat(t *testing.T) {
	n := newTestNonces(t)
	nonce := n.Mint(testNow, testSrc)
	if len(nonce) != NonceLen || NonceLen != 36 {
		t.Fatalf("nonce %q has length %d, want NonceLen = 36", nonce, len(nonce))
	}
	if again := n.Mint(testNow, testSrc); again == nonce {
		t.Errorf("two challenges to one source in one second got the same nonce %q", nonce)
	}
	// Independent recomputation with crypto/hmac.
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil {
		t.Fatal(err)
	}
	if ts := binary.BigEndian.Uint64(raw); ts != uint64(testNow.Unix()) {
		t.Errorf("timestamp = %d, want %d", ts, testNow.Unix())
	}
	m := hmac.New(sha256.New, testSecret)
	m.Write([]byte{nonceVersion})
	m.Write(raw[:11])
	a := testSrc.As16()
	m.Write(a[:])
	if want := m.Sum(nil)[:16]; !bytes.Equal(raw[11:], want) {
		t.Errorf("MAC = %x, want HMAC-SHA256 %x", raw[11:], want)
	}
	// Keys longer than a SHA-256 block are hashed first, as RFC 2104 says.
	long := bytes.Repeat([]byte{7}, 100)
	ln, err := NewNonces(long, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = base64.RawURLEncoding.DecodeString(ln.Mint(testNow, testSrc))
	m = hmac.New(sha256.New, long)
	m.Write([]byte{nonceVersion})
	m.Write(raw[:11])
	m.Write(a[:])
	if want := m.Sum(nil)[:16]; !bytes.Equal(raw[11:], want) {
		t.Errorf("MAC (long key) = %x, want %x", raw[11:], want)
	}
}

func TestNonceCheck(t *testing.T) {
	n := newTestNonces(t)
	life := n.Lifetime()
	nonce := n.Mint(testNow, testSrc)

	other, err := NewNonces(bytes.Repeat([]byte{0xa5}, 32), 0)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := NewNonces(bytes.Repeat([]byte{0xa5}, 32), 0, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := NewNonces(testSecret, 0) // another node with the same key
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	tests := []struct {
		name  string
		n     *Nonces
		nonce string
		at    time.Duration
		src   netip.Addr
		want  NonceState
	}{
		{"now", n, nonce, 0, testSrc, NonceValid},
		{"one second later", n, nonce, time.Second, testSrc, NonceValid},
		{"at lifetime", n, nonce, life, testSrc, NonceValid},
		{"after lifetime", n, nonce, life + time.Second, testSrc, NonceStale},
		{"a day later", n, nonce, 24 * time.Hour, testSrc, NonceStale},
		{"clock skew", n, nonce, -clockSkew, testSrc, NonceValid},
		{"from the future", n, nonce, -clockSkew - time.Second, testSrc, NonceInvalid},
		{"other source", n, nonce, 0, otherSrc, NonceInvalid},
		{"ipv4-mapped source", n, nonce, 0, netip.AddrFrom16(testSrc.As16()), NonceValid},
		{"ipv6 source", n, n.Mint(testNow, netip.MustParseAddr("2001:db8::1")), 0, netip.MustParseAddr("2001:db8::1"), NonceValid},
		{"other secret", other, nonce, 0, testSrc, NonceInvalid},
		{"other node same secret", peer, nonce, 0, testSrc, NonceValid},
		{"previous secret", rotated, nonce, 0, testSrc, NonceValid},
		{"previous secret stale", rotated, nonce, life + time.Second, testSrc, NonceStale},
		{"tampered timestamp", n, flip(nonce, 9), 0, testSrc, NonceInvalid},
		{"tampered mac", n, flip(nonce, 20), 0, testSrc, NonceInvalid},
		{"tampered last", n, flip(nonce, 31), 0, testSrc, NonceInvalid},
		{"truncated", n, nonce[:31], 0, testSrc, NonceInvalid},
		{"extended", n, nonce + "A", 0, testSrc, NonceInvalid},
		{"padding", n, nonce[:30] + "==", 0, testSrc, NonceInvalid},
		{"std base64", n, nonce[:31] + "+", 0, testSrc, NonceInvalid},
		{"empty", n, "", 0, testSrc, NonceInvalid},
		{"vector nonce", n, "ea9c8e88df84f1cec4341ae6cbe5a359", 0, testSrc, NonceInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.n.Check(tt.nonce, testNow.Add(tt.at), tt.src); got != tt.want {
				t.Errorf("Check = %v, want %v", got, tt.want)
			}
		})
	}
	// Timestamp re-signed by someone without the key: still invalid.
	raw, _ := base64.RawURLEncoding.DecodeString(nonce)
	binary.BigEndian.PutUint64(raw, uint64(testNow.Add(time.Hour).Unix()))
	if got := n.Check(base64.RawURLEncoding.EncodeToString(raw), testNow.Add(time.Hour), testSrc); got != NonceInvalid {
		t.Errorf("moved timestamp: Check = %v, want NonceInvalid", got)
	}
	// Every single-character change is caught.
	for i := range nonce {
		if got := n.Check(flip(nonce, i), testNow, testSrc); got != NonceInvalid {
			t.Errorf("change at %d: Check = %v, want NonceInvalid", i, got)
		}
	}
}

func TestNonceStateString(t *testing.T) {
	for s, want := range map[NonceState]string{NonceInvalid: "invalid", NonceValid: "valid", NonceStale: "stale", 9: "invalid"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}

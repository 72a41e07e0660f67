package digest

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"strings"
)

// Algorithm is a digest hash algorithm as named in the algorithm= parameter.
// The zero Algorithm is not valid.
type Algorithm uint8

// Algorithms supported. The -sess variants are not: sipward never offers them.
const (
	MD5        Algorithm = iota + 1 // "MD5", RFC 2617; for old clients only (RFC 8760 §3)
	SHA256                          // "SHA-256", RFC 7616 / RFC 8760
	SHA512_256                      // "SHA-512-256" (FIPS 180-4 SHA-512/256, not truncated SHA-512)
)

// String returns the token used in headers: "MD5", "SHA-256" or "SHA-512-256".
func (a Algorithm) String() string {
	switch a {
	case MD5:
		return "MD5"
	case SHA256:
		return "SHA-256"
	case SHA512_256:
		return "SHA-512-256"
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// Valid reports whether a is one of the supported algorithms.
func (a Algorithm) Valid() bool { return a >= MD5 && a <= SHA512_256 }

// HexLen is the length of a's digests in hex: 32 for MD5, 64 otherwise.
func (a Algorithm) HexLen() int {
	if a == MD5 {
		return 2 * md5.Size
	}
	return 2 * sha256.Size
}

// ParseAlgorithm parses an algorithm token, ignoring case. The -sess variants
// and unknown names are not accepted. An absent algorithm parameter means MD5;
// that default is the caller's (ParseCredentials applies it).
func ParseAlgorithm(s string) (Algorithm, bool) {
	switch {
	case strings.EqualFold(s, "MD5"):
		return MD5, true
	case strings.EqualFold(s, "SHA-256"):
		return SHA256, true
	case strings.EqualFold(s, "SHA-512-256"):
		return SHA512_256, true
	}
	return 0, false
}

// HA1 returns H(username ":" realm ":" password) in lower-case hex: the value
// stored per user and algorithm instead of the password. It panics if alg is
// not valid.
func HA1(alg Algorithm, username, realm, password string) string {
	b := make([]byte, 0, len(username)+len(realm)+len(password)+2)
	b = append(b, username...)
	b = append(b, ':')
	b = append(b, realm...)
	b = append(b, ':')
	b = append(b, password...)
	var out [64]byte
	return string(sumHex(out[:0], alg, b))
}

// CheckHA1 reports whether ha1 has the form of a stored HA1 for alg: hex of
// alg's length. Run it when user data is loaded, so that Check never meets a
// malformed value. The error never contains the value.
func CheckHA1(alg Algorithm, ha1 string) error {
	if !alg.Valid() {
		return fmt.Errorf("digest: invalid algorithm %d", uint8(alg))
	}
	if len(ha1) != alg.HexLen() {
		return fmt.Errorf("digest: %s HA1 has %d characters, want %d", alg, len(ha1), alg.HexLen())
	}
	for i := 0; i < len(ha1); i++ {
		if unhex(ha1[i]) < 0 {
			return fmt.Errorf("digest: %s HA1 is not hex", alg)
		}
	}
	return nil
}

// dummyHA1 holds one random HA1 per algorithm, drawn at start-up, so that no
// one can compute a response that matches it.
var dummyHA1 = func() (d [SHA512_256 + 1]string) {
	for a := MD5; a <= SHA512_256; a++ {
		b := make([]byte, a.HexLen()/2)
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
		d[a] = hex.EncodeToString(b)
	}
	return d
}()

// DummyHA1 returns a random HA1 for alg, fixed for the life of the process and
// known to no one. Verify unknown users against it so that they cost the same
// time as known ones; Authenticator.Check does this itself when given "".
// It returns "" if alg is not valid.
func DummyHA1(alg Algorithm) string {
	if !alg.Valid() {
		return ""
	}
	return dummyHA1[alg]
}

// sumHex appends the lower-case hex digest of b under alg to dst. With a dst of
// enough capacity (64 bytes) it does not allocate.
func sumHex(dst []byte, alg Algorithm, b []byte) []byte {
	var sum [32]byte
	n := 0
	switch alg {
	case MD5:
		s := md5.Sum(b)
		n = copy(sum[:], s[:])
	case SHA256:
		sum = sha256.Sum256(b)
		n = len(sum)
	case SHA512_256:
		sum = sha512.Sum512_256(b)
		n = len(sum)
	default:
		panic("digest: invalid algorithm " + alg.String())
	}
	return hex.AppendEncode(dst, sum[:n])
}

// unhex returns the value of hex digit c, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// Package secret holds sipward's handling of secrets: sealing credentials
// that sipward itself must send (AES-256-GCM with a key from config),
// generating passwords and API tokens from crypto/rand, hashing API tokens
// (SHA-256: they are long random strings) and low-entropy secrets such as
// voicemail PINs and UI passwords (argon2id).
//
// Nothing here logs; callers never log what passes through it.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/argon2"
)

// KeySize is the size of a sealing key in bytes (AES-256).
const KeySize = 32

// Sealer encrypts and decrypts small secrets at rest with AES-256-GCM.
// A sealed value is nonce || ciphertext || tag.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: new gcm: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext; an empty plaintext seals to nil.
func (s *Sealer) Seal(plaintext string) ([]byte, error) {
	if plaintext == "" {
		return nil, nil
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secret: nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, []byte(plaintext), nil), nil
}

// Open decrypts a value made by Seal; nil opens to "".
func (s *Sealer) Open(sealed []byte) (string, error) {
	if len(sealed) == 0 {
		return "", nil
	}
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return "", errors.New("secret: sealed value too short")
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return "", errors.New("secret: sealed value does not open with this key")
	}
	return string(pt), nil
}

// LoadOrCreateKey reads a hex key from path, or creates the file (mode 0600)
// with a new random key when it does not exist.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("secret: key file %q: want %d hex-encoded bytes", path, KeySize)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("secret: read key file: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secret: new key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("secret: create key file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("secret: write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("secret: write key file: %w", err)
	}
	return key, nil
}

// ParseKey decodes a hex key given in config.
func ParseKey(s string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("secret: key must be %d hex-encoded bytes (%d hex digits)", KeySize, 2*KeySize)
	}
	return key, nil
}

// Alphabet of generated passwords: letters and digits only, since some SIP
// phones mishandle symbols in their configuration pages; length makes up for it.
const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// GeneratedPasswordLen is the length of generated SIP passwords: 24 characters
// of a 56-letter alphabet, about 139 bits.
const GeneratedPasswordLen = 24

// GeneratePassword returns a random password from r (crypto/rand.Reader in
// production) of GeneratedPasswordLen characters, without modulo bias.
func GeneratePassword(r io.Reader) (string, error) {
	out := make([]byte, 0, GeneratedPasswordLen)
	buf := make([]byte, 64)
	limit := byte(256 - 256%len(passwordAlphabet))
	for len(out) < GeneratedPasswordLen {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("secret: random: %w", err)
		}
		for _, b := range buf {
			if b >= limit {
				continue
			}
			out = append(out, passwordAlphabet[int(b)%len(passwordAlphabet)])
			if len(out) == GeneratedPasswordLen {
				break
			}
		}
	}
	return string(out), nil
}

// TokenPrefix starts every API token, so that leaked tokens are recognisable.
const TokenPrefix = "swd_"

// GenerateToken returns a new API token: TokenPrefix and 32 random bytes.
func GenerateToken(r io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("secret: random: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken returns the hex SHA-256 of an API token, as stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// argon2id parameters (RFC 9106 second recommendation, lowered memory for an edge box).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns an argon2id hash of a low-entropy secret in the PHC
// string format ($argon2id$v=19$m=…,t=…,p=…$salt$hash).
func HashPassword(r io.Reader, password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("secret: random: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches a HashPassword hash.
func VerifyPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Package secret seals the sensitive values Strait keeps in its state
// topic (passwords and keys in link configs) with AES-256-GCM, under a key
// from the daemon's configuration, so that a reader of the topic sees none.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// prefix marks a sealed value; the version lets the format change. v1
// values are bound to nothing; v2 values are bound to where they belong
// (see Binding) and open only there.
const (
	prefix   = "sealed:v"
	prefixV1 = "sealed:v1:"
	prefixV2 = "sealed:v2:"
)

// Binding names where a sealed value belongs: it is authenticated with the
// value (GCM additional data), so a value copied elsewhere in the state
// topic, under another link or another config, does not open there. That
// closes an oracle: whoever can write the state topic cannot have Strait
// unseal a password into a config it reports, or send it somewhere else.
func Binding(parts ...string) string { return strings.Join(parts, "\x00") }

// Sealer seals values with one key and opens them with that key or, while
// the key is being changed, with previous ones. It is safe for concurrent
// use.
type Sealer struct {
	aead     cipher.AEAD
	previous []cipher.AEAD
}

// New returns a Sealer for a 32-byte key. Values sealed with one of the
// previous keys still open (see Unseal); new values are sealed with key.
func New(key []byte, previous ...[]byte) (*Sealer, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	s := &Sealer{aead: aead}
	for i, k := range previous {
		a, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("previous key %d: %w", i+1, err)
		}
		s.previous = append(s.previous, a)
	}
	return s, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secrets key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ParseKey reads a key written as 64 hex digits or 44 characters of
// base64, as `strait auth new-secrets-key` prints it.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	return nil, errors.New("secrets key must be 32 bytes as 64 hex digits or base64")
}

// LoadKey reads a key from a file (see ParseKey); the file should be
// readable by the daemon's user only.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseKey(string(b))
}

// NewKey returns a random key, base64.
func NewKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Seal encrypts v, bound to binding (see Binding).
func (s *Sealer) Seal(v, binding string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := s.aead.Seal(nonce, nonce, []byte(v), []byte(binding))
	return prefixV2 + base64.StdEncoding.EncodeToString(out), nil
}

// Sealed reports whether v is a sealed value.
func Sealed(v string) bool { return strings.HasPrefix(v, prefix) }

// Open decrypts a value Seal returned for binding, with the key or a
// previous one.
func (s *Sealer) Open(v, binding string) (string, error) {
	plain, _, err := s.Unseal(v, binding)
	return plain, err
}

// Unseal is Open that also reports whether v should be sealed again: it
// was sealed with a previous key, or in the v1 format, which binds it to
// nothing.
func (s *Sealer) Unseal(v, binding string) (plain string, stale bool, err error) {
	var aad []byte
	switch {
	case strings.HasPrefix(v, prefixV2):
		aad, v = []byte(binding), v[len(prefixV2):]
	case strings.HasPrefix(v, prefixV1):
		stale, v = true, v[len(prefixV1):]
	default:
		return "", false, errors.New("value is not sealed")
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", false, errors.New("sealed value is malformed")
	}
	// GCM authenticates: a wrong key or another binding fails to open, it
	// never yields garbage, so trying each key in turn is safe.
	nonce, box := b[:s.aead.NonceSize()], b[s.aead.NonceSize():]
	if out, err := s.aead.Open(nil, nonce, box, aad); err == nil {
		return string(out), stale, nil
	}
	for _, a := range s.previous {
		if out, err := a.Open(nil, nonce, box, aad); err == nil {
			return string(out), true, nil
		}
	}
	return "", false, errors.New("sealed value does not open with this secrets key (nor a previous one), or it was moved from where it was sealed")
}

package auth

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// API key secrets are kept only as salted, stretched hashes:
// pbkdf2-sha256$<iterations>$<salt>$<hash>, salt and hash in unpadded
// base64. `strait auth hash-secret` makes one.

const (
	hashScheme     = "pbkdf2-sha256"
	hashIterations = 100_000
	hashLen        = 32
)

type secretHash struct {
	iter int
	salt []byte
	hash []byte
}

func parseHash(s string) (secretHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 4 || parts[0] != hashScheme {
		return secretHash{}, errors.New("secret_hash must be pbkdf2-sha256$<iterations>$<salt>$<hash> (see strait auth hash-secret)")
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 10_000 || iter > 10_000_000 {
		return secretHash{}, errors.New("secret_hash: iterations must be between 10000 and 10000000")
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[2])
	hash, err2 := base64.RawStdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(hash) != hashLen {
		return secretHash{}, errors.New("secret_hash: bad salt or hash")
	}
	return secretHash{iter: iter, salt: salt, hash: hash}, nil
}

// HashSecret returns the stored form of an API key secret.
func HashSecret(secret string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	h, err := pbkdf2.Key(sha256.New, secret, salt, hashIterations, hashLen)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s$%d$%s$%s", hashScheme, hashIterations, base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(h)), nil
}

// dummyHash is verified against when the key is unknown, so that a wrong
// key costs as much time as a wrong secret.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashSecret("strait-dummy")
	return h
})

// verifySecret reports whether secret matches stored, in constant time.
func verifySecret(stored, secret string) bool {
	if stored == "" {
		stored = dummyHash()
	}
	h, err := parseHash(stored)
	if err != nil {
		h, _ = parseHash(dummyHash())
	}
	got, err2 := pbkdf2.Key(sha256.New, secret, h.salt, h.iter, hashLen)
	return err == nil && err2 == nil && subtle.ConstantTimeCompare(got, h.hash) == 1
}

// verified remembers credentials that recently verified, so that a
// client's every request does not pay for the key stretching again. Only
// successes are kept, under a hash, for a few minutes; a new Guard (a
// reload, a rotated key) starts empty.
type verified struct {
	mu sync.Mutex
	m  map[[32]byte]time.Time
}

const (
	verifiedTTL = 5 * time.Minute
	verifiedMax = 4096
)

func verifiedKey(key, stored, secret string) [32]byte {
	return sha256.Sum256([]byte(key + "\x00" + stored + "\x00" + secret))
}

func (v *verified) has(k [32]byte, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	exp, ok := v.m[k]
	return ok && now.Before(exp)
}

func (v *verified) add(k [32]byte, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= verifiedMax {
		v.m = map[[32]byte]time.Time{}
	}
	v.m[k] = now.Add(verifiedTTL)
}

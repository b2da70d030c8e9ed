package secret

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseKey(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	const plain = `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p@ss";`
	a, err := s.Seal(plain, "here")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Seal(plain, "here")
	if a == b {
		t.Fatal("sealing twice gives the same text: the nonce is not random")
	}
	if !Sealed(a) || strings.Contains(a, "p@ss") {
		t.Fatalf("sealed value %q", a)
	}
	for _, v := range []string{a, b} {
		got, err := s.Open(v, "here")
		if err != nil || got != plain {
			t.Fatalf("Open = %q, %v", got, err)
		}
	}
	other, _ := New(make([]byte, 32))
	tampered := a[:len(a)-2] + "AA"
	if tampered == a {
		tampered = a[:len(a)-2] + "BB"
	}
	for name, v := range map[string]string{"other key": a, "tampered": tampered, "not sealed": plain, "truncated": a[:len(prefixV2)+4], "moved": a} {
		sealer, binding := s, "here"
		switch name {
		case "other key":
			sealer = other
		case "moved":
			binding = "elsewhere" // the value copied under another link or config
		}
		if got, err := sealer.Open(v, binding); err == nil {
			t.Errorf("%s: opened to %q", name, got)
		}
	}
}

func TestParseKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	tests := []struct {
		in string
		ok bool
	}{
		{hex.EncodeToString(raw), true},
		{"  " + hex.EncodeToString(raw) + "\n", true},
		{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", true},
		{hex.EncodeToString(raw[:16]), false},
		{"", false},
		{"not a key", false},
	}
	for _, tc := range tests {
		got, err := ParseKey(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseKey(%q): %v", tc.in, err)
		}
		if tc.ok && string(got) != string(raw) {
			t.Errorf("ParseKey(%q) = %x", tc.in, got)
		}
	}
	if _, err := New(raw[:16]); err == nil {
		t.Error("New took a 16-byte key")
	}
}

// TestPreviousKeys: while the key changes, values sealed with a previous
// key open and are reported stale; new values are sealed with the current
// key; a key that is neither opens nothing.
func TestPreviousKeys(t *testing.T) {
	key := func(b byte) []byte {
		k := make([]byte, 32)
		k[0] = b
		return k
	}
	oldS, _ := New(key(1))
	sealedOld, err := oldS.Seal("old secret", "b")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(key(2), key(1), key(3))
	if err != nil {
		t.Fatal(err)
	}
	sealedNew, _ := s.Seal("new secret", "b")
	tests := []struct {
		name      string
		s         *Sealer
		v         string
		want      string
		wantStale bool
		wantErr   bool
	}{
		{"old value, previous key given", s, sealedOld, "old secret", true, false},
		{"new value", s, sealedNew, "new secret", false, false},
		{"new value, old key only", oldS, sealedNew, "", false, true},
		{"old value, current key only", mustNew(t, key(2)), sealedOld, "", false, true},
		{"unbound v1 value: opens, to be sealed again", s, v1Seal(t, key(2), "v1 secret"), "v1 secret", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, stale, err := tc.s.Unseal(tc.v, "b")
			if (err != nil) != tc.wantErr || got != tc.want || stale != tc.wantStale {
				t.Fatalf("Unseal = %q, stale %v, err %v; want %q, stale %v, err %v", got, stale, err, tc.want, tc.wantStale, tc.wantErr)
			}
		})
	}
	if _, err := New(key(2), make([]byte, 16)); err == nil || !strings.Contains(err.Error(), "previous key 1") {
		t.Fatalf("a short previous key: %v", err)
	}
}

// v1Seal seals v in the v1 format, bound to nothing, as Strait did before
// values were bound.
func v1Seal(t *testing.T, key []byte, v string) string {
	t.Helper()
	a, err := newAEAD(key)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, a.NonceSize())
	return prefixV1 + base64.StdEncoding.EncodeToString(a.Seal(nonce, nonce, []byte(v), nil))
}

func mustNew(t *testing.T, key []byte) *Sealer {
	t.Helper()
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

package secret

import (
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
	a, err := s.Seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Seal(plain)
	if a == b {
		t.Fatal("sealing twice gives the same text: the nonce is not random")
	}
	if !Sealed(a) || strings.Contains(a, "p@ss") {
		t.Fatalf("sealed value %q", a)
	}
	for _, v := range []string{a, b} {
		got, err := s.Open(v)
		if err != nil || got != plain {
			t.Fatalf("Open = %q, %v", got, err)
		}
	}
	other, _ := New(make([]byte, 32))
	tampered := a[:len(a)-2] + "AA"
	if tampered == a {
		tampered = a[:len(a)-2] + "BB"
	}
	for name, v := range map[string]string{"other key": a, "tampered": tampered, "not sealed": plain, "truncated": a[:len(prefix)+4]} {
		sealer := s
		if name == "other key" {
			sealer = other
		}
		if got, err := sealer.Open(v); err == nil {
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

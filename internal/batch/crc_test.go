package batch

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

func TestCombineCRC(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sizes := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {40, 1}, {40, 1 << 20}, {3, 7}, {1000, 12345}} {
		a := make([]byte, sizes[0])
		b := make([]byte, sizes[1])
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		want := crc32.Checksum(append(append([]byte{}, a...), b...), crcTable)
		got := CombineCRC(crc32.Checksum(a, crcTable), crc32.Checksum(b, crcTable), int64(len(b)))
		if got != want {
			t.Fatalf("sizes %v: combined %08x, direct %08x", sizes, got, want)
		}
	}
}

func TestRewriteWith(t *testing.T) {
	b := smallBatch(t, 10, 5, 1000, CodecLZ4)
	raw := append([]byte(nil), b.Raw...)
	rc := RecordsCRC(raw)
	if !CheckCRCWith(raw, rc) || !CheckCRC(raw) {
		t.Fatal("a valid batch fails the CRC check")
	}
	raw[HeaderSize+2] ^= 1
	if CheckCRCWith(raw, RecordsCRC(raw)) {
		t.Fatal("a flipped record byte passes")
	}
	raw[HeaderSize+2] ^= 1
	other := append([]byte(nil), raw...)
	RewriteWith(raw, Producer{ID: 9, Epoch: 2, Sequence: 77}, true, rc)
	Rewrite(other, Producer{ID: 9, Epoch: 2, Sequence: 77}, true)
	if string(raw) != string(other) || !CheckCRC(raw) {
		t.Fatal("RewriteWith and Rewrite disagree")
	}
}

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

func TestRewriteCarryCRC(t *testing.T) {
	b := smallBatch(t, 10, 5, 1000, CodecLZ4)
	carried := append([]byte(nil), b.Raw...)
	computed := append([]byte(nil), b.Raw...)
	RewriteCarryCRC(carried, Producer{ID: 9, Epoch: 2, Sequence: 77}, true)
	Rewrite(computed, Producer{ID: 9, Epoch: 2, Sequence: 77}, true)
	if string(carried) != string(computed) || !CheckCRC(carried) {
		t.Fatal("RewriteCarryCRC and Rewrite disagree")
	}
	// A corrupt record byte stays detectable after the carried rewrite.
	corrupt := append([]byte(nil), b.Raw...)
	corrupt[len(corrupt)-1] ^= 0x10
	RewriteCarryCRC(corrupt, Producer{ID: 9, Epoch: 2, Sequence: 77}, false)
	if CheckCRC(corrupt) {
		t.Fatal("a corrupt batch has a valid CRC after RewriteCarryCRC")
	}
}

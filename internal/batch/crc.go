package batch

import (
	"encoding/binary"
	"hash/crc32"
)

// A batch's CRC covers its attributes, the rest of the header and the
// records. Rewriting the producer fields changes only the header part, so
// the new CRC can be had from the old one without reading the records (the
// bulk of the bytes) at all: see RewriteCarryCRC and CombineCRC.

// RewriteCarryCRC is Rewrite without reading the records: the new CRC is
// derived from the batch's own CRC and the change in the header. CRCs are
// linear, so crc(H'||R) = crc(H||R) ^ zeros(crc(H) ^ crc(H'), len(R)). The
// records are not checked: if they do not match the CRC the batch came
// with, the new CRC does not match them either, and the broker the batch
// is produced to refuses it as corrupt. Nothing corrupt gets through, and
// the copy reads no record byte.
func RewriteCarryCRC(raw []byte, p Producer, transactional bool) {
	old := binary.BigEndian.Uint32(raw[offCRC:])
	before := crc32.Checksum(raw[offAttributes:HeaderSize], crcTable)
	rewriteHeader(raw, p, transactional)
	after := crc32.Checksum(raw[offAttributes:HeaderSize], crcTable)
	binary.BigEndian.PutUint32(raw[offCRC:], old^CombineCRC(before^after, 0, int64(len(raw)-HeaderSize)))
}

// castagnoliReversed is the CRC-32C polynomial, bit-reversed as the table
// driven implementation uses it.
const castagnoliReversed = 0x82f63b78

// CombineCRC returns the CRC-32C of A followed by B, given the CRC of A,
// the CRC of B and the length of B. CRCs are linear: appending n zero bytes
// to A is a fixed 32x32 GF(2) matrix applied to crcA, and B's bytes add
// crcB. The matrices for 2^k zero bytes are computed once (zeroOps); a
// length applies the ones of its set bits.
func CombineCRC(crcA, crcB uint32, lenB int64) uint32 {
	for k := 0; lenB != 0; k, lenB = k+1, lenB>>1 {
		if lenB&1 != 0 {
			crcA = gf2Times(&zeroOps[k], crcA)
		}
	}
	return crcA ^ crcB
}

// zeroOps[k] appends 2^k zero bytes to a CRC-32C.
var zeroOps = func() (ops [64][32]uint32) {
	var bit, two, four [32]uint32
	bit[0] = castagnoliReversed // one zero bit
	for n, row := 1, uint32(1); n < 32; n, row = n+1, row<<1 {
		bit[n] = row
	}
	gf2Square(&two, &bit)
	gf2Square(&four, &two)
	gf2Square(&ops[0], &four) // eight zero bits: one byte
	for k := 1; k < len(ops); k++ {
		gf2Square(&ops[k], &ops[k-1])
	}
	return ops
}()

func gf2Times(mat *[32]uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[32]uint32) {
	for n := 0; n < 32; n++ {
		square[n] = gf2Times(mat, mat[n])
	}
}

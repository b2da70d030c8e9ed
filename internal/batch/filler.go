package batch

import (
	"encoding/binary"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// MaxFillerRecords caps the records in one filler batch. A million null
// records are 7 MB before compression and a few hundred bytes after, well
// under any broker's max.message.bytes, and a broker that decompresses to
// validate (Apache Kafka does) spends a few milliseconds on it.
const MaxFillerRecords = 1 << 20

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
)

func encoder() *zstd.Encoder {
	zstdOnce.Do(func() {
		// Errors only come from invalid options, which are fixed here.
		zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	})
	return zstdEnc
}

// Filler builds one zstd-compressed batch of n records with a null key and
// a null value, all stamped with timestamp ts. Filler takes up offsets on a
// destination partition so that the next real batch lands on the offset it
// has at the source; the records are deleted (DeleteRecords) or compacted
// away afterwards. n must be in [1, MaxFillerRecords].
func Filler(n int32, ts int64) []byte {
	body := make([]byte, 0, int(n)*8)
	for i := int32(0); i < n; i++ {
		body = appendNullRecord(body, i)
	}
	compressed := encoder().EncodeAll(body, make([]byte, 0, 256))
	return assemble(compressed, CodecZstd, n, ts)
}

// appendNullRecord appends a record with offset delta d, timestamp delta 0,
// null key, null value and no headers.
func appendNullRecord(dst []byte, d int32) []byte {
	var tmp [binary.MaxVarintLen32]byte
	nd := binary.PutVarint(tmp[:], int64(d))
	// attributes, timestamp delta, offset delta, key length, value length, header count
	size := 1 + 1 + nd + 1 + 1 + 1
	dst = binary.AppendVarint(dst, int64(size))
	dst = append(dst, 0)              // attributes
	dst = binary.AppendVarint(dst, 0) // timestamp delta
	dst = append(dst, tmp[:nd]...)    // offset delta
	dst = binary.AppendVarint(dst, -1)
	dst = binary.AppendVarint(dst, -1)
	dst = binary.AppendVarint(dst, 0)
	return dst
}

// assemble wraps encoded records into a v2 batch with n records all at
// timestamp ts, no producer, and a valid CRC.
func assemble(records []byte, codec Codec, n int32, ts int64) []byte {
	raw := make([]byte, HeaderSize+len(records))
	binary.BigEndian.PutUint64(raw[offBaseOffset:], 0)
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-lengthPrefix))
	binary.BigEndian.PutUint32(raw[offLeaderEpoch:], 0xffffffff)
	raw[offMagic] = 2
	binary.BigEndian.PutUint16(raw[offAttributes:], uint16(codec))
	binary.BigEndian.PutUint32(raw[offLastOffsetDelta:], uint32(n-1))
	binary.BigEndian.PutUint64(raw[offBaseTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(raw[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(raw[offProducerID:], 0xffffffffffffffff)
	binary.BigEndian.PutUint16(raw[offProducerEpoch:], 0xffff)
	binary.BigEndian.PutUint32(raw[offBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(raw[offRecordCount:], uint32(n))
	copy(raw[HeaderSize:], records)
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))
	return raw
}

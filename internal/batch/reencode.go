package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Re-encoding: most batches are copied as they are, but a few cannot be
// produced again byte for byte. A compacted batch skips offsets (a broker
// refuses a batch whose record count does not match its offset range), and
// a LogAppendTime batch would be stamped again by the destination. Those
// are decompressed, fixed and compressed again with the same codec.

// Record is one record of a batch with its fields as they are encoded.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	// Key and Value are nil for a null key or value.
	Key   []byte
	Value []byte
	// Headers is the encoded header section: count, then the headers.
	Headers []byte
}

var errRecord = errors.New("malformed record")

// minRecordSize is the smallest encoded record: a length, attributes, a
// timestamp delta, an offset delta, key and value lengths and a header
// count, one byte each.
const minRecordSize = 7

// ParseRecords decodes n records from uncompressed record bytes. n comes
// from a batch header, which a broker or a corrupt fetch may get wrong:
// it is checked against the bytes before anything is sized by it.
func ParseRecords(data []byte, n int32) ([]Record, error) {
	if n < 0 || int64(n) > int64(len(data))/minRecordSize {
		return nil, fmt.Errorf("%w: %d records cannot fit in %d bytes", errRecord, n, len(data))
	}
	out := make([]Record, 0, n)
	for i := int32(0); i < n; i++ {
		size, k := binary.Varint(data)
		if k <= 0 || size < 0 || int64(len(data)-k) < size {
			return nil, fmt.Errorf("%w: record %d length", errRecord, i)
		}
		rec, err := parseRecord(data[k : k+int(size)])
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		out = append(out, rec)
		data = data[k+int(size):]
	}
	return out, nil
}

func parseRecord(b []byte) (Record, error) {
	var r Record
	if len(b) < 1 {
		return r, errRecord
	}
	r.Attributes = int8(b[0])
	b = b[1:]
	var k int
	if r.TimestampDelta, k = binary.Varint(b); k <= 0 {
		return r, errRecord
	}
	b = b[k:]
	od, k := binary.Varint(b)
	if k <= 0 {
		return r, errRecord
	}
	r.OffsetDelta = int32(od)
	b = b[k:]
	var err error
	if r.Key, b, err = readBytes(b); err != nil {
		return r, err
	}
	if r.Value, b, err = readBytes(b); err != nil {
		return r, err
	}
	r.Headers = b // count and headers, to the end of the record
	if _, k = binary.Varint(b); k <= 0 {
		return r, errRecord
	}
	return r, nil
}

// readBytes reads a varint-length byte field; -1 is null.
func readBytes(b []byte) ([]byte, []byte, error) {
	n, k := binary.Varint(b)
	if k <= 0 || n < -1 || int64(len(b)-k) < n {
		return nil, nil, errRecord
	}
	b = b[k:]
	if n < 0 {
		return nil, b, nil
	}
	return b[:n:n], b[n:], nil
}

// AppendRecord encodes r.
func AppendRecord(dst []byte, r Record) []byte {
	body := make([]byte, 0, 16+len(r.Key)+len(r.Value)+len(r.Headers))
	body = append(body, byte(r.Attributes))
	body = binary.AppendVarint(body, r.TimestampDelta)
	body = binary.AppendVarint(body, int64(r.OffsetDelta))
	body = appendBytes(body, r.Key)
	body = appendBytes(body, r.Value)
	if len(r.Headers) == 0 {
		body = binary.AppendVarint(body, 0)
	} else {
		body = append(body, r.Headers...)
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// MaxDecompressedBatch bounds what one source batch may decompress to
// when Strait has to read its records (merging, densifying, stamping).
// A source broker's bytes are input like any other: a few kilobytes of
// zstd or gzip can claim gigabytes. Batches copied as they are are never
// decompressed, so the bound applies only to those Strait re-encodes.
const MaxDecompressedBatch = 128 << 20

// ErrTooLarge is returned when a batch, or a merge of batches, would
// decompress past MaxDecompressedBatch.
var ErrTooLarge = kgo.ErrMaxDecompress

// decompressor and mergeLimit are variables only so that tests can lower
// the bound.
var (
	decompressor = boundedDecompressor(MaxDecompressedBatch)
	mergeLimit   = MaxDecompressedBatch
)

// boundedDecompressor is kgo's decompressor with a bound of max bytes.
// kgo.DefaultDecompressor allows 2 GiB; a bounded one is only built by a
// client, which is closed at once (it never connects) while its
// decompressor stays usable.
func boundedDecompressor(max int) kgo.Decompressor {
	cl, err := kgo.NewClient(kgo.MaxDecompressBatchBytes(max))
	if err != nil {
		panic(err) // no seeds, no network: cannot fail
	}
	defer cl.Close()
	return cl.OptValue(kgo.WithDecompressor).(kgo.Decompressor)
}

// Records decodes the records of a v2 batch, decompressing them.
func (b *Batch) Records() ([]Record, error) {
	if b.Magic != 2 || len(b.Raw) < HeaderSize {
		return nil, errors.New("not a v2 batch")
	}
	data, err := decompressor.Decompress(b.Raw[HeaderSize:], codecTypeOf(b.Codec()))
	if err != nil {
		return nil, fmt.Errorf("decompress %d batch: %w", b.Codec(), err)
	}
	return ParseRecords(data, b.RecordCount)
}

// encode builds a v2 batch from h's header fields and records, compressed
// with codec. Base offset is 0 and the CRC valid; producer fields are h's.
func encode(h *Header, attrs int16, records []Record, codec Codec) ([]byte, error) {
	var plain []byte
	for _, r := range records {
		plain = AppendRecord(plain, r)
	}
	return encodePlain(h, attrs, plain, int32(len(records)), codec)
}

// encodePlain is encode for records already encoded, n of them.
func encodePlain(h *Header, attrs int16, plain []byte, n int32, codec Codec) ([]byte, error) {
	body := plain
	if codec != CodecNone {
		c, err := compressorFor(codec)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		out, used := c.Compress(&buf, plain)
		codec = Codec(used) // the compressor may fall back to none
		body = out
	}
	attrs = attrs&^AttrCompressionMask | int16(codec)
	raw := make([]byte, HeaderSize+len(body))
	binary.BigEndian.PutUint64(raw[offBaseOffset:], 0)
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-lengthPrefix))
	binary.BigEndian.PutUint32(raw[offLeaderEpoch:], 0xffffffff)
	raw[offMagic] = 2
	binary.BigEndian.PutUint16(raw[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(raw[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	binary.BigEndian.PutUint64(raw[offBaseTimestamp:], uint64(h.BaseTimestamp))
	binary.BigEndian.PutUint64(raw[offMaxTimestamp:], uint64(h.MaxTimestamp))
	binary.BigEndian.PutUint64(raw[offProducerID:], uint64(h.ProducerID))
	binary.BigEndian.PutUint16(raw[offProducerEpoch:], uint16(h.ProducerEpoch))
	binary.BigEndian.PutUint32(raw[offBaseSequence:], uint32(h.BaseSequence))
	binary.BigEndian.PutUint32(raw[offRecordCount:], uint32(n))
	copy(raw[HeaderSize:], body)
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))
	return raw, nil
}

// compressors holds one kgo compressor per codec; they are safe for
// concurrent use and pool their buffers.
var compressors sync.Map // Codec -> kgo.Compressor

func compressorFor(c Codec) (kgo.Compressor, error) {
	if v, ok := compressors.Load(c); ok {
		return v.(kgo.Compressor), nil
	}
	comp, err := kgo.DefaultCompressor(codecOf(c))
	if err != nil {
		return nil, err
	}
	v, _ := compressors.LoadOrStore(c, comp)
	return v.(kgo.Compressor), nil
}

func codecTypeOf(c Codec) kgo.CompressionCodecType { return kgo.CompressionCodecType(c) }

func codecOf(c Codec) kgo.CompressionCodec {
	switch c {
	case CodecGzip:
		return kgo.GzipCompression()
	case CodecSnappy:
		return kgo.SnappyCompression()
	case CodecLZ4:
		return kgo.Lz4Compression()
	case CodecZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// FillerKey is the key of the records that fill offsets a compacted source
// no longer has. They are tombstones (null value) of a key no application
// uses, so a table-like reader deletes a key it never had, and the
// destination's own cleaner removes them.
var FillerKey = []byte("__strait.filler")

// Densify rewrites a batch whose records skip offsets (a compacted batch)
// so that every offset it covers has a record: the missing ones become
// tombstones under FillerKey, stamped with the timestamp of the record
// before them. The surviving records, their timestamps, the codec and the
// attributes are kept. It also returns how many fillers it added.
func Densify(b *Batch) ([]byte, int, error) {
	if b.LastOffsetDelta < 0 || b.LastOffsetDelta >= MaxDensifySpan {
		return nil, 0, fmt.Errorf("batch at %d spans %d offsets; Strait fills the gaps of batches spanning at most %d", b.BaseOffset, int64(b.LastOffsetDelta)+1, MaxDensifySpan)
	}
	recs, err := b.Records()
	if err != nil {
		return nil, 0, err
	}
	// Encoded straight to bytes: a filler is a few bytes, where a Record
	// would be a hundred.
	var plain []byte
	var ts int64
	next := int32(0)
	fillers := 0
	add := func(upTo int32) {
		for ; next < upTo; next++ {
			plain = AppendRecord(plain, Record{TimestampDelta: ts, OffsetDelta: next, Key: FillerKey})
			fillers++
		}
	}
	for _, r := range recs {
		if r.OffsetDelta < next || r.OffsetDelta > b.LastOffsetDelta {
			return nil, 0, fmt.Errorf("batch at %d: record offset delta %d out of order", b.BaseOffset, r.OffsetDelta)
		}
		add(r.OffsetDelta)
		plain = AppendRecord(plain, r)
		ts = r.TimestampDelta
		next = r.OffsetDelta + 1
	}
	add(b.LastOffsetDelta + 1)
	raw, err := encodePlain(&b.Header, b.Attributes, plain, b.LastOffsetDelta+1, b.Codec())
	return raw, fillers, err
}

// MaxDensifySpan bounds the offsets one batch may span for Densify: a
// compacted source batch of that many offsets came from a batch of at
// least that many records (7 MiB at the very least), and the fillers cost
// memory per offset.
const MaxDensifySpan = 1 << 21

// StampLogAppendTime rewrites a LogAppendTime batch as a CreateTime batch
// whose every record carries the time the source broker appended it (the
// batch's max timestamp), which is the timestamp source readers see.
func StampLogAppendTime(b *Batch) ([]byte, error) {
	recs, err := b.Records()
	if err != nil {
		return nil, err
	}
	for i := range recs {
		recs[i].TimestampDelta = 0
	}
	h := b.Header
	h.BaseTimestamp = h.MaxTimestamp
	return encode(&h, b.Attributes&^AttrLogAppendTime, recs, b.Codec())
}

// MaxKeyedFillerRecords caps the records of one FillerKeyed batch.
const MaxKeyedFillerRecords = 1 << 16

// FillerKeyed builds a batch of n tombstones under FillerKey at timestamp
// ts: filler for a compacted destination, which refuses null keys. n must
// be in [1, MaxKeyedFillerRecords].
func FillerKeyed(n int32, ts int64) []byte {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{OffsetDelta: int32(i), Key: FillerKey}
	}
	h := Header{LastOffsetDelta: n - 1, BaseTimestamp: ts, MaxTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	raw, err := encode(&h, 0, recs, CodecZstd)
	if err != nil {
		panic(err) // only an invalid codec fails, and zstd is fixed here
	}
	return raw
}

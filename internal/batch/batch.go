// Package batch reads and rewrites Kafka record batches as raw bytes.
//
// Strait copies batches from a source partition to a destination partition
// without decompressing them. This package knows the fixed v2 batch header
// (KIP-98) well enough to split a fetched record set into batches, check what
// kind of batch each one is, and rewrite the few header fields a producer must
// own (base offset, leader epoch, producer id, epoch and sequence) before the
// bytes are produced again. It also builds the filler batches used to align
// offsets. Everything here is pure and allocation-light: it is on the copy path.
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Byte offsets of the v2 record batch header fields.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// HeaderSize is the size of a v2 batch header; records follow it.
	HeaderSize = 61

	// lengthPrefix is the part of the batch before and including the
	// length field; Length counts the bytes after it.
	lengthPrefix = 12
)

// Attribute bits of a v2 batch.
const (
	AttrCompressionMask = 0x07
	AttrLogAppendTime   = 0x08
	AttrTransactional   = 0x10
	AttrControl         = 0x20
)

// Codec is the compression codec named in a batch's attributes.
type Codec int8

// Compression codecs, as numbered by Kafka.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrTruncated reports a record set that ends inside a batch header. Fetch
// responses may end with a partial batch; Split stops before it instead.
var ErrTruncated = errors.New("record batch truncated")

// Header is the decoded fixed header of one batch. For legacy (magic 0 or 1)
// message sets only BaseOffset, Length and Magic are meaningful.
type Header struct {
	BaseOffset      int64
	Length          int32
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     int32
}

// LastOffset is the offset of the last record the batch covers.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset that follows the batch.
func (h *Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Codec is the batch's compression codec.
func (h *Header) Codec() Codec { return Codec(h.Attributes & AttrCompressionMask) }

// Transactional reports whether the batch belongs to a transaction.
func (h *Header) Transactional() bool { return h.Attributes&AttrTransactional != 0 }

// Control reports whether the batch is a control batch (a transaction marker).
func (h *Header) Control() bool { return h.Attributes&AttrControl != 0 }

// LogAppendTime reports whether the broker stamped the batch's timestamps.
func (h *Header) LogAppendTime() bool { return h.Attributes&AttrLogAppendTime != 0 }

// Dense reports whether the batch holds one record per offset it covers.
// Compaction leaves batches whose records skip offsets; brokers refuse to
// take such a batch from a producer.
func (h *Header) Dense() bool { return h.LastOffsetDelta == h.RecordCount-1 }

// ParseHeader decodes the header at the start of b.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < offMagic+1 {
		return h, ErrTruncated
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[offBaseOffset:]))
	h.Length = int32(binary.BigEndian.Uint32(b[offLength:]))
	h.LeaderEpoch = int32(binary.BigEndian.Uint32(b[offLeaderEpoch:]))
	h.Magic = int8(b[offMagic])
	if h.Magic != 2 {
		return h, nil
	}
	if len(b) < HeaderSize {
		return h, ErrTruncated
	}
	h.CRC = binary.BigEndian.Uint32(b[offCRC:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[offAttributes:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]))
	h.BaseTimestamp = int64(binary.BigEndian.Uint64(b[offBaseTimestamp:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[offBaseSequence:]))
	h.RecordCount = int32(binary.BigEndian.Uint32(b[offRecordCount:]))
	return h, nil
}

// Batch is one complete batch inside a record set: its header and its raw
// bytes (a sub-slice of the record set, not a copy).
type Batch struct {
	Header
	Raw []byte
}

// Split cuts a fetched record set into complete batches. A partial batch at
// the end (fetch responses are cut at a byte limit) is dropped silently; a
// length that cannot be right is an error.
func Split(records []byte) ([]Batch, error) {
	var out []Batch
	for len(records) >= lengthPrefix {
		length := int32(binary.BigEndian.Uint32(records[offLength:]))
		if length < offMagic+1-lengthPrefix {
			return out, fmt.Errorf("record batch length %d is too small", length)
		}
		total := lengthPrefix + int(length)
		if total > len(records) {
			break // partial trailing batch
		}
		h, err := ParseHeader(records[:total])
		if err != nil {
			return out, err
		}
		out = append(out, Batch{Header: h, Raw: records[:total:total]})
		records = records[total:]
	}
	return out, nil
}

// CheckCRC reports whether a v2 batch's CRC matches its contents.
func CheckCRC(raw []byte) bool {
	if len(raw) < HeaderSize {
		return false
	}
	return binary.BigEndian.Uint32(raw[offCRC:]) == crc32.Checksum(raw[offAttributes:], crcTable)
}

// Producer is the producer identity and sequence written into a batch.
// A zero-value-like Producer{ID: -1, Epoch: -1, Sequence: -1} produces
// without idempotence.
type Producer struct {
	ID       int64
	Epoch    int16
	Sequence int32
}

// Rewrite prepares a v2 batch, in place, for producing: base offset 0 (a
// broker refuses anything else), leader epoch -1, the transactional bit set
// or cleared as asked, the producer fields from p, and a fresh CRC. The
// records, codec and timestamps are not touched.
func Rewrite(raw []byte, p Producer, transactional bool) {
	rewriteHeader(raw, p, transactional)
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))
}

// rewriteHeader sets the fields Rewrite sets, all but the CRC.
func rewriteHeader(raw []byte, p Producer, transactional bool) {
	binary.BigEndian.PutUint64(raw[offBaseOffset:], 0)
	binary.BigEndian.PutUint32(raw[offLeaderEpoch:], 0xffffffff)
	attrs := binary.BigEndian.Uint16(raw[offAttributes:])
	if transactional {
		attrs |= AttrTransactional
	} else {
		attrs &^= AttrTransactional
	}
	binary.BigEndian.PutUint16(raw[offAttributes:], attrs)
	binary.BigEndian.PutUint64(raw[offProducerID:], uint64(p.ID))
	binary.BigEndian.PutUint16(raw[offProducerEpoch:], uint16(p.Epoch))
	binary.BigEndian.PutUint32(raw[offBaseSequence:], uint32(p.Sequence))
}

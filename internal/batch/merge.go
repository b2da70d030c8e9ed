package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Merging: a broker takes one batch per partition per produce request, so
// a source written in small batches (a few records each) would cost one
// produce round trip per handful of records. Consecutive small batches are
// merged into one: the same records at the same offsets with the same
// timestamps, keys, values and headers, re-encoded under one header.
// Only the batch boundaries change, which no consumer sees.

// Mergeable reports whether b may be merged with its neighbours: a plain
// v2 data batch (not transactional, not a control batch, not LogAppendTime)
// with one record per offset.
func Mergeable(b *Batch) bool {
	return b.Magic == 2 && !b.Transactional() && !b.Control() && !b.LogAppendTime() && b.Dense() && b.RecordCount > 0
}

// Merge re-encodes consecutive mergeable batches as one batch with their
// codec. The batches must be contiguous (each starts where the one before
// ends) and share a codec. The result has base offset 0 and no producer;
// Rewrite sets those before producing.
func Merge(bs []Batch) ([]byte, int32, error) {
	if len(bs) == 0 {
		return nil, 0, errors.New("nothing to merge")
	}
	first := &bs[0]
	codec := first.Codec()
	var plain []byte
	var count int32
	maxTS := first.MaxTimestamp
	for i := range bs {
		b := &bs[i]
		if !Mergeable(b) || b.Codec() != codec {
			return nil, 0, fmt.Errorf("batch at %d cannot be merged", b.BaseOffset)
		}
		if i > 0 && b.BaseOffset != bs[i-1].NextOffset() {
			return nil, 0, fmt.Errorf("batch at %d does not follow the one before", b.BaseOffset)
		}
		data := b.Raw[HeaderSize:]
		if codec != CodecNone {
			var err error
			if data, err = decompressor.Decompress(data, codecTypeOf(codec)); err != nil {
				return nil, 0, fmt.Errorf("decompress batch at %d: %w", b.BaseOffset, err)
			}
		}
		offsetShift := int32(b.BaseOffset - first.BaseOffset)
		tsShift := b.BaseTimestamp - first.BaseTimestamp
		var err error
		if plain, err = appendShifted(plain, data, b.RecordCount, offsetShift, tsShift); err != nil {
			return nil, 0, fmt.Errorf("batch at %d: %w", b.BaseOffset, err)
		}
		if len(plain) > mergeLimit {
			return nil, 0, fmt.Errorf("batches from %d: %w", first.BaseOffset, ErrTooLarge)
		}
		count += b.RecordCount
		maxTS = max(maxTS, b.MaxTimestamp)
	}
	h := Header{
		LastOffsetDelta: count - 1,
		BaseTimestamp:   first.BaseTimestamp,
		MaxTimestamp:    maxTS,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		BaseSequence:    -1,
	}
	raw, err := encodePlain(&h, 0, plain, count, codec)
	return raw, count, err
}

// appendShifted copies n encoded records from data to dst, adding the
// shifts to their offset and timestamp deltas: the only fields that depend
// on the batch a record is in.
func appendShifted(dst, data []byte, n, offsetShift int32, tsShift int64) ([]byte, error) {
	for i := int32(0); i < n; i++ {
		size, k := binary.Varint(data)
		if k <= 0 || size < 0 || int64(len(data)-k) < size {
			return nil, errRecord
		}
		rec := data[k : k+int(size)]
		data = data[k+int(size):]
		if len(rec) < 1 {
			return nil, errRecord
		}
		attrs := rec[0]
		ts, k1 := binary.Varint(rec[1:])
		if k1 <= 0 {
			return nil, errRecord
		}
		od, k2 := binary.Varint(rec[1+k1:])
		if k2 <= 0 {
			return nil, errRecord
		}
		rest := rec[1+k1+k2:] // key, value, headers: unchanged
		var head [1 + 2*binary.MaxVarintLen64]byte
		head[0] = attrs
		hn := 1
		hn += binary.PutVarint(head[hn:], ts+tsShift)
		hn += binary.PutVarint(head[hn:], od+int64(offsetShift))
		dst = binary.AppendVarint(dst, int64(hn+len(rest)))
		dst = append(dst, head[:hn]...)
		dst = append(dst, rest...)
	}
	return dst, nil
}

package verify

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/strait-dev/strait/internal/batch"
)

// Merged runs: Strait copies a run of small plain batches as one batch
// (batch.Merge) with the records' offset and timestamp deltas shifted.

// compareMerged compares a run of small source batches with the one mirror
// batch Strait merged them into: uncompressed, record by record with the
// offset and timestamp deltas shifted; compressed, after decompressing.
func (c *Comparer) compareMerged(ss []batch.Batch, d *batch.Batch, end int64) *Divergence {
	first := &ss[0]
	maxTS, count, plain := first.MaxTimestamp, int32(0), d.Codec() == batch.CodecNone
	for i := range ss {
		maxTS = max(maxTS, ss[i].MaxTimestamp)
		count += ss[i].RecordCount
		plain = plain && ss[i].Codec() == batch.CodecNone
	}
	ok := d.Magic == 2 && !d.Control() && !d.Transactional() && !d.LogAppendTime() &&
		d.RecordCount == count && d.BaseTimestamp == first.BaseTimestamp && d.MaxTimestamp == maxTS
	if !ok || !plain {
		return c.compareRecords(ss, []batch.Batch{*d}, end)
	}
	for i := range ss {
		if !batch.CheckCRC(ss[i].Raw) {
			return diverge(max(ss[i].BaseOffset, c.pos), CodeCorrupt, "the source batch at %d does not match its CRC", ss[i].BaseOffset)
		}
	}
	if !batch.CheckCRC(d.Raw) {
		return diverge(max(d.BaseOffset, c.pos), CodeCorrupt, "the mirror batch at %d does not match its CRC", d.BaseOffset)
	}
	data := d.Raw[batch.HeaderSize:]
	for i := range ss {
		s := &ss[i]
		var err error
		data, err = matchShifted(s, data, int32(s.BaseOffset-first.BaseOffset), s.BaseTimestamp-first.BaseTimestamp)
		if err != nil {
			// A difference: say exactly where and what.
			return c.compareRecords(ss, []batch.Batch{*d}, end)
		}
	}
	if len(data) != 0 {
		return c.compareRecords(ss, []batch.Batch{*d}, end)
	}
	return nil
}

// matchShifted checks that data starts with the records of the
// uncompressed batch s, their offset and timestamp deltas shifted as
// batch.Merge shifts them, and returns the rest of data.
func matchShifted(s *batch.Batch, data []byte, offsetShift int32, tsShift int64) ([]byte, error) {
	src := s.Raw[batch.HeaderSize:]
	for n := int32(0); n < s.RecordCount; n++ {
		sr, rest, err := splitRecord(src)
		if err != nil {
			return nil, err
		}
		src = rest
		dr, rest, err := splitRecord(data)
		if err != nil {
			return nil, err
		}
		data = rest
		if sr.attrs != dr.attrs || sr.ts+tsShift != dr.ts || sr.od+int64(offsetShift) != dr.od || !bytes.Equal(sr.rest, dr.rest) {
			return nil, errDiffer
		}
	}
	return data, nil
}

var errDiffer = fmt.Errorf("records differ")

// rawRecord is an encoded record split where batch.Merge changes it.
type rawRecord struct {
	attrs  byte
	ts, od int64
	rest   []byte // key, value and headers, as encoded
}

func splitRecord(b []byte) (rawRecord, []byte, error) {
	var r rawRecord
	size, k := binary.Varint(b)
	if k <= 0 || size < 1 || int64(len(b)-k) < size {
		return r, nil, errDiffer
	}
	rec, rest := b[k:k+int(size)], b[k+int(size):]
	r.attrs = rec[0]
	ts, k1 := binary.Varint(rec[1:])
	if k1 <= 0 {
		return r, nil, errDiffer
	}
	od, k2 := binary.Varint(rec[1+k1:])
	if k2 <= 0 {
		return r, nil, errDiffer
	}
	r.ts, r.od, r.rest = ts, od, rec[1+k1+k2:]
	return r, rest, nil
}

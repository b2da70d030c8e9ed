package verify

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"

	"github.com/strait-dev/strait/internal/batch"
)

// Record by record: the batches of a span are decompressed and their
// records compared offset by offset. Used where Strait re-encodes a batch
// and where the logs no longer line up batch for batch.

// rec is a record with what a reader sees of it: its offset, its
// timestamp as read (the append time for a LogAppendTime batch), whether
// its batch is transactional and by which producer.
type rec struct {
	off, ts  int64
	r        batch.Record
	control  bool
	commit   bool
	txn, lat bool
	pid      int64
}

// isFiller reports a record Strait writes where the source has none: a
// null value under a null key or batch.FillerKey, without headers.
func (r *rec) isFiller() bool {
	return !r.control && r.r.Value == nil && (r.r.Key == nil || bytes.Equal(r.r.Key, batch.FillerKey)) && noHeaders(r.r.Headers)
}

func noHeaders(h []byte) bool {
	n, k := binary.Varint(h)
	return k > 0 && n == 0
}

// decode returns the records of bs at offsets [from, to), or the
// divergence that makes them unreadable.
func (c *Comparer) decode(bs []batch.Batch, from, to int64, what string) ([]rec, *Divergence) {
	var out []rec
	for i := range bs {
		b := &bs[i]
		at := max(b.BaseOffset, from)
		if b.Magic != 2 {
			return nil, diverge(at, CodeUnreadable, "the %s batch at %d has message format v%d", what, b.BaseOffset, b.Magic)
		}
		if !batch.CheckCRC(b.Raw) {
			return nil, diverge(at, CodeCorrupt, "the %s batch at %d does not match its CRC", what, b.BaseOffset)
		}
		if b.Codec() != batch.CodecNone {
			c.stats.Decompressed++
		}
		rs, err := b.Records()
		if err != nil {
			return nil, diverge(at, CodeUnreadable, "the %s batch at %d: %v", what, b.BaseOffset, err)
		}
		for _, r := range rs {
			o := b.BaseOffset + int64(r.OffsetDelta)
			if o < from || o >= to {
				continue
			}
			x := rec{off: o, ts: b.BaseTimestamp + r.TimestampDelta, r: r, txn: b.Transactional(), lat: b.LogAppendTime(), pid: b.ProducerID}
			if b.LogAppendTime() {
				x.ts = b.MaxTimestamp
			}
			if b.Control() {
				x.control = true
				x.commit = len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:4]) == 1
			}
			out = append(out, x)
		}
	}
	return out, nil
}

// compareRecords compares the records of the source batches ss and the
// mirror batches ds at offsets [pos, end).
func (c *Comparer) compareRecords(ss, ds []batch.Batch, end int64) *Divergence {
	src, div := c.decode(ss, c.pos, end, "source")
	if div != nil {
		return div
	}
	dst, div := c.decode(ds, c.pos, end, "mirror")
	if div != nil {
		return div
	}
	i, j := 0, 0
	for i < len(src) || j < len(dst) {
		so, do := int64(math.MaxInt64), int64(math.MaxInt64)
		if i < len(src) {
			so = src[i].off
		}
		if j < len(dst) {
			do = dst[j].off
		}
		switch {
		case so == do:
			if div := c.comparePair(&src[i], &dst[j]); div != nil {
				return div
			}
			i++
			j++
		case so < do:
			if !c.compacted {
				return diverge(so, CodeMissing, "the mirror has no record at offset %d, where the source has %s", so, describe(&src[i]))
			}
			c.stats.Compacted++
			i++
		default:
			d := &dst[j]
			switch {
			case d.isFiller():
				c.stats.Fillers++
			case c.compacted:
				c.stats.Compacted++
			default:
				return diverge(do, CodeExtra, "the mirror has %s at offset %d, where the source has no record", describe(d), do)
			}
			j++
		}
	}
	return nil
}

// comparePair compares a source record with the mirror record at its
// offset.
func (c *Comparer) comparePair(s, d *rec) *Divergence {
	o := s.off
	switch {
	case s.control != d.control:
		return diverge(o, CodeMarker, "offset %d holds %s on the source, %s on the mirror", o, describe(s), describe(d))
	case s.control:
		if s.commit != d.commit {
			return diverge(o, CodeMarker, "%s on the source, %s on the mirror", markerWord(s.commit), markerWord(d.commit))
		}
		return c.noteMarker(s.pid, d.pid, o)
	case d.isFiller() && !s.isFiller():
		return diverge(o, CodeMissing, "the mirror has a filler record at %d, where the source has %s", o, describe(s))
	case s.txn != d.txn:
		return diverge(o, CodeProducer, "the record at %d is %s on the source and %s on the mirror", o, txnName(s.txn), txnName(d.txn))
	case !sameBytes(s.r.Key, d.r.Key):
		return diverge(o, CodeRecords, "the record at %d has key %s on the source, %s on the mirror", o, quote(s.r.Key), quote(d.r.Key))
	case !sameBytes(s.r.Value, d.r.Value):
		return diverge(o, CodeRecords, "the record at %d has another value on the mirror (%s) than on the source (%s)", o, size(d.r.Value), size(s.r.Value))
	case !bytes.Equal(s.r.Headers, d.r.Headers):
		return diverge(o, CodeRecords, "the record at %d has other headers on the mirror than on the source", o)
	case d.lat:
		return diverge(o, CodeTimestamp, "the record at %d is in a LogAppendTime batch on the mirror: the destination stamped it", o)
	case s.ts != d.ts:
		return diverge(o, CodeTimestamp, "the record at %d has timestamp %d on the source, %d on the mirror", o, s.ts, d.ts)
	case s.txn:
		return c.noteTxnData(s.pid, d.pid, o)
	}
	return nil
}

// sameBytes compares two byte fields, null and empty told apart.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func describe(r *rec) string {
	switch {
	case r.control:
		return markerWord(r.commit)
	case r.isFiller():
		return "a filler record"
	}
	return "a record with key " + quote(r.r.Key)
}

func txnName(t bool) string {
	if t {
		return "transactional"
	}
	return "not transactional"
}

func quote(b []byte) string {
	if b == nil {
		return "null"
	}
	if len(b) > 32 {
		return strconv.Quote(string(b[:32])) + "..."
	}
	return strconv.Quote(string(b))
}

func size(b []byte) string {
	if b == nil {
		return "null"
	}
	return strconv.Itoa(len(b)) + " bytes"
}

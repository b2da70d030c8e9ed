package verify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/batch"
)

// spec describes a batch to build for a test.
type spec struct {
	base      int64
	n         int         // records, dense from offset delta 0
	deltas    []int32     // offset deltas instead of 0..n-1 (compacted)
	lastDelta int32       // with deltas: the batch's last offset delta
	codec     batch.Codec // compression
	attrs     int16       // extra attribute bits
	ts        int64       // base timestamp; records are ts+10*i
	pid       int64       // producer id, -1 by default (0 means -1)
	tag       string      // makes the records' contents unique
	control   *bool       // a marker: commit or abort
	value     func(int) []byte
}

// build encodes s as a raw v2 batch with a valid CRC.
func build(t testing.TB, s spec) batch.Batch {
	t.Helper()
	var plain []byte
	count := s.n
	lastDelta := int32(s.n - 1)
	if s.deltas != nil {
		count = len(s.deltas)
		lastDelta = s.lastDelta
	}
	maxTS := s.ts
	for i := 0; i < count; i++ {
		od := int32(i)
		if s.deltas != nil {
			od = s.deltas[i]
		}
		r := batch.Record{TimestampDelta: int64(od) * 10, OffsetDelta: od, Key: []byte(fmt.Sprintf("k%s-%d", s.tag, s.base+int64(od))), Value: defaultValue(s.tag, s.base+int64(od))}
		if s.value != nil {
			r.Value = s.value(int(od))
		}
		if s.control != nil {
			r = batch.Record{Key: []byte{0, 0, 0, 0}, Value: []byte{0, 0, 0, 0, 0, 0}}
			if *s.control {
				r.Key[3] = 1
			}
		}
		maxTS = max(maxTS, s.ts+r.TimestampDelta)
		plain = batch.AppendRecord(plain, r)
	}
	body := plain
	if s.codec != batch.CodecNone {
		c, err := kgo.DefaultCompressor(codecOpt(s.codec))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		out, used := c.Compress(&buf, plain)
		if batch.Codec(used) != s.codec {
			t.Fatalf("compressor used %d", used)
		}
		body = append([]byte(nil), out...)
	}
	attrs := s.attrs | int16(s.codec)
	if s.control != nil {
		attrs |= batch.AttrControl | batch.AttrTransactional
	}
	pid := s.pid
	if pid == 0 {
		pid = -1
	}
	raw := make([]byte, batch.HeaderSize+len(body))
	binary.BigEndian.PutUint64(raw[0:], uint64(s.base))
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	raw[16] = 2
	binary.BigEndian.PutUint16(raw[21:], uint16(attrs))
	binary.BigEndian.PutUint32(raw[23:], uint32(lastDelta))
	binary.BigEndian.PutUint64(raw[27:], uint64(s.ts))
	binary.BigEndian.PutUint64(raw[35:], uint64(maxTS))
	binary.BigEndian.PutUint64(raw[43:], uint64(pid))
	binary.BigEndian.PutUint16(raw[51:], 0)
	binary.BigEndian.PutUint32(raw[53:], 0)
	binary.BigEndian.PutUint32(raw[57:], uint32(count))
	copy(raw[61:], body)
	sealCRC(raw)
	return parse(t, raw)
}

func sealCRC(raw []byte) {
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
}

func parse(t testing.TB, raw []byte) batch.Batch {
	t.Helper()
	bs, err := batch.Split(raw)
	if err != nil || len(bs) != 1 {
		t.Fatalf("split: %v (%d batches)", err, len(bs))
	}
	return bs[0]
}

func codecOpt(c batch.Codec) kgo.CompressionCodec {
	switch c {
	case batch.CodecGzip:
		return kgo.GzipCompression()
	case batch.CodecSnappy:
		return kgo.SnappyCompression()
	case batch.CodecLZ4:
		return kgo.Lz4Compression()
	case batch.CodecZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// The mirror's side of a batch, made the way the copy makes it: produced
// at base by a broker, which sets the base offset and its leader epoch.

// landed sets what the destination broker sets on a produced batch.
func landed(t testing.TB, raw []byte, base int64) batch.Batch {
	t.Helper()
	binary.BigEndian.PutUint64(raw[0:], uint64(base))
	binary.BigEndian.PutUint32(raw[12:], 7) // the destination's leader epoch
	return parse(t, raw)
}

// copied is a source batch copied as it is by the writer pid (or, for a
// transactional batch, by the replaying producer pid).
func copied(t testing.TB, b batch.Batch, pid int64) batch.Batch {
	t.Helper()
	raw := append([]byte(nil), b.Raw...)
	batch.RewriteCarryCRC(raw, batch.Producer{ID: pid, Epoch: 3, Sequence: 42}, b.Transactional())
	return landed(t, raw, b.BaseOffset)
}

func mergedCopy(t testing.TB, bs ...batch.Batch) batch.Batch {
	t.Helper()
	raw, _, err := batch.Merge(bs)
	if err != nil {
		t.Fatal(err)
	}
	batch.Rewrite(raw, batch.Producer{ID: 9, Epoch: 1, Sequence: 5}, false)
	return landed(t, raw, bs[0].BaseOffset)
}

func densified(t testing.TB, b batch.Batch) batch.Batch {
	t.Helper()
	raw, _, err := batch.Densify(&b)
	if err != nil {
		t.Fatal(err)
	}
	batch.Rewrite(raw, batch.Producer{ID: 9, Epoch: 1, Sequence: 5}, false)
	return landed(t, raw, b.BaseOffset)
}

func stamped(t testing.TB, b batch.Batch) batch.Batch {
	t.Helper()
	raw, err := batch.StampLogAppendTime(&b)
	if err != nil {
		t.Fatal(err)
	}
	batch.Rewrite(raw, batch.Producer{ID: 9, Epoch: 1, Sequence: 5}, false)
	return landed(t, raw, b.BaseOffset)
}

func filler(t testing.TB, base int64, n int32) batch.Batch {
	t.Helper()
	return landed(t, batch.Filler(n, 1000), base)
}

func fillerKeyed(t testing.TB, base int64, n int32) batch.Batch {
	t.Helper()
	return landed(t, batch.FillerKeyed(n, 1000), base)
}

// marker is a transaction marker of producer pid at base.
func marker(t testing.TB, base, pid int64, commit bool) batch.Batch {
	t.Helper()
	return build(t, spec{base: base, n: 1, pid: pid, control: &commit, ts: 5000})
}

// mutate returns a copy of b with fn applied to its raw bytes and the CRC
// made valid again: a write that a broker would take.
func mutate(t testing.TB, b batch.Batch, fn func(raw []byte)) batch.Batch {
	t.Helper()
	raw := append([]byte(nil), b.Raw...)
	fn(raw)
	sealCRC(raw)
	return parse(t, raw)
}

// at shifts a mirror batch to another base offset, as a broker would place
// it after a missing batch.
func at(t testing.TB, b batch.Batch, base int64) batch.Batch {
	t.Helper()
	return landed(t, append([]byte(nil), b.Raw...), base)
}

func endOf(bs []batch.Batch) int64 {
	if len(bs) == 0 {
		return 0
	}
	return bs[len(bs)-1].NextOffset()
}

func defaultValue(tag string, off int64) []byte {
	return []byte(fmt.Sprintf("value %s %d %s", tag, off, bytes.Repeat([]byte("x"), 40)))
}

package batch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/testutil"
)

// castagnoli is the test's own CRC-32C table, so that CRCs written by the
// test helpers do not depend on the code under test.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchSpec describes a v2 batch for mkBatch. Records are uncompressed.
type batchSpec struct {
	base        int64
	epoch       int32
	attrs       int16
	firstTS     int64
	producerID  int64
	prodEpoch   int16
	sequence    int32
	records     int // number of records, keys and values "k<i>"/"v<i>"
	badCRC      bool
	lastDeltaAt int32 // if > 0, LastOffsetDelta is this instead of records-1
}

// encodeRecords encodes n records with offset deltas 0..n-1, timestamp
// deltas i, key "k<i>", value "v<i>" and one header.
func encodeRecords(n int) []byte {
	var out []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              []byte(fmt.Sprintf("k%d", i)),
			Value:            []byte(fmt.Sprintf("v%d", i)),
			Headers:          []kmsg.Header{{Key: "h", Value: []byte{byte(i)}}},
		}
		enc := r.AppendTo(nil) // Length 0: a one-byte varint to strip
		body := enc[1:]
		out = binary.AppendVarint(out, int64(len(body)))
		out = append(out, body...)
	}
	return out
}

// mkBatch encodes a v2 batch with kmsg and a correct Length and CRC (unless
// badCRC).
func mkBatch(s batchSpec) []byte {
	recs := encodeRecords(s.records)
	last := int32(s.records - 1)
	if s.lastDeltaAt > 0 {
		last = s.lastDeltaAt
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          s.base,
		Length:               int32(49 + len(recs)),
		PartitionLeaderEpoch: s.epoch,
		Magic:                2,
		Attributes:           s.attrs,
		LastOffsetDelta:      last,
		FirstTimestamp:       s.firstTS,
		MaxTimestamp:         s.firstTS + int64(max(s.records-1, 0)),
		ProducerID:           s.producerID,
		ProducerEpoch:        s.prodEpoch,
		FirstSequence:        s.sequence,
		NumRecords:           int32(s.records),
		Records:              recs,
	}
	raw := rb.AppendTo(nil)
	crc := crc32.Checksum(raw[21:], castagnoli)
	if s.badCRC {
		crc++
	}
	binary.BigEndian.PutUint32(raw[17:], crc)
	return raw
}

// mkLegacy encodes one magic 0 or 1 message (a legacy message set entry).
func mkLegacy(magic int8, offset int64, value string) []byte {
	var raw []byte
	switch magic {
	case 0:
		m := kmsg.MessageV0{Offset: offset, Magic: 0, Value: []byte(value)}
		raw = m.AppendTo(nil)
	case 1:
		m := kmsg.MessageV1{Offset: offset, Magic: 1, Timestamp: 1_600_000_000_000, Value: []byte(value)}
		raw = m.AppendTo(nil)
	default:
		panic("magic")
	}
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[12:], crc32.ChecksumIEEE(raw[16:]))
	return raw
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// withLength returns a copy of b with its length field set to l.
func withLength(b []byte, l int32) []byte {
	c := bytes.Clone(b)
	binary.BigEndian.PutUint32(c[8:], uint32(l))
	return c
}

func TestSplit(t *testing.T) {
	b1 := mkBatch(batchSpec{base: 0, records: 1, epoch: 3, producerID: -1, prodEpoch: -1, sequence: -1})
	b2 := mkBatch(batchSpec{base: 1, records: 5, epoch: 3, producerID: 7, prodEpoch: 1, sequence: 0})
	b3 := mkBatch(batchSpec{base: 6, records: 40, epoch: 4, producerID: 7, prodEpoch: 1, sequence: 5})
	v0 := mkLegacy(0, 10, "legacy-zero")
	v1 := mkLegacy(1, 11, "legacy-one")

	type want struct {
		base  int64
		magic int8
		raw   []byte
	}
	tests := []struct {
		name    string
		in      []byte
		want    []want
		wantErr bool
	}{
		{name: "nil", in: nil},
		{name: "empty", in: []byte{}},
		{name: "shorter than a length prefix", in: b1[:11]},
		{name: "one batch", in: b1, want: []want{{0, 2, b1}}},
		{name: "three batches", in: concat(b1, b2, b3), want: []want{{0, 2, b1}, {1, 2, b2}, {6, 2, b3}}},
		{name: "partial trailing batch: only the length prefix", in: concat(b1, b2, b3[:12]), want: []want{{0, 2, b1}, {1, 2, b2}}},
		{name: "partial trailing batch: inside the header", in: concat(b1, b2, b3[:40]), want: []want{{0, 2, b1}, {1, 2, b2}}},
		{name: "partial trailing batch: one byte short", in: concat(b1, b2, b3[:len(b3)-1]), want: []want{{0, 2, b1}, {1, 2, b2}}},
		{name: "partial trailing batch: before the length field ends", in: concat(b1, b3[:10]), want: []want{{0, 2, b1}}},
		{name: "only a partial batch", in: b3[:len(b3)-1]},
		{name: "huge length is a partial batch", in: concat(b1, withLength(b2, 1<<30)), want: []want{{0, 2, b1}}},
		{name: "negative length", in: concat(b1, withLength(b2, -1)), wantErr: true},
		{name: "zero length", in: withLength(b1, 0), wantErr: true},
		{name: "length 4 ends before magic", in: withLength(b1, 4), wantErr: true},
		{name: "length too small for a v2 header", in: withLength(b1, 20), wantErr: true},
		{name: "length 48, one short of a v2 header", in: concat(b2, withLength(b1, 48)), wantErr: true},
		{name: "legacy magic 0", in: v0, want: []want{{10, 0, v0}}},
		{name: "legacy magic 1", in: v1, want: []want{{11, 1, v1}}},
		{name: "legacy then v2", in: concat(v0, v1, b3), want: []want{{10, 0, v0}, {11, 1, v1}, {6, 2, b3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.in)
			got, err := Split(in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Split: no error, got %d batches", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Split: %d batches, want %d", len(got), len(tc.want))
			}
			off := 0
			for i, w := range tc.want {
				g := got[i]
				if g.BaseOffset != w.base || g.Magic != w.magic {
					t.Errorf("batch %d: base %d magic %d, want base %d magic %d", i, g.BaseOffset, g.Magic, w.base, w.magic)
				}
				if !bytes.Equal(g.Raw, w.raw) {
					t.Errorf("batch %d: Raw differs from the encoded batch", i)
				}
				if int(g.Length)+12 != len(g.Raw) {
					t.Errorf("batch %d: len(Raw) %d, Length %d", i, len(g.Raw), g.Length)
				}
				if &g.Raw[0] != &in[off] {
					t.Errorf("batch %d: Raw is not the input's bytes at %d (copied?)", i, off)
				}
				if cap(g.Raw) != len(g.Raw) {
					t.Errorf("batch %d: cap(Raw) %d > len %d: an append would overwrite the next batch", i, cap(g.Raw), len(g.Raw))
				}
				off += len(g.Raw)
			}
		})
	}
}

func TestSplitKeepsBatchesBeforeACorruptOne(t *testing.T) {
	b1 := mkBatch(batchSpec{base: 0, records: 2})
	b2 := mkBatch(batchSpec{base: 2, records: 3})
	tests := []struct {
		name   string
		in     []byte
		wantOK int
	}{
		{"corrupt first", concat(withLength(b1, -5), b2), 0},
		{"corrupt second", concat(b1, withLength(b2, 3)), 1},
		{"corrupt third", concat(b1, b2, withLength(b1, 30)), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Split(tc.in)
			if err == nil {
				t.Fatal("no error for a corrupt length")
			}
			if len(got) != tc.wantOK {
				t.Fatalf("%d batches before the error, want %d", len(got), tc.wantOK)
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	full := mkBatch(batchSpec{
		base: 0x0102030405060708, epoch: 77, attrs: int16(CodecLZ4) | AttrTransactional,
		firstTS: 1_700_000_000_123, producerID: 0x1122334455, prodEpoch: 9, sequence: 123456, records: 3,
	})
	crc := binary.BigEndian.Uint32(full[17:])
	tests := []struct {
		name    string
		in      []byte
		want    Header
		wantErr error
		check   func(t *testing.T, h Header)
	}{
		{
			name: "all v2 fields",
			in:   full,
			want: Header{
				BaseOffset: 0x0102030405060708, Length: int32(len(full) - 12), LeaderEpoch: 77, Magic: 2, CRC: crc,
				Attributes: int16(CodecLZ4) | AttrTransactional, LastOffsetDelta: 2,
				BaseTimestamp: 1_700_000_000_123, MaxTimestamp: 1_700_000_000_125,
				ProducerID: 0x1122334455, ProducerEpoch: 9, BaseSequence: 123456, RecordCount: 3,
			},
			check: func(t *testing.T, h Header) {
				if h.LastOffset() != 0x0102030405060708+2 || h.NextOffset() != 0x0102030405060708+3 {
					t.Errorf("LastOffset %d NextOffset %d", h.LastOffset(), h.NextOffset())
				}
				if h.Codec() != CodecLZ4 || !h.Transactional() || h.Control() || h.LogAppendTime() || !h.Dense() {
					t.Errorf("codec %d transactional %v control %v logAppend %v dense %v", h.Codec(), h.Transactional(), h.Control(), h.LogAppendTime(), h.Dense())
				}
			},
		},
		{
			name: "header only is enough",
			in:   full[:HeaderSize],
			want: Header{
				BaseOffset: 0x0102030405060708, Length: int32(len(full) - 12), LeaderEpoch: 77, Magic: 2, CRC: crc,
				Attributes: int16(CodecLZ4) | AttrTransactional, LastOffsetDelta: 2,
				BaseTimestamp: 1_700_000_000_123, MaxTimestamp: 1_700_000_000_125,
				ProducerID: 0x1122334455, ProducerEpoch: 9, BaseSequence: 123456, RecordCount: 3,
			},
		},
		{
			name: "negative values",
			in:   mkBatch(batchSpec{base: 5, epoch: -1, firstTS: -1, producerID: -1, prodEpoch: -1, sequence: -1, records: 1}),
			check: func(t *testing.T, h Header) {
				if h.LeaderEpoch != -1 || h.ProducerID != -1 || h.ProducerEpoch != -1 || h.BaseSequence != -1 || h.BaseTimestamp != -1 {
					t.Errorf("sign extension lost: %+v", h)
				}
			},
		},
		{
			name: "control, log append time, zstd, compacted",
			in:   mkBatch(batchSpec{attrs: int16(CodecZstd) | AttrControl | AttrLogAppendTime, records: 2, lastDeltaAt: 9}),
			check: func(t *testing.T, h Header) {
				if h.Codec() != CodecZstd || !h.Control() || !h.LogAppendTime() || h.Transactional() {
					t.Errorf("attributes %#x decoded as codec %d control %v logAppend %v txn %v", h.Attributes, h.Codec(), h.Control(), h.LogAppendTime(), h.Transactional())
				}
				if h.Dense() {
					t.Errorf("batch with 2 records over 10 offsets reported dense")
				}
				if h.NextOffset() != 10 {
					t.Errorf("NextOffset %d, want 10", h.NextOffset())
				}
			},
		},
		{
			name: "legacy magic 0",
			in:   mkLegacy(0, 42, "x"),
			check: func(t *testing.T, h Header) {
				if h.Magic != 0 || h.BaseOffset != 42 || int(h.Length) != len(mkLegacy(0, 42, "x"))-12 {
					t.Errorf("legacy header %+v", h)
				}
			},
		},
		{
			name: "legacy magic 1",
			in:   mkLegacy(1, 43, "y"),
			check: func(t *testing.T, h Header) {
				if h.Magic != 1 || h.BaseOffset != 43 {
					t.Errorf("legacy header %+v", h)
				}
			},
		},
		{name: "empty", in: nil, wantErr: ErrTruncated},
		{name: "ends before magic", in: full[:16], wantErr: ErrTruncated},
		{name: "v2 ends inside the header", in: full[:HeaderSize-1], wantErr: ErrTruncated},
		{name: "legacy needs only 17 bytes", in: mkLegacy(0, 1, "z")[:17]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHeader(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHeader: %v", err)
			}
			if tc.want != (Header{}) && h != tc.want {
				t.Errorf("header\n got %+v\nwant %+v", h, tc.want)
			}
			if tc.check != nil {
				tc.check(t, h)
			}
		})
	}
}

// decodeRecords parses uncompressed v2 records, checking every record's
// length prefix against the bytes it spans.
func decodeRecords(t *testing.T, b []byte) []kmsg.Record {
	t.Helper()
	var out []kmsg.Record
	for len(b) > 0 {
		l, n := binary.Varint(b)
		if n <= 0 || l < 0 || int(l) > len(b)-n {
			t.Fatalf("record %d: bad length prefix %d (%d bytes left)", len(out), l, len(b))
		}
		var r kmsg.Record
		if err := r.ReadFrom(b[:n+int(l)]); err != nil {
			t.Fatalf("record %d: %v", len(out), err)
		}
		if int(r.Length) != int(l) {
			t.Fatalf("record %d: Length %d, prefix %d", len(out), r.Length, l)
		}
		out = append(out, r)
		b = b[n+int(l):]
	}
	return out
}

func TestRewrite(t *testing.T) {
	tests := []struct {
		name          string
		in            batchSpec
		p             Producer
		transactional bool
	}{
		{"plain to idempotent", batchSpec{base: 1000, epoch: 12, records: 4, firstTS: 1_600_000_000_000, producerID: -1, prodEpoch: -1, sequence: -1}, Producer{ID: 4242, Epoch: 3, Sequence: 17}, false},
		{"clears transactional, keeps codec", batchSpec{base: 5, epoch: 1, attrs: int16(CodecGzip) | AttrTransactional, records: 2, producerID: 9, prodEpoch: 2, sequence: 8}, Producer{ID: 1, Epoch: 0, Sequence: 0}, false},
		{"sets transactional, keeps other bits", batchSpec{base: 5, epoch: 1, attrs: int16(CodecSnappy) | AttrLogAppendTime, records: 3}, Producer{ID: 77, Epoch: 5, Sequence: 1 << 30}, true},
		{"keeps transactional", batchSpec{base: 1 << 40, epoch: 99, attrs: AttrTransactional, records: 1}, Producer{ID: 1 << 50, Epoch: 32767, Sequence: 2147483647}, true},
		{"non-idempotent producer", batchSpec{base: 3, epoch: 2, records: 10, producerID: 5, prodEpoch: 5, sequence: 5}, Producer{ID: -1, Epoch: -1, Sequence: -1}, false},
		{"already rewritten is stable", batchSpec{base: 0, epoch: -1, records: 2, producerID: 8, prodEpoch: 1, sequence: 4}, Producer{ID: 8, Epoch: 1, Sequence: 4}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := mkBatch(tc.in)
			raw := bytes.Clone(orig)
			before, err := ParseHeader(orig)
			if err != nil {
				t.Fatal(err)
			}
			Rewrite(raw, tc.p, tc.transactional)

			if !CheckCRC(raw) {
				t.Fatal("CRC invalid after Rewrite")
			}
			if got, want := binary.BigEndian.Uint32(raw[17:]), crc32.Checksum(raw[21:], castagnoli); got != want {
				t.Fatalf("CRC %#x, want %#x", got, want)
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(raw); err != nil {
				t.Fatalf("kmsg cannot read the rewritten batch: %v", err)
			}
			wantAttrs := before.Attributes &^ AttrTransactional
			if tc.transactional {
				wantAttrs |= AttrTransactional
			}
			checks := []struct {
				what      string
				got, want int64
			}{
				{"base offset", rb.FirstOffset, 0},
				{"leader epoch", int64(rb.PartitionLeaderEpoch), -1},
				{"producer id", rb.ProducerID, tc.p.ID},
				{"producer epoch", int64(rb.ProducerEpoch), int64(tc.p.Epoch)},
				{"base sequence", int64(rb.FirstSequence), int64(tc.p.Sequence)},
				{"attributes", int64(rb.Attributes), int64(wantAttrs)},
				{"length", int64(rb.Length), int64(before.Length)},
				{"magic", int64(rb.Magic), 2},
				{"last offset delta", int64(rb.LastOffsetDelta), int64(before.LastOffsetDelta)},
				{"first timestamp", rb.FirstTimestamp, before.BaseTimestamp},
				{"max timestamp", rb.MaxTimestamp, before.MaxTimestamp},
				{"record count", int64(rb.NumRecords), int64(before.RecordCount)},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
				}
			}
			if !bytes.Equal(raw[HeaderSize:], orig[HeaderSize:]) {
				t.Error("records bytes changed")
			}
			if len(raw) != len(orig) {
				t.Errorf("length changed: %d -> %d", len(orig), len(raw))
			}
			recs := decodeRecords(t, rb.Records)
			if len(recs) != tc.in.records {
				t.Fatalf("%d records after Rewrite, want %d", len(recs), tc.in.records)
			}
			for i, r := range recs {
				if string(r.Key) != fmt.Sprintf("k%d", i) || string(r.Value) != fmt.Sprintf("v%d", i) || r.OffsetDelta != int32(i) {
					t.Errorf("record %d: key %q value %q delta %d", i, r.Key, r.Value, r.OffsetDelta)
				}
			}
		})
	}
}

func TestCheckCRC(t *testing.T) {
	good := mkBatch(batchSpec{base: 7, epoch: 2, records: 3, attrs: int16(CodecNone), firstTS: 12345, producerID: 1, prodEpoch: 1, sequence: 1})
	if !CheckCRC(good) {
		t.Fatal("valid batch fails CheckCRC")
	}
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"valid", good, true},
		{"filler", Filler(10, 1), true},
		{"wrong CRC", mkBatch(batchSpec{records: 2, badCRC: true}), false},
		{"too short", good[:HeaderSize-1], false},
		{"empty", nil, false},
		{"records cut off", good[:len(good)-1], false},
	}
	// Every byte the CRC covers (attributes to the end), and the CRC
	// itself, is detected when flipped; the fields before it (base
	// offset, length, leader epoch, magic) are not covered, as in Kafka.
	for _, i := range []int{0, 7, 8, 11, 12, 15, 16} {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		tests = append(tests, struct {
			name string
			in   []byte
			want bool
		}{fmt.Sprintf("flip byte %d (not covered)", i), b, true})
	}
	for i := 17; i < len(good); i++ {
		for _, mask := range []byte{0x01, 0x80} {
			b := bytes.Clone(good)
			b[i] ^= mask
			tests = append(tests, struct {
				name string
				in   []byte
				want bool
			}{fmt.Sprintf("flip byte %d mask %#x", i, mask), b, false})
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckCRC(tc.in); got != tc.want {
				t.Fatalf("CheckCRC = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFiller(t *testing.T) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	tests := []struct {
		name string
		n    int32
		ts   int64
	}{
		{"one record", 1, 1_700_000_000_000},
		{"thousand records", 1000, 1_600_000_000_000},
		{"offset deltas past one varint byte", 64, 0},
		{"negative timestamp", 2, -1},
		{"MaxFillerRecords", MaxFillerRecords, 1_234_567_890_123},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := Filler(tc.n, tc.ts)
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(raw); err != nil {
				t.Fatalf("kmsg cannot read the filler: %v", err)
			}
			if int(rb.Length)+12 != len(raw) {
				t.Fatalf("Length %d for %d bytes", rb.Length, len(raw))
			}
			if !CheckCRC(raw) || uint32(rb.CRC) != crc32.Checksum(raw[21:], castagnoli) {
				t.Fatal("filler CRC invalid")
			}
			checks := []struct {
				what      string
				got, want int64
			}{
				{"base offset", rb.FirstOffset, 0},
				{"leader epoch", int64(rb.PartitionLeaderEpoch), -1},
				{"magic", int64(rb.Magic), 2},
				{"attributes (zstd, create time, not transactional)", int64(rb.Attributes), int64(CodecZstd)},
				{"last offset delta", int64(rb.LastOffsetDelta), int64(tc.n - 1)},
				{"first timestamp", rb.FirstTimestamp, tc.ts},
				{"max timestamp", rb.MaxTimestamp, tc.ts},
				{"producer id", rb.ProducerID, -1},
				{"producer epoch", int64(rb.ProducerEpoch), -1},
				{"base sequence", int64(rb.FirstSequence), -1},
				{"record count", int64(rb.NumRecords), int64(tc.n)},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
				}
			}
			body, err := dec.DecodeAll(rb.Records, nil)
			if err != nil {
				t.Fatalf("zstd: %v", err)
			}
			recs := decodeRecords(t, body)
			if len(recs) != int(tc.n) {
				t.Fatalf("%d records, want %d", len(recs), tc.n)
			}
			for i, r := range recs {
				if r.OffsetDelta != int32(i) || r.TimestampDelta64 != 0 || r.Attributes != 0 || r.Key != nil || r.Value != nil || len(r.Headers) != 0 {
					t.Fatalf("record %d: delta %d ts delta %d attrs %d key %v value %v headers %d",
						i, r.OffsetDelta, r.TimestampDelta64, r.Attributes, r.Key, r.Value, len(r.Headers))
				}
			}
			bs, err := Split(raw)
			if err != nil || len(bs) != 1 || bs[0].NextOffset() != int64(tc.n) || !bs[0].Dense() {
				t.Fatalf("Split(filler) = %d batches, err %v", len(bs), err)
			}
		})
	}
}

// TestFillerConcurrent checks that the shared encoder can be used from
// several workers at once (run with -race).
func TestFillerConcurrent(t *testing.T) {
	want := Filler(5000, 42)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if got := Filler(5000, 42); !bytes.Equal(got, want) {
					errs <- fmt.Errorf("goroutine %d: filler differs", g)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestAgainstKfake splits record sets fetched from a real (in-process)
// broker, rewrites them, and produces the rewritten batches and a filler
// batch to another partition: the broker must take them at the expected
// offsets and a consumer must read the same records back.
func TestAgainstKfake(t *testing.T) {
	c := testutil.NewCluster(t)
	cl := testutil.Client(t, c.ListenAddrs())
	testutil.CreateTopic(t, cl, "src", 1, nil)
	testutil.CreateTopic(t, cl, "dst", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	wantCodec := []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}
	sizes := []int{1, 7, 50, 3, 20}
	for i, codec := range codecs {
		pc := testutil.Client(t, c.ListenAddrs(), kgo.DefaultProduceTopic("src"), kgo.ProducerLinger(0),
			kgo.ProducerBatchCompression(codec), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		var rs []*kgo.Record
		for j := 0; j < sizes[i]; j++ {
			rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("b%d-%d", i, j)), Value: bytes.Repeat([]byte{byte('a' + j%26)}, 100)})
		}
		if err := pc.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	topics, err := kadm.NewClient(cl).ListTopics(ctx, "src", "dst")
	if err != nil {
		t.Fatal(err)
	}
	fetched := fetchRaw(ctx, t, cl, "src", topics["src"].ID, 0)
	batches, err := Split(fetched)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}

	t.Run("split", func(t *testing.T) {
		if len(batches) != len(codecs) {
			t.Fatalf("%d batches, want %d (one per produce)", len(batches), len(codecs))
		}
		next := int64(0)
		for i, b := range batches {
			if b.BaseOffset != next || b.RecordCount != int32(sizes[i]) || !b.Dense() || b.Codec() != wantCodec[i] {
				t.Errorf("batch %d: base %d count %d codec %d, want base %d count %d codec %d", i, b.BaseOffset, b.RecordCount, b.Codec(), next, sizes[i], wantCodec[i])
			}
			if !CheckCRC(b.Raw) {
				t.Errorf("batch %d: CRC invalid", i)
			}
			next = b.NextOffset()
		}
		part, err := Split(fetched[:len(fetched)-1])
		if err != nil || len(part) != len(batches)-1 {
			t.Errorf("Split of a cut fetch: %d batches, err %v; want %d", len(part), err, len(batches)-1)
		}
	})

	t.Run("rewrite and produce", func(t *testing.T) {
		// A filler of 3 records first, so the copies land 3 offsets later.
		produceRaw(ctx, t, cl, "dst", topics["dst"].ID, Filler(3, time.Now().UnixMilli()), 0)
		want := int64(3)
		for i, b := range batches {
			raw := bytes.Clone(b.Raw)
			Rewrite(raw, Producer{ID: -1, Epoch: -1, Sequence: -1}, false)
			produceRaw(ctx, t, cl, "dst", topics["dst"].ID, raw, want)
			want += int64(sizes[i])
		}
		src := testutil.ReadAll(t, c.ListenAddrs(), "src")
		dst := testutil.ReadAll(t, c.ListenAddrs(), "dst")
		if len(dst[0]) != 3+len(src[0]) {
			t.Fatalf("dst has %d records, want %d", len(dst[0]), 3+len(src[0]))
		}
		for i, r := range dst[0][:3] {
			if r.Key != nil || r.Value != nil || r.Offset != int64(i) {
				t.Errorf("filler record %d: offset %d key %v value %v", i, r.Offset, r.Key, r.Value)
			}
		}
		for i, s := range src[0] {
			d := dst[0][i+3]
			if d.Offset != s.Offset+3 || !bytes.Equal(d.Key, s.Key) || !bytes.Equal(d.Value, s.Value) || !d.Timestamp.Equal(s.Timestamp) {
				t.Fatalf("record %d differs: src offset %d key %q, dst offset %d key %q", i, s.Offset, s.Key, d.Offset, d.Key)
			}
		}
	})
}

func fetchRaw(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, id [16]byte, partition int32) []byte {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = 10 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, 0, 10<<20
	rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				t.Fatalf("fetch %s[%d]: %v", topic, p.Partition, err)
			}
			return p.RecordBatches
		}
	}
	t.Fatal("fetch response without the partition")
	return nil
}

func produceRaw(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, id [16]byte, raw []byte, wantBase int64) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				t.Fatalf("produce to %s: %v", topic, err)
			}
			if p.BaseOffset != wantBase {
				t.Fatalf("batch landed at %d, want %d", p.BaseOffset, wantBase)
			}
			return
		}
	}
	t.Fatal("produce response without the partition")
}

// FuzzSplit checks that Split never panics and that every batch it returns
// is the input's own bytes, in order, 12+Length long, with a header that
// ParseHeader reads the same way.
func FuzzSplit(f *testing.F) {
	b1 := mkBatch(batchSpec{base: 0, records: 1})
	b2 := mkBatch(batchSpec{base: 1, records: 3, attrs: AttrTransactional})
	f.Add([]byte{})
	f.Add(b1)
	f.Add(concat(b1, b2))
	f.Add(concat(b1, b2[:30]))
	f.Add(withLength(b1, -1))
	f.Add(withLength(b1, 5))
	f.Add(withLength(b1, 1<<31-1))
	f.Add(concat(mkLegacy(0, 3, "a"), mkLegacy(1, 4, "b"), b2))
	f.Add(Filler(3, 9))
	f.Fuzz(func(t *testing.T, in []byte) {
		batches, err := Split(in)
		off := 0
		for i, b := range batches {
			if len(b.Raw) != 12+int(b.Length) {
				t.Fatalf("batch %d: len(Raw) %d, 12+Length %d", i, len(b.Raw), 12+int(b.Length))
			}
			if off+len(b.Raw) > len(in) || len(b.Raw) == 0 || &b.Raw[0] != &in[off] {
				t.Fatalf("batch %d: Raw is not the input at %d", i, off)
			}
			if cap(b.Raw) != len(b.Raw) {
				t.Fatalf("batch %d: cap %d > len %d", i, cap(b.Raw), len(b.Raw))
			}
			h, herr := ParseHeader(b.Raw)
			if herr != nil || h != b.Header {
				t.Fatalf("batch %d: ParseHeader(Raw) = %+v, %v; Split said %+v", i, h, herr, b.Header)
			}
			if b.Magic == 2 && len(b.Raw) < HeaderSize {
				t.Fatalf("batch %d: v2 batch of %d bytes", i, len(b.Raw))
			}
			off += len(b.Raw)
		}
		if err == nil && len(in)-off >= 12 {
			// What is left must be a partial batch: its length runs past
			// the end.
			l := int32(binary.BigEndian.Uint32(in[off+8:]))
			if 12+int(l) <= len(in)-off {
				t.Fatalf("Split stopped at %d with a complete batch of length %d left", off, l)
			}
		}
	})
}

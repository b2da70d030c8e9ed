package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"testing"
)

// Fuzz targets for the functions that read record batches fetched from a
// source cluster: anything a source broker sends goes through Split, and
// the batches it returns through RewriteCarryCRC, Merge, Densify and
// StampLogAppendTime. FuzzSplit is in batch_test.go. The seed corpus is in
// testdata/fuzz/<FuzzName>/; docs/security.md says how to run them.

// fuzzCodecs are the codecs the seeds are built with.
var fuzzCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// fuzzRecords returns one record per offset delta, as a producer writes
// them: timestamp deltas that grow (one negative), keys and values that
// differ, one header each; every fourth key and the third value are null.
func fuzzRecords(deltas []int32) []Record {
	recs := make([]Record, len(deltas))
	for i, d := range deltas {
		recs[i] = Record{
			TimestampDelta: int64(i*3 - 1),
			OffsetDelta:    d,
			Key:            []byte(fmt.Sprintf("key-%d", d)),
			Value:          []byte(fmt.Sprintf("value %d", d)),
			Headers:        []byte{2, 2, 'h', 2, byte('0' + i%10)}, // one header "h"
		}
		if i%4 == 3 {
			recs[i].Key = nil
		}
		if i == 2 {
			recs[i].Value = nil
		}
	}
	return recs
}

// fuzzBatch encodes a v2 batch at base whose records have the given offset
// deltas and whose LastOffsetDelta is last, with a valid CRC.
func fuzzBatch(base, ts int64, attrs int16, codec Codec, deltas []int32, last int32) []byte {
	h := Header{LastOffsetDelta: last, BaseTimestamp: ts, MaxTimestamp: ts + 3*int64(len(deltas)), ProducerID: 7, ProducerEpoch: 1, BaseSequence: 0}
	raw, err := encode(&h, attrs, fuzzRecords(deltas), codec)
	if err != nil {
		panic(err)
	}
	binary.BigEndian.PutUint64(raw[offBaseOffset:], uint64(base)) // not covered by the CRC
	return raw
}

// denseDeltas returns the offset deltas 0..n-1.
func denseDeltas(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// denseBatch is fuzzBatch for n records, one per offset.
func denseBatch(base, ts int64, attrs int16, codec Codec, n int) []byte {
	return fuzzBatch(base, ts, attrs, codec, denseDeltas(n), int32(n-1))
}

// fuzzMaxRecords bounds the offsets a fuzzed batch may ask Densify to
// fill: larger spans are legitimate up to MaxDensifySpan but take the
// fuzzer seconds each.
const fuzzMaxRecords = 1 << 16

// skipSlow skips batches whose header asks for a large but legal amount
// of work. Header counts that are impossible (negative, more records than
// bytes, a span over MaxDensifySpan) are not skipped: they must be refused
// with an error. They once sized allocations before a record was read (a
// 61-byte batch claiming 2^31-1 records ran out of memory); the bug-*
// seeds keep them in the corpus.
func skipSlow(t *testing.T, b *Batch, densify bool) {
	t.Helper()
	if densify && b.LastOffsetDelta > fuzzMaxRecords && b.LastOffsetDelta < MaxDensifySpan {
		t.Skipf("batch spans %d offsets: legal, slow to fill", b.LastOffsetDelta)
	}
}

// withCounts returns a copy of a v2 batch with its record count and last
// offset delta replaced and its CRC made valid again, as a hostile source
// broker could send it.
func withCounts(raw []byte, count, lastDelta int32) []byte {
	c := bytes.Clone(raw)
	binary.BigEndian.PutUint32(c[offRecordCount:], uint32(count))
	binary.BigEndian.PutUint32(c[offLastOffsetDelta:], uint32(lastDelta))
	binary.BigEndian.PutUint32(c[offCRC:], crc32.Checksum(c[offAttributes:], crcTable))
	return c
}

// fuzzSeed is one seed corpus entry: a name for its file and the fuzz
// function's arguments after *testing.T.
type fuzzSeed struct {
	name string
	args []any
}

func addSeeds(f *testing.F, seeds []fuzzSeed) {
	for _, s := range seeds {
		f.Add(s.args...)
	}
}

// v2Batches returns the v2 batches Split finds in in.
func v2Batches(in []byte) []Batch {
	bs, _ := Split(in)
	out := bs[:0]
	for _, b := range bs {
		if b.Magic == 2 {
			out = append(out, b)
		}
	}
	return out
}

func rewriteCarryCRCSeeds() []fuzzSeed {
	var s []fuzzSeed
	for _, c := range fuzzCodecs {
		s = append(s, fuzzSeed{fmt.Sprintf("valid-codec%d", c), []any{denseBatch(100, 1_700_000_000_000, 0, c, 5), int64(1000), int16(3), int32(42), true, false}})
	}
	corrupt := denseBatch(0, 1, 0, CodecNone, 3)
	corrupt[len(corrupt)-1] ^= 0x10
	txn := denseBatch(7, 5, AttrTransactional, CodecZstd, 2)
	control := denseBatch(9, 5, AttrTransactional|AttrControl, CodecNone, 1)
	empty := fuzzBatch(3, 5, 0, CodecNone, nil, 4) // compaction left no record
	return append(s,
		fuzzSeed{"corrupt-record-byte", []any{corrupt, int64(1000), int16(3), int32(42), false, false}},
		fuzzSeed{"corrupt-fixed", []any{corrupt, int64(1000), int16(3), int32(42), false, true}},
		fuzzSeed{"transactional-to-plain", []any{txn, int64(-1), int16(-1), int32(-1), false, false}},
		fuzzSeed{"control", []any{control, int64(5), int16(0), int32(0), true, false}},
		fuzzSeed{"empty-compacted", []any{empty, int64(5), int16(0), int32(0), false, false}},
		fuzzSeed{"filler", []any{Filler(1000, 9), int64(1<<62 + 5), int16(1<<15 - 1), int32(1<<31 - 1), true, false}},
		fuzzSeed{"two-batches", []any{concat(denseBatch(0, 1, 0, CodecNone, 2), corrupt), int64(8), int16(0), int32(7), false, false}},
		fuzzSeed{"legacy", []any{mkLegacy(1, 4, "legacy"), int64(8), int16(0), int32(7), false, false}},
	)
}

// FuzzRewriteCarryCRC checks that carrying the CRC over a header rewrite
// keeps a valid batch valid and a corrupt one detectably corrupt, and that
// for a valid batch it writes exactly what Rewrite (which reads the
// records) writes. With fixCRC the input's CRCs are made valid first, so
// the fuzzer also explores valid batches.
func FuzzRewriteCarryCRC(f *testing.F) {
	addSeeds(f, rewriteCarryCRCSeeds())
	f.Fuzz(func(t *testing.T, in []byte, id int64, epoch int16, seq int32, txn, fixCRC bool) {
		p := Producer{ID: id, Epoch: epoch, Sequence: seq}
		in = bytes.Clone(in)
		for _, b := range v2Batches(in) {
			if fixCRC {
				Rewrite(b.Raw, Producer{ID: b.ProducerID, Epoch: b.ProducerEpoch, Sequence: b.BaseSequence}, b.Transactional())
			}
			valid := CheckCRC(b.Raw)
			orig := bytes.Clone(b.Raw)
			carried := bytes.Clone(b.Raw)
			RewriteCarryCRC(carried, p, txn)
			if got := CheckCRC(carried); got != valid {
				t.Fatalf("batch at %d: CheckCRC %v before RewriteCarryCRC, %v after", b.BaseOffset, valid, got)
			}
			h, err := ParseHeader(carried)
			if err != nil {
				t.Fatal(err)
			}
			want := b.Header
			want.BaseOffset, want.LeaderEpoch = 0, -1
			want.ProducerID, want.ProducerEpoch, want.BaseSequence = id, epoch, seq
			want.Attributes &^= AttrTransactional
			if txn {
				want.Attributes |= AttrTransactional
			}
			want.CRC = h.CRC
			if h != want {
				t.Fatalf("rewritten header %+v, want %+v", h, want)
			}
			if !bytes.Equal(carried[HeaderSize:], orig[HeaderSize:]) {
				t.Fatal("RewriteCarryCRC changed the records")
			}
			computed := bytes.Clone(orig)
			Rewrite(computed, p, txn)
			if valid != bytes.Equal(carried, computed) {
				t.Fatalf("valid %v, but RewriteCarryCRC and Rewrite agree: %v", valid, !valid)
			}
		}
	})
}

// absRecord is a record as a reader sees it: absolute offset and
// timestamp.
type absRecord struct {
	offset, ts          int64
	attrs               int8
	key, value, headers []byte
	nullKey, nullValue  bool
}

func (r absRecord) String() string {
	return fmt.Sprintf("@%d t%d a%d k%q(%v) v%q(%v) h%x", r.offset, r.ts, r.attrs, r.key, r.nullKey, r.value, r.nullValue, r.headers)
}

func readerView(b *Batch) ([]absRecord, error) {
	recs, err := b.Records()
	if err != nil {
		return nil, err
	}
	out := make([]absRecord, len(recs))
	for i, r := range recs {
		out[i] = absRecord{
			offset: b.BaseOffset + int64(r.OffsetDelta), ts: b.BaseTimestamp + r.TimestampDelta, attrs: r.Attributes,
			key: r.Key, value: r.Value, headers: r.Headers, nullKey: r.Key == nil, nullValue: r.Value == nil,
		}
	}
	return out, nil
}

func mergeSeeds() []fuzzSeed {
	var s []fuzzSeed
	for _, c := range fuzzCodecs {
		run := concat(denseBatch(100, 5000, 0, c, 3), denseBatch(103, 4000, 0, c, 5), denseBatch(108, 9000, 0, c, 1))
		s = append(s, fuzzSeed{fmt.Sprintf("run-codec%d", c), []any{run, false}})
	}
	gap := concat(denseBatch(0, 1, 0, CodecNone, 2), denseBatch(5, 1, 0, CodecNone, 2))
	mixed := concat(denseBatch(0, 1, 0, CodecNone, 2), denseBatch(2, 1, 0, CodecGzip, 2))
	txn := concat(denseBatch(0, 1, 0, CodecNone, 2), denseBatch(2, 1, AttrTransactional, CodecNone, 2))
	compacted := concat(denseBatch(0, 1, 0, CodecNone, 2), fuzzBatch(2, 1, 0, CodecNone, []int32{0, 3}, 3))
	return append(s,
		fuzzSeed{"single", []any{denseBatch(0, -5, 0, CodecLZ4, 4), false}},
		fuzzSeed{"gap", []any{gap, false}},
		fuzzSeed{"gap-renumbered", []any{gap, true}},
		fuzzSeed{"mixed-codecs", []any{mixed, false}},
		fuzzSeed{"transactional", []any{txn, false}},
		fuzzSeed{"compacted", []any{compacted, false}},
		fuzzSeed{"far-timestamps", []any{concat(denseBatch(0, -1<<62, 0, CodecNone, 2), denseBatch(2, 1<<62, 0, CodecNone, 2)), false}},
	)
}

// FuzzMerge checks that merging the batches Split returns never panics and
// that a merge that succeeds keeps every record at its absolute offset
// with its timestamp, key, value and headers. With renumber the batches
// are made contiguous first, so the fuzzer gets past that check.
func FuzzMerge(f *testing.F) {
	addSeeds(f, mergeSeeds())
	f.Fuzz(func(t *testing.T, in []byte, renumber bool) {
		bs, _ := Split(in)
		if len(bs) == 0 {
			return
		}
		if renumber {
			for i := 1; i < len(bs); i++ {
				bs[i].BaseOffset = bs[i-1].NextOffset()
			}
		}
		raw, n, err := Merge(bs)
		if err != nil {
			return
		}
		var count int32
		maxTS := bs[0].MaxTimestamp
		for i := range bs {
			b := &bs[i]
			if !Mergeable(b) || b.Codec() != bs[0].Codec() || (i > 0 && b.BaseOffset != bs[i-1].NextOffset()) {
				t.Fatalf("merged batch %d (%+v), which is not mergeable with the first", i, b.Header)
			}
			count += b.RecordCount
			maxTS = max(maxTS, b.MaxTimestamp)
		}
		if n != count {
			t.Fatalf("Merge says %d records, the batches hold %d", n, count)
		}
		out, err := Split(raw)
		if err != nil || len(out) != 1 || len(out[0].Raw) != len(raw) || !CheckCRC(raw) {
			t.Fatalf("merged batch does not split into one valid batch: %v, %d batches, CRC %v", err, len(out), CheckCRC(raw))
		}
		m := out[0]
		m.BaseOffset = bs[0].BaseOffset
		if m.RecordCount != n || m.LastOffsetDelta != n-1 || m.BaseTimestamp != bs[0].BaseTimestamp || m.MaxTimestamp != maxTS ||
			!Mergeable(&m) || (m.Codec() != bs[0].Codec() && m.Codec() != CodecNone) {
			t.Fatalf("merged header %+v: want %d records, base timestamp %d, max %d, codec %d", m.Header, n, bs[0].BaseTimestamp, maxTS, bs[0].Codec())
		}
		var want []absRecord
		var wantErr error
		for i := range bs {
			recs, err := readerView(&bs[i])
			if err != nil {
				wantErr = err
				break
			}
			want = append(want, recs...)
		}
		got, gotErr := readerView(&m)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("decoding the inputs: %v; decoding the merged batch: %v", wantErr, gotErr)
		}
		if wantErr != nil {
			return
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("merged records differ:\nwant %v\ngot  %v", want, got)
		}
	})
}

func densifySeeds() []fuzzSeed {
	var s []fuzzSeed
	for _, c := range fuzzCodecs {
		s = append(s,
			fuzzSeed{fmt.Sprintf("compacted-codec%d", c), []any{fuzzBatch(50, 1000, 0, c, []int32{0, 2, 3, 7}, 9)}},
			fuzzSeed{fmt.Sprintf("compacted-lat-codec%d", c), []any{fuzzBatch(50, 1000, AttrLogAppendTime, c, []int32{1}, 1)}},
		)
	}
	return append(s,
		fuzzSeed{"empty", []any{fuzzBatch(3, 5, 0, CodecNone, nil, 4)}},
		fuzzSeed{"transactional", []any{fuzzBatch(3, 5, AttrTransactional, CodecZstd, []int32{4}, 6)}},
		fuzzSeed{"dense", []any{denseBatch(3, 5, 0, CodecNone, 3)}},
		fuzzSeed{"out-of-order", []any{fuzzBatch(3, 5, 0, CodecNone, []int32{3, 1}, 4)}},
		fuzzSeed{"past-last", []any{fuzzBatch(3, 5, 0, CodecNone, []int32{0, 5}, 4)}},
		fuzzSeed{"two", []any{concat(fuzzBatch(0, 5, 0, CodecNone, []int32{1}, 2), fuzzBatch(3, 5, 0, CodecGzip, []int32{0, 4}, 4))}},
		// Impossible header counts, refused (see skipSlow).
		fuzzSeed{"bug-last-delta-maxint32", []any{withCounts(fuzzBatch(0, 5, 0, CodecNone, nil, 0), 0, math.MaxInt32)}},
		fuzzSeed{"bug-last-delta-negative", []any{withCounts(fuzzBatch(0, 5, 0, CodecNone, nil, 0), 0, -5)}},
		fuzzSeed{"bug-last-delta-huge", []any{withCounts(fuzzBatch(0, 5, 0, CodecNone, []int32{0}, 0), 1, 1<<26)}},
		fuzzSeed{"bug-record-count-huge", []any{withCounts(fuzzBatch(0, 5, 0, CodecNone, nil, 0), math.MaxInt32, 0)}},
	)
}

// FuzzDensify checks that densifying any batch never panics, and that a
// batch it returns has a record at every offset the source batch covers:
// the source's records at their offsets, unchanged, and FillerKey
// tombstones in the gaps.
func FuzzDensify(f *testing.F) {
	addSeeds(f, densifySeeds())
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, b := range v2Batches(in) {
			skipSlow(t, &b, true)
			raw, added, err := Densify(&b)
			if err != nil {
				continue
			}
			m := reencoded(t, raw, &b)
			if m.LastOffsetDelta != b.LastOffsetDelta || m.RecordCount != b.LastOffsetDelta+1 || m.BaseTimestamp != b.BaseTimestamp ||
				m.MaxTimestamp != b.MaxTimestamp || m.Attributes&^AttrCompressionMask != b.Attributes&^AttrCompressionMask {
				t.Fatalf("densified header %+v from %+v", m.Header, b.Header)
			}
			src, err := b.Records()
			if err != nil {
				t.Fatalf("Densify succeeded on records that do not decode: %v", err)
			}
			got, err := m.Records()
			if err != nil {
				t.Fatalf("densified records do not decode: %v", err)
			}
			if len(got) != len(src)+added {
				t.Fatalf("%d records, %d source records + %d fillers", len(got), len(src), added)
			}
			kept := 0
			for i, r := range got {
				if r.OffsetDelta != int32(i) {
					t.Fatalf("record %d has offset delta %d", i, r.OffsetDelta)
				}
				if kept < len(src) && src[kept].OffsetDelta == int32(i) {
					if fmt.Sprint(r) != fmt.Sprint(src[kept]) || (r.Key == nil) != (src[kept].Key == nil) || (r.Value == nil) != (src[kept].Value == nil) {
						t.Fatalf("record at delta %d: %+v, source had %+v", i, r, src[kept])
					}
					kept++
					continue
				}
				if !bytes.Equal(r.Key, FillerKey) || r.Value != nil {
					t.Fatalf("filler at delta %d: %+v", i, r)
				}
			}
			if kept != len(src) {
				t.Fatalf("kept %d of %d source records", kept, len(src))
			}
		}
	})
}

// reencoded checks that raw, re-encoded from b, is one valid v2 batch with
// b's producer fields and a codec that is b's or none (a compressor may
// fall back to none), and returns it placed at b's base offset.
func reencoded(t *testing.T, raw []byte, b *Batch) Batch {
	t.Helper()
	out, err := Split(raw)
	if err != nil || len(out) != 1 || len(out[0].Raw) != len(raw) || !CheckCRC(raw) {
		t.Fatalf("re-encoded batch does not split into one valid batch: %v, %d batches, CRC %v", err, len(out), CheckCRC(raw))
	}
	m := out[0]
	if m.ProducerID != b.ProducerID || m.ProducerEpoch != b.ProducerEpoch || m.BaseSequence != b.BaseSequence ||
		(m.Codec() != b.Codec() && m.Codec() != CodecNone) {
		t.Fatalf("re-encoded header %+v from %+v", m.Header, b.Header)
	}
	m.BaseOffset = b.BaseOffset
	return m
}

func stampSeeds() []fuzzSeed {
	var s []fuzzSeed
	for _, c := range fuzzCodecs {
		s = append(s, fuzzSeed{fmt.Sprintf("lat-codec%d", c), []any{denseBatch(10, 1_700_000_000_000, AttrLogAppendTime, c, 4)}})
	}
	return append(s,
		fuzzSeed{"lat-transactional", []any{denseBatch(10, 7, AttrLogAppendTime|AttrTransactional, CodecNone, 2)}},
		fuzzSeed{"lat-compacted", []any{fuzzBatch(10, 7, AttrLogAppendTime, CodecSnappy, []int32{0, 2}, 2)}},
		fuzzSeed{"create-time", []any{denseBatch(10, 7, 0, CodecNone, 2)}},
		fuzzSeed{"empty", []any{fuzzBatch(10, 7, AttrLogAppendTime, CodecNone, nil, 0)}},
		// Impossible header counts, refused (see skipSlow). Both batches
		// are dense, so the mirror stamps them without densifying first.
		fuzzSeed{"bug-record-count-negative", []any{withCounts(fuzzBatch(10, 7, AttrLogAppendTime, CodecNone, nil, 0), -1, -2)}},
		fuzzSeed{"bug-record-count-huge", []any{withCounts(fuzzBatch(10, 7, AttrLogAppendTime, CodecNone, nil, 0), math.MaxInt32, math.MaxInt32-1)}},
	)
}

// FuzzStampLogAppendTime checks that stamping any batch never panics, and
// that a batch it returns is a CreateTime batch with the same records at
// the same offsets, every one at the source batch's max timestamp.
func FuzzStampLogAppendTime(f *testing.F) {
	addSeeds(f, stampSeeds())
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, b := range v2Batches(in) {
			skipSlow(t, &b, false)
			raw, err := StampLogAppendTime(&b)
			if err != nil {
				continue
			}
			m := reencoded(t, raw, &b)
			if m.LogAppendTime() || m.BaseTimestamp != b.MaxTimestamp || m.MaxTimestamp != b.MaxTimestamp || m.RecordCount != b.RecordCount ||
				m.LastOffsetDelta != b.LastOffsetDelta || m.Attributes&^(AttrCompressionMask|AttrLogAppendTime) != b.Attributes&^(AttrCompressionMask|AttrLogAppendTime) {
				t.Fatalf("stamped header %+v from %+v", m.Header, b.Header)
			}
			src, err := b.Records()
			if err != nil {
				t.Fatalf("StampLogAppendTime succeeded on records that do not decode: %v", err)
			}
			got, err := readerView(&m)
			if err != nil {
				t.Fatalf("stamped records do not decode: %v", err)
			}
			if len(got) != len(src) {
				t.Fatalf("%d records, source had %d", len(got), len(src))
			}
			for i, r := range got {
				s := src[i]
				if r.offset != b.BaseOffset+int64(s.OffsetDelta) || r.ts != b.MaxTimestamp || r.attrs != s.Attributes ||
					!bytes.Equal(r.key, s.Key) || r.nullKey != (s.Key == nil) || !bytes.Equal(r.value, s.Value) || r.nullValue != (s.Value == nil) ||
					!bytes.Equal(r.headers, s.Headers) {
					t.Fatalf("record %d: %v, source had %+v", i, r, s)
				}
			}
		}
	})
}

// TestImpossibleHeaderCounts: counts a batch header cannot honestly hold
// are refused with an error, before anything is sized by them.
func TestImpossibleHeaderCounts(t *testing.T) {
	tests := []struct {
		name           string
		raw            []byte
		densify, stamp bool
	}{
		{"record count 2^31-1", withCounts(fuzzBatch(0, 5, 0, CodecNone, nil, 0), math.MaxInt32, 0), true, true},
		{"record count -1", withCounts(fuzzBatch(0, 5, AttrLogAppendTime, CodecNone, nil, 0), -1, -2), false, true},
		{"last offset delta 2^31-1", withCounts(fuzzBatch(0, 5, 0, CodecNone, nil, 0), 0, math.MaxInt32), true, false},
		{"last offset delta -5", withCounts(fuzzBatch(0, 5, 0, CodecNone, nil, 0), 0, -5), true, false},
		{"span over MaxDensifySpan", withCounts(fuzzBatch(0, 5, 0, CodecNone, []int32{0}, 0), 1, MaxDensifySpan), true, false},
		{"span 2^26", withCounts(fuzzBatch(0, 5, 0, CodecNone, []int32{0}, 0), 1, 1<<26), true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bs := v2Batches(tc.raw)
			if len(bs) != 1 {
				t.Fatalf("%d batches", len(bs))
			}
			b := bs[0]
			if _, err := b.Records(); b.RecordCount < 0 || b.RecordCount > 1000 {
				if err == nil {
					t.Fatalf("Records accepted a count of %d", b.RecordCount)
				}
			}
			if tc.densify {
				if _, _, err := Densify(&b); err == nil {
					t.Fatal("Densify accepted it")
				}
			}
			if tc.stamp {
				if _, err := StampLogAppendTime(&b); err == nil {
					t.Fatal("StampLogAppendTime accepted it")
				}
			}
		})
	}
}

// TestDecompressionBombs: a batch a few hundred bytes long can decompress
// to gigabytes. Whatever Strait decompresses is bounded, in every codec,
// and merging is bounded as a whole. The bound is lowered to 1 MiB here;
// TestDecompressionBound checks the real one.
func TestDecompressionBombs(t *testing.T) {
	const bound = 1 << 20
	saved, savedMerge := decompressor, mergeLimit
	decompressor, mergeLimit = boundedDecompressor(bound), bound
	t.Cleanup(func() { decompressor, mergeLimit = saved, savedMerge })

	huge := AppendRecord(nil, Record{Key: []byte("k"), Value: make([]byte, bound)})
	quarter := AppendRecord(nil, Record{Key: []byte("k"), Value: make([]byte, bound/4)})
	one := func(t *testing.T, plain []byte, attrs int16, codec Codec, base int64, last int32) Batch {
		h := Header{LastOffsetDelta: last, BaseTimestamp: 5, MaxTimestamp: 5, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		raw, err := encodePlain(&h, attrs, plain, 1, codec)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > len(plain)/10 {
			t.Fatalf("%d bytes compressed to %d: not a bomb", len(plain), len(raw))
		}
		binary.BigEndian.PutUint64(raw[offBaseOffset:], uint64(base))
		bs := v2Batches(raw)
		if len(bs) != 1 {
			t.Fatalf("%d batches", len(bs))
		}
		return bs[0]
	}
	for _, codec := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			plainBomb := one(t, huge, 0, codec, 0, 0)
			if _, err := plainBomb.Records(); !errors.Is(err, ErrTooLarge) {
				t.Errorf("Records: %v, want ErrTooLarge", err)
			}
			compacted := one(t, huge, 0, codec, 0, 3)
			if _, _, err := Densify(&compacted); !errors.Is(err, ErrTooLarge) {
				t.Errorf("Densify: %v, want ErrTooLarge", err)
			}
			lat := one(t, huge, AttrLogAppendTime, codec, 0, 0)
			if _, err := StampLogAppendTime(&lat); !errors.Is(err, ErrTooLarge) {
				t.Errorf("StampLogAppendTime: %v, want ErrTooLarge", err)
			}
			// Each within the bound, five together past it.
			var run []Batch
			for i := range 5 {
				run = append(run, one(t, quarter, 0, codec, int64(i), 0))
			}
			if _, err := run[0].Records(); err != nil {
				t.Fatalf("a quarter of the bound: %v", err)
			}
			if _, _, err := Merge(run[:3]); err != nil {
				t.Errorf("Merge of three quarters: %v", err)
			}
			if _, _, err := Merge(run); !errors.Is(err, ErrTooLarge) {
				t.Errorf("Merge of five quarters: %v, want ErrTooLarge", err)
			}
		})
	}
}

// TestDecompressionBound: the real bound, with a 14-byte zstd frame that
// declares its content size: one byte over MaxDecompressedBatch is refused
// before anything is allocated; exactly the bound gets past that check and
// fails only because the frame's one byte falls short of its claim.
func TestDecompressionBound(t *testing.T) {
	frame := func(size uint64) []byte {
		b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0} // magic; single segment, 8-byte content size
		b = binary.LittleEndian.AppendUint64(b, size)
		return append(b, 0x0b, 0, 0, 0) // last block, RLE, one byte: 0
	}
	for _, tc := range []struct {
		size   uint64
		tooBig bool
	}{
		{MaxDecompressedBatch + 1, true},
		{1 << 40, true},
		{MaxDecompressedBatch, false},
	} {
		_, err := decompressor.Decompress(frame(tc.size), codecTypeOf(CodecZstd))
		if err == nil {
			t.Fatalf("content size %d: decoded a frame that lies about its size", tc.size)
		}
		if got := errors.Is(err, ErrTooLarge); got != tc.tooBig {
			t.Errorf("content size %d: error %v, want too large %v", tc.size, err, tc.tooBig)
		}
	}
}

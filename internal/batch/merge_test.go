package batch

import (
	"fmt"
	"testing"
)

// smallBatch builds a batch of n records starting at offset base with
// timestamps from ts, as a producer would, placed at base.
func smallBatch(t *testing.T, base int64, n int, ts int64, codec Codec) Batch {
	t.Helper()
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			TimestampDelta: int64(i * 3),
			OffsetDelta:    int32(i),
			Key:            []byte(fmt.Sprintf("k%d", base+int64(i))),
			Value:          []byte(fmt.Sprintf("value %d", base+int64(i))),
			Headers:        []byte{2, 2, 'h', 2, 'v'}, // one header "h"="v"
		}
		if i%4 == 3 {
			recs[i].Key = nil
		}
	}
	h := Header{LastOffsetDelta: int32(n - 1), BaseTimestamp: ts, MaxTimestamp: ts + int64((n-1)*3), ProducerID: 7, ProducerEpoch: 1, BaseSequence: 0}
	raw, err := encode(&h, 0, recs, codec)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := Split(raw)
	if err != nil || len(bs) != 1 {
		t.Fatalf("split: %v", err)
	}
	bs[0].BaseOffset = base
	return bs[0]
}

// absolute lists each record's offset, timestamp, key, value and headers.
func absolute(t *testing.T, bs []Batch) []string {
	t.Helper()
	var out []string
	for i := range bs {
		recs, err := bs[i].Records()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out = append(out, fmt.Sprintf("%d %d %q %q %x", bs[i].BaseOffset+int64(r.OffsetDelta), bs[i].BaseTimestamp+r.TimestampDelta, r.Key, r.Value, r.Headers))
		}
	}
	return out
}

func TestMerge(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			in := []Batch{
				smallBatch(t, 100, 3, 5000, codec),
				smallBatch(t, 103, 5, 4000, codec), // an earlier clock: negative deltas
				smallBatch(t, 108, 1, 9000, codec),
			}
			raw, n, err := Merge(in)
			if err != nil {
				t.Fatal(err)
			}
			if n != 9 {
				t.Fatalf("merged %d records, want 9", n)
			}
			out, err := Split(raw)
			if err != nil || len(out) != 1 || !CheckCRC(raw) {
				t.Fatalf("merged batch: %v, %d batches, crc %v", err, len(out), CheckCRC(raw))
			}
			m := out[0]
			m.BaseOffset = 100
			if m.RecordCount != 9 || m.LastOffsetDelta != 8 || m.Codec() != codec || m.MaxTimestamp != 9000 {
				t.Fatalf("header: count %d lod %d codec %d max ts %d", m.RecordCount, m.LastOffsetDelta, m.Codec(), m.MaxTimestamp)
			}
			want, got := absolute(t, in), absolute(t, []Batch{m})
			if fmt.Sprint(want) != fmt.Sprint(got) {
				t.Fatalf("records differ:\nwant %q\ngot  %q", want, got)
			}
		})
	}
}

func TestMergeRefuses(t *testing.T) {
	a := smallBatch(t, 0, 2, 1, CodecNone)
	gap := smallBatch(t, 5, 2, 1, CodecNone)
	other := smallBatch(t, 2, 2, 1, CodecGzip)
	txn := smallBatch(t, 2, 2, 1, CodecNone)
	txn.Attributes |= AttrTransactional
	for name, bs := range map[string][]Batch{"gap": {a, gap}, "codec": {a, other}, "transactional": {a, txn}, "empty": nil} {
		if _, _, err := Merge(bs); err == nil {
			t.Errorf("%s: merged", name)
		}
	}
	if !Mergeable(&a) || Mergeable(&txn) {
		t.Fatal("Mergeable")
	}
}

package mirror

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/batch"
	"github.com/strait-dev/strait/internal/testutil"
)

// rawBatch is a v2 batch of n records at base with timestamps base ts and
// max ts, LogAppendTime or not.
func rawBatch(base int64, n int32, ts, maxTs int64, logAppend bool) []byte {
	raw := batch.Filler(n, ts)
	binary.BigEndian.PutUint64(raw[0:8], uint64(base))
	binary.BigEndian.PutUint64(raw[35:43], uint64(maxTs))
	if logAppend {
		binary.BigEndian.PutUint16(raw[21:23], binary.BigEndian.Uint16(raw[21:23])|0x08)
	}
	return raw
}

func TestTimestampAt(t *testing.T) {
	first := rawBatch(100, 10, 1_000, 1_009, false)  // offsets 100-109
	second := rawBatch(110, 5, 2_000, 2_004, false)  // 110-114
	appended := rawBatch(110, 5, 2_000, 3_000, true) // LogAppendTime: the max is the broker's time
	two := append(append([]byte{}, first...), second...)
	cut := append(append([]byte{}, first...), second[:61]...) // a broker cut the answer short
	v1 := append([]byte{}, first...)
	v1[16] = 1
	tests := []struct {
		name   string
		raw    []byte
		offset int64
		want   int64
		ok     bool
	}{
		{"batch starting at the offset", two, 100, 1_000, true},
		{"batch holding the offset", two, 105, 1_000, true},
		{"second batch", two, 110, 2_000, true},
		{"second batch cut to its header", cut, 112, 2_000, true},
		{"LogAppendTime batch: its max timestamp", append(append([]byte{}, first...), appended...), 110, 3_000, true},
		{"beyond the batches", two, 115, 0, false},
		{"cut inside the first header", first[:40], 100, 0, false},
		{"empty answer", nil, 0, 0, false},
		{"message format v1", v1, 100, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := timestampAt(tc.raw, tc.offset)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("timestampAt(%d) = %d, %v; want %d, %v", tc.offset, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestSourceTimestamps reads batch timestamps from kfake: at a batch's
// base, inside a batch, at the end (absent), and with batches larger than
// a partition's share of the request (kfake then leaves all but the
// first partition out, and they are asked again alone).
func TestSourceTimestamps(t *testing.T) {
	src := testutil.NewCluster(t)
	cl := testutil.Client(t, src.ListenAddrs(), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	testutil.CreateTopic(t, cl, "ts", 3, nil)
	at := func(p int32, ts int64, n int, size int) {
		t.Helper()
		for i := 0; i < n; i++ {
			r := &kgo.Record{Topic: "ts", Partition: p, Value: bytes.Repeat([]byte{'x'}, size), Timestamp: time.UnixMilli(ts + int64(i))}
			if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One record per batch (one ProduceSync each): offset o has ts+o.
	at(0, 1_000, 3, 10)
	at(1, 5_000, 2, 200<<10) // each batch larger than ageFetchBytes
	at(2, 9_000, 2, 200<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := SourceTimestamps(ctx, cl, "ts", map[int32]int64{0: 2, 1: 1, 2: 0})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{0: 1_002, 1: 5_001, 2: 9_000}
	for p, ts := range want {
		if got[p] != ts {
			t.Errorf("partition %d: %d, want %d (all: %v)", p, got[p], ts, got)
		}
	}
	got, err = SourceTimestamps(ctx, cl, "ts", map[int32]int64{0: 3, 1: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("at the end of the log: %v, want nothing", got)
	}
}

// TestHeldAgeFollowsTheWindow: the oldest batch out that has not landed
// is the one whose age counts; as batches land, the next one's takes its
// place, and with nothing out the runner's read (by offset) is used.
func TestHeldAgeFollowsTheWindow(t *testing.T) {
	r := &Runner{cfg: Config{Observer: nopObserver{}}}
	tr := r.newTopicRun(Spec{Topic: "t", SourceTopic: "t", Partitions: 1}, nil)
	w := &worker{r: r, t: tr, p: tr.parts[0]}
	a := &inFlight{raw: rawBatch(0, 10, 1_000, 1_009, false), want: 0, records: 10}
	b := &inFlight{raw: rawBatch(10, 10, 2_000, 2_009, false), want: 10, records: 10}
	w.noteHeld(a.want, a.raw)
	w.window = []*inFlight{a, b}
	w.p.destEnd.Store(0)
	if got := w.p.oldestMs(0); got != 1_000 {
		t.Fatalf("before anything landed: %d, want 1000", got)
	}
	w.popWindow(1)
	w.landedOut(a)
	if got := w.p.oldestMs(10); got != 2_000 {
		t.Fatalf("after the first landed: %d, want 2000", got)
	}
	w.popWindow(1)
	w.landedOut(b)
	if got := w.p.oldestMs(20); got != 0 {
		t.Fatalf("nothing held at 20: %d, want 0 (unknown)", got)
	}
	w.p.read.set(20, 3_000)
	if got := w.p.oldestMs(20); got != 3_000 {
		t.Fatalf("read at 20: %d, want 3000", got)
	}
	if c := w.p.counters; c.Records.Load() != 20 || c.Bytes.Load() != int64(len(a.raw)+len(b.raw)) {
		t.Fatalf("counters: %d records, %d bytes", c.Records.Load(), c.Bytes.Load())
	}
}

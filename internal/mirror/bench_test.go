package mirror

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// BenchmarkCopy measures the copy path end to end on kfake: a runner
// copies a source topic of batches too large to merge (each goes through
// the pipeline on its own, so the per-batch bookkeeping counts) into a
// fresh mirror topic per iteration. kfake's own cost dominates; the figure
// is for comparing a change of the copy path with what came before.
func BenchmarkCopy(b *testing.B) {
	const (
		partitions = 4
		records    = 32000 // 1 KiB each, about 20 per batch
	)
	src := testutil.NewCluster(b)
	dst := testutil.NewCluster(b)
	srcCl := testutil.Client(b, src.ListenAddrs())
	dstCl := testutil.Client(b, dst.ListenAddrs())
	testutil.CreateTopic(b, srcCl, "src", partitions, nil)
	p := testutil.Client(b, src.ListenAddrs(), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(24<<10), kgo.ProducerLinger(5*time.Millisecond))
	value := make([]byte, 1<<10)
	var rs []*kgo.Record
	for i := 0; i < records; i++ {
		rs = append(rs, &kgo.Record{Topic: "src", Partition: int32(i % partitions), Value: value})
	}
	if err := p.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	_, srcEnds := testutil.Offsets(b, srcCl, "src")
	b.SetBytes(records << 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		topic := fmt.Sprintf("dst%d", i)
		testutil.CreateTopic(b, dstCl, topic, partitions, nil)
		b.StartTimer()
		r := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: newHooks()})
		r.Set([]Spec{{Topic: topic, SourceTopic: "src", Partitions: partitions, Copying: true, Fresh: true}})
		// Polled every millisecond: testutil.WaitFor's growing interval
		// would be most of the figure.
		deadline := time.Now().Add(time.Minute)
		for !copied(r, topic, srcEnds) {
			if time.Now().After(deadline) {
				b.Fatalf("not copied in a minute: %+v", r.Lags(topic))
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		r.Close()
		b.StartTimer()
	}
}

// copied reports whether every partition of topic ends where the source does.
func copied(r *Runner, topic string, srcEnds map[int32]int64) bool {
	for _, l := range r.Lags(topic) {
		if l.MirrorEnd != srcEnds[l.Partition] {
			return false
		}
	}
	return true
}

// BenchmarkLanded measures what the worker does for every batch that
// lands (the cursor, the lag figures, the counters): the part of the copy
// path that runs per batch and does not wait on a cluster.
func BenchmarkLanded(b *testing.B) {
	r := &Runner{cfg: Config{Observer: nopObserver{}}}
	t := r.newTopicRun(Spec{Topic: "t", SourceTopic: "t", Partitions: 1}, nil)
	w := &worker{r: r, t: t, p: t.parts[0]}
	raw := make([]byte, 16<<10)
	raw[16] = 2 // magic: a v2 batch header
	b.ReportAllocs()
	b.ResetTimer()
	next := &inFlight{raw: raw}
	for i := 0; i < b.N; i++ {
		f := &inFlight{raw: raw, want: int64(i) * 20, records: 20}
		next.want = f.want + 20
		w.window = append(w.window[:0], next) // the batch out after f
		w.landedOut(f)
	}
}

package mirror

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// ownedSpec is orders with 4 partitions, owned as given.
func ownedSpec(owned ...int32) Spec {
	o := map[int32]bool{}
	for _, p := range owned {
		o[p] = true
	}
	return Spec{Topic: "orders", SourceTopic: "orders", Partitions: 4, Copying: true, Fresh: true, Owned: o}
}

// running lists the partitions of topic whose worker runs in r.
func running(r *Runner, topic string) []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int32
	if t, ok := r.topics[topic]; ok {
		for _, p := range t.parts {
			if p.running {
				out = append(out, p.id)
			}
		}
	}
	return out
}

// TestRunnersSharePartitions runs two runners of one link over the same
// topic, each owning half of its partitions, then moves a partition from
// one to the other: each partition is copied by its owner only, a revoked
// partition has stopped when Set returns, and the partitions that stay
// keep their workers.
func TestRunnersSharePartitions(t *testing.T) {
	src, dst, srcCl, dstCl := clusterPair(t, "orders", 4)
	produce(t, srcCl, "orders", 400, kgo.NoCompression())

	ha, hb := newHooks(), newHooks()
	a := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: ha})
	b := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: hb})
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	a.Set([]Spec{ownedSpec(0, 1)})
	b.Set([]Spec{ownedSpec(2, 3)})
	testutil.WaitSameEnds(t, 30*time.Second, srcCl, dstCl, "orders")
	if got := fmt.Sprint(running(a, "orders"), running(b, "orders")); got != "[0 1] [2 3]" {
		t.Fatalf("running partitions: %s", got)
	}

	// Partition 1 moves from a to b: a gives it up first.
	aWorkers := workerOf(a, "orders", 0)
	a.Set([]Spec{ownedSpec(0)})
	if got := fmt.Sprint(running(a, "orders")); got != "[0]" {
		t.Fatalf("a still runs %s after giving partition 1 up", got)
	}
	if workerOf(a, "orders", 0) != aWorkers {
		t.Fatal("partition 0 was restarted when partition 1 left")
	}
	// While nobody owns partition 1, nothing is copied to it.
	before := endOf(t, dstCl, 1)
	produce(t, srcCl, "orders", 400, kgo.NoCompression())
	testutil.WaitFor(t, 30*time.Second, "the owned partitions caught up", func() error {
		_, srcEnds := testutil.Offsets(t, srcCl, "orders")
		_, dstEnds := testutil.Offsets(t, dstCl, "orders")
		for _, p := range []int32{0, 2, 3} {
			if srcEnds[p] != dstEnds[p] {
				return fmt.Errorf("partition %d at %d of %d", p, dstEnds[p], srcEnds[p])
			}
		}
		return nil
	})
	if after := endOf(t, dstCl, 1); after != before {
		t.Fatalf("partition 1 moved from %d to %d with no owner", before, after)
	}
	// The lag of a partition owned elsewhere is read on demand.
	a.RefreshLags(context.Background(), "orders")
	for _, l := range a.Lags("orders") {
		if l.Partition == 1 && l.Lag == 0 {
			t.Fatalf("partition 1 shows no lag on a: %+v", l)
		}
	}
	b.Set([]Spec{ownedSpec(1, 2, 3)})
	testutil.WaitSameEnds(t, 30*time.Second, srcCl, dstCl, "orders")
	if diff := testutil.DiffRecords(testutil.ReadAll(t, src.ListenAddrs(), "orders"), testutil.ReadAll(t, dst.ListenAddrs(), "orders")); diff != "" {
		t.Fatal(diff)
	}
	ha.mu.Lock()
	failed := fmt.Sprint(ha.failed)
	ha.mu.Unlock()
	hb.mu.Lock()
	failed += fmt.Sprint(hb.failed)
	hb.mu.Unlock()
	if failed != "map[]map[]" {
		t.Fatalf("failures: %s", failed)
	}
}

// workerOf returns what identifies the running worker of a partition: the
// channel closed when it ends.
func workerOf(r *Runner, topic string, p int32) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.topics[topic].parts[p].done
}

func endOf(t *testing.T, cl *kgo.Client, p int32) int64 {
	t.Helper()
	_, ends := testutil.Offsets(t, cl, "orders")
	return ends[p]
}

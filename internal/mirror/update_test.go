package mirror

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestUpdateLeavesOtherTopicsAlone: Update sets or drops the topics it
// names only. The workers of the other topics keep running, the same ones,
// and keep copying; a dropped topic stops before Update returns; Set, by
// contrast, drops what it is not given.
func TestUpdateLeavesOtherTopicsAlone(t *testing.T) {
	_, _, srcCl, dstCl := clusterPair(t, "a", 3)
	testutil.CreateTopic(t, srcCl, "b", 2, nil)
	testutil.CreateTopic(t, dstCl, "b", 2, nil)
	produce(t, srcCl, "a", 300, kgo.NoCompression())
	produce(t, srcCl, "b", 200, kgo.NoCompression())
	spec := func(topic string, n int32) Spec {
		return Spec{Topic: topic, SourceTopic: topic, Partitions: n, Copying: true, Fresh: true}
	}
	r, h := copyTopic(t, srcCl, dstCl, "a", 3)
	workers := func(topic string) string {
		r.mu.Lock()
		defer r.mu.Unlock()
		var out []string
		if tr, ok := r.topics[topic]; ok {
			for _, p := range tr.parts {
				out = append(out, fmt.Sprintf("%p/%v", p.done, p.running))
			}
		}
		return fmt.Sprint(out)
	}
	before := workers("a")

	r.Update([]Spec{spec("b", 2)})
	testutil.WaitSameEnds(t, 30*time.Second, srcCl, dstCl, "b")
	if got := workers("a"); got != before {
		t.Fatalf("adding b restarted a's workers: %s, were %s", got, before)
	}
	// a copies on.
	produce(t, srcCl, "a", 100, kgo.NoCompression())
	testutil.WaitSameEnds(t, 30*time.Second, srcCl, dstCl, "a")

	// Updating b with the same spec again changes nothing either.
	bWorkers := workers("b")
	r.Update([]Spec{spec("b", 2)})
	if workers("b") != bWorkers || workers("a") != before {
		t.Fatal("an unchanged spec restarted workers")
	}

	// Dropping b stops it before Update returns; a is untouched.
	r.Update(nil, "b")
	if got := running(r, "b"); len(got) != 0 {
		t.Fatalf("b still runs %v after it was dropped", got)
	}
	_, bEnds := testutil.Offsets(t, dstCl, "b")
	produce(t, srcCl, "b", 50, kgo.NoCompression())
	produce(t, srcCl, "a", 50, kgo.NoCompression())
	testutil.WaitSameEnds(t, 30*time.Second, srcCl, dstCl, "a")
	if _, now := testutil.Offsets(t, dstCl, "b"); fmt.Sprint(now) != fmt.Sprint(bEnds) {
		t.Fatalf("b moved from %v to %v after it was dropped", bEnds, now)
	}
	if got := workers("a"); got != before {
		t.Fatalf("dropping b restarted a's workers: %s, were %s", got, before)
	}

	// Set replaces everything: a goes when only b is given.
	r.Set([]Spec{spec("b", 2)})
	if got := running(r, "a"); len(got) != 0 {
		t.Fatalf("a still runs %v after a Set without it", got)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failed) > 0 {
		t.Fatalf("failures: %v", h.failed)
	}
}

package mirror

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestListEndsRoutesByCachedLeaders: end offsets are asked of the leaders
// the cache knows, without a metadata request; after a leader moved, the
// partition is still answered in the same call (through kgo), and the
// cache learns the new leader for the next call.
func TestListEndsRoutesByCachedLeaders(t *testing.T) {
	c := testutil.NewCluster(t, kfake.NumBrokers(3))
	cl := testutil.Client(t, c.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	testutil.CreateTopic(t, cl, "e", 6, nil)
	for p := range int32(6) {
		for range p + 1 {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "e", Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := &metaCache{cl: testutil.Client(t, c.ListenAddrs())}
	if _, err := m.load(ctx, []string{"e"}); err != nil {
		t.Fatal(err)
	}
	meta := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Metadata}, Observe: true, Count: -1})
	set := kadm.TopicsSet{}
	for p := range int32(6) {
		set.Add("e", p)
	}
	check := func(what string) {
		t.Helper()
		ends, err := m.listEnds(ctx, set)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for p := range int32(6) {
			if o, ok := ends.Lookup("e", p); !ok || o.Err != nil || o.Offset != int64(p+1) {
				t.Fatalf("%s: partition %d: %+v (%v)", what, p, o, ok)
			}
		}
	}
	check("cached leaders")
	if n := meta.Hits(); n != 0 {
		t.Fatalf("%d metadata requests with every leader cached", n)
	}

	old := c.LeaderFor("e", 2)
	if err := c.MoveTopicPartition("e", 2, (old+1)%3); err != nil {
		t.Fatal(err)
	}
	check("a leader moved")
	if tm, _ := m.cached("e"); tm.leaders[2] != (old+1)%3 {
		t.Fatalf("the cache still has leader %d for partition 2", tm.leaders[2])
	}
	before := meta.Hits()
	check("the cache learned")
	if n := meta.Hits() - before; n != 0 {
		t.Fatalf("%d metadata requests once the cache learned the new leader", n)
	}
}

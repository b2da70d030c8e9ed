package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestConsumeAndCompare: the consuming comparison counts identical records
// and stops at the first that differs.
func TestConsumeAndCompare(t *testing.T) {
	src, dst := testutil.NewCluster(t), testutil.NewCluster(t)
	ts := time.Now()
	for i, c := range []*kgo.Client{
		testutil.Client(t, src.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner())),
		testutil.Client(t, dst.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner())),
	} {
		testutil.CreateTopic(t, c, "t", 2, nil)
		for j := range 50 {
			v := fmt.Sprintf("v%d", j)
			if i == 1 && j == 37 {
				v = "changed"
			}
			r := &kgo.Record{Topic: "t", Partition: int32(j % 2), Key: fmt.Appendf(nil, "k%d", j), Value: []byte(v), Timestamp: ts}
			if err := c.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	ends := map[int32]int64{0: 25, 1: 25}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := consumeAndCompare(ctx, src.ListenAddrs()[0], dst.ListenAddrs()[0], "t", ends)
	if err == nil || !strings.Contains(err.Error(), "partition 1: offset 18 differs") {
		t.Fatalf("compared %d, err %v", n, err)
	}
	n, err = consumeAndCompare(ctx, src.ListenAddrs()[0], src.ListenAddrs()[0], "t", ends)
	if err != nil || n != 50 {
		t.Fatalf("the source with itself: %d compared, %v", n, err)
	}
}

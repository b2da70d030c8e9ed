package mirror

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestIdleMirrorWrittenByOthersFails: a record written to an idle mirror
// partition by someone other than Strait is found by the runner's check of
// idle partitions and fails the mirror.
func TestIdleMirrorWrittenByOthersFails(t *testing.T) {
	_, dst, srcCl, dstCl := clusterPair(t, "fw", 2)
	produce(t, srcCl, "fw", 20, kgo.NoCompression())
	_, h := copyTopic(t, srcCl, dstCl, "fw", 2)
	other := testutil.Client(t, dst.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := other.ProduceSync(context.Background(), &kgo.Record{Topic: "fw", Partition: 1, Value: []byte("not from the source")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "the mirror failed", func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if msg := h.failed["fw"]; !strings.Contains(msg, "other than Strait wrote") {
			return fmt.Errorf("failures: %v", h.failed)
		}
		return nil
	})
}

func TestForeignCheckDue(t *testing.T) {
	now := time.Unix(10_000, 0)
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixNano() }
	for _, tc := range []struct {
		name                string
		idleFor, checkedAgo time.Duration
		due                 bool
	}{
		{"just idle, never checked", 500 * time.Millisecond, time.Hour, true},
		{"idle 3 s, checked 1 s ago", 3 * time.Second, time.Second, true},
		{"idle 3 s, checked 0.5 s ago", 3 * time.Second, 500 * time.Millisecond, false},
		{"idle 40 s, checked 5 s ago", 40 * time.Second, 5 * time.Second, false},
		{"idle 40 s, checked 10 s ago", 40 * time.Second, 10 * time.Second, true},
		{"idle an hour, checked 20 s ago", time.Hour, 20 * time.Second, false},
		{"idle an hour, checked 30 s ago", time.Hour, 30 * time.Second, true},
		{"went idle again since the check", 200 * time.Millisecond, 300 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := foreignCheckDue(now, ago(tc.idleFor), ago(tc.checkedAgo)); got != tc.due {
				t.Fatalf("due %v, want %v", got, tc.due)
			}
		})
	}
}

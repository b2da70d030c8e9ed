package link

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/store"
	"github.com/strait-dev/strait/internal/testutil"
)

// TestLeadRetriesTransientErrors: taking the active role over reads the
// state topic to its end; errors that heal (a leader election, an
// unexpected error) are waited out, not returned. Before, one such answer
// made a starting instance exit (chaos, 100 cycles).
func TestLeadRetriesTransientErrors(t *testing.T) {
	for _, e := range []*kerr.Error{kerr.OffsetNotAvailable, kerr.LeaderNotAvailable, kerr.UnknownServerError} {
		t.Run(e.Message, func(t *testing.T) {
			c := testutil.NewCluster(t, kfake.ClusterID("dst"))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := store.Open(ctx, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, store.DefaultTopic, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			m, err := New(ctx, Config{Store: st, Dest: testutil.Client(t, c.ListenAddrs()), ClusterID: "dst", Follower: true})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets, kmsg.Metadata}, Topic: store.DefaultTopic, Err: e, Count: 3})
			defer h.Remove()
			if err := m.Lead(ctx); err != nil {
				t.Fatalf("lead: %v", err)
			}
			if !m.Leading() {
				t.Fatal("not leading")
			}
			if h.Hits() == 0 {
				t.Fatal("no fault was met: the test tests nothing")
			}
		})
	}
}

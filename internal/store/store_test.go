package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestLoadReadsWholeUnderFaults writes a state topic, then loads it again
// while the cluster is slow or failing: the load must wait and return every
// record, never a partial catalog.
func TestLoadReadsWholeUnderFaults(t *testing.T) {
	const topic = "__strait_state"
	cases := []struct {
		name   string
		inject func(c *kfake.Cluster)
	}{
		{"fetches answered after 4 s", func(c *kfake.Cluster) {
			held := 0
			c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
				held++
				if held <= 3 {
					c.SleepControl(func() { time.Sleep(4 * time.Second) })
				}
				if held < 3 {
					c.KeepControl()
				}
				return nil, nil, false
			})
		}},
		{"metadata, offsets and fetch errors", func(c *kfake.Cluster) {
			c.Fault(
				kfake.Fault{Keys: []kmsg.Key{kmsg.Metadata}, Topic: topic, Err: kerr.LeaderNotAvailable, Count: 3},
				kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: topic, Err: kerr.NotLeaderForPartition, Count: 2},
				kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: topic, Err: kerr.UnknownServerError, Count: 3},
			)
		}},
		{"dropped connections", func(c *kfake.Cluster) {
			for _, key := range []kmsg.Key{kmsg.Metadata, kmsg.ListOffsets, kmsg.Fetch} {
				c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
					return nil, fmt.Errorf("dropped"), true // closes the connection
				})
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.NewCluster(t)
			base := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := Open(ctx, base, topic, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for i := 0; i < 300; i++ {
				k, v := fmt.Sprintf("mirror/l/t%d", i%120), fmt.Sprintf("v%d", i)
				if _, err := s.Put(ctx, k, []byte(v)); err != nil {
					t.Fatal(err)
				}
				want[k] = v
			}
			if _, err := s.Delete(ctx, "mirror/l/t7"); err != nil {
				t.Fatal(err)
			}
			delete(want, "mirror/l/t7")
			s.Close()

			tc.inject(c)
			s2, err := Open(ctx, base, topic, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			kv, next, err := s2.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if next != 301 {
				t.Errorf("follow from %d, want 301", next)
			}
			got := map[string]string{}
			for k, e := range kv {
				if e.Value != nil {
					got[k] = string(e.Value)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("loaded %d live keys, want %d", len(got), len(want))
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("%s = %q, want %q", k, got[k], v)
				}
			}
			if e, ok := kv["mirror/l/t7"]; !ok || e.Value != nil {
				t.Fatalf("deleted key: %+v, %v", e, ok)
			}
		})
	}
}

// TestLoadRemoteWithoutStateTopic: a cluster no Strait manages answers
// ErrNoStateTopic at once rather than being waited for.
func TestLoadRemoteWithoutStateTopic(t *testing.T) {
	c := testutil.NewCluster(t)
	cl := testutil.Client(t, c.ListenAddrs())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := NewRemote(cl, "").Load(ctx); err != ErrNoStateTopic {
		t.Fatalf("got %v, want ErrNoStateTopic", err)
	}
}

// TestCheckFormat refuses a state topic written by a newer Strait or for
// another cluster, and writes the format record when there is none.
func TestCheckFormat(t *testing.T) {
	c := testutil.NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckFormat(ctx, map[string]Entry{}, "c1"); err != nil {
		t.Fatal(err)
	}
	kv, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckFormat(ctx, kv, "c1"); err != nil {
		t.Fatalf("own format refused: %v", err)
	}
	for _, tc := range []struct{ value, cluster, want string }{
		{`{"version":2,"cluster_id":"c1"}`, "c1", "newer Strait"},
		{`{"version":1,"cluster_id":"c1"}`, "c2", "belongs to cluster c1"},
		{`not json`, "c1", "unreadable"},
	} {
		err := s.CheckFormat(ctx, map[string]Entry{FormatKey: {Value: []byte(tc.value)}}, tc.cluster)
		if err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("%s for %s: got %v, want %q", tc.value, tc.cluster, err, tc.want)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

// TestPutMany writes records in one call: each comes back with its own
// offset, in order, in a few produce requests rather than one each; a
// fault answered after the append is retried without duplicates; a
// refusal stores none of the refused records and says so, and the store
// writes again afterwards. What Load reads is what the offsets say.
func TestPutMany(t *testing.T) {
	const n = 500
	cases := []struct {
		name    string
		fault   *kfake.Fault
		refused bool
	}{
		{"no fault", nil, false},
		{"timed out after the append", &kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut}, false},
		{"not enough replicas after the append", &kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicasAfterAppend}, false},
		{"refused", &kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.InvalidRecord}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.NewCluster(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := Open(ctx, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Put(ctx, "first", []byte("x")); err != nil {
				t.Fatal(err)
			}
			produces := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Observe: true, Count: -1})
			if tc.fault != nil {
				c.Fault(*tc.fault)
			}
			recs := make([]Record, n)
			for i := range recs {
				recs[i] = Record{Key: fmt.Sprintf("mirror/l/t%d", i), Value: []byte(fmt.Sprintf("v%d", i))}
			}
			recs[n-1].Value = nil // a delete
			offs, err := s.PutMany(ctx, recs)
			if tc.refused != (err != nil) {
				t.Fatalf("PutMany: %v", err)
			}
			if !tc.refused {
				// A few requests (the producer sends what it has while
				// the rest is still being handed over, more of them on a
				// busy machine, and retries what a fault answered), never
				// one per record.
				t.Logf("%d produce requests", produces.Hits())
				if h := produces.Hits(); h > n/10 {
					t.Fatalf("%d produce requests for %d records", h, n)
				}
			}
			kv, next, err := s.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			stored := 0
			for i, off := range offs {
				e, ok := kv[recs[i].Key]
				if off < 0 {
					if ok {
						t.Fatalf("%s: no offset, but stored at %d", recs[i].Key, e.Offset)
					}
					continue
				}
				stored++
				if !ok || e.Offset != off || string(e.Value) != string(recs[i].Value) || (recs[i].Value == nil) != (e.Value == nil) {
					t.Fatalf("%s: offset %d, loaded %+v (%v)", recs[i].Key, off, e, ok)
				}
				if i > 0 && offs[i-1] >= 0 && off != offs[i-1]+1 {
					t.Fatalf("%s at %d after %d: not in order, or a duplicate between", recs[i].Key, off, offs[i-1])
				}
			}
			if tc.refused && stored == n {
				t.Fatal("refused, yet every record has an offset")
			}
			if !tc.refused && (stored != n || next != int64(n)+1) {
				t.Fatalf("%d of %d stored, topic ends at %d", stored, n, next)
			}
			// The store writes on.
			if off, err := s.Put(ctx, "after", []byte("y")); err != nil || off < next {
				t.Fatalf("Put after PutMany: %d, %v", off, err)
			}
		})
	}
}

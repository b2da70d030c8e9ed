package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/testutil"
)

// Unknown outcomes: a write that landed and was answered with an error, a
// write whose answer never came, a read that failed right after a marker
// landed. Each must leave the mirror identical to the source and never
// failed. Before the fence and the read-back, each of these failed the
// mirror with "something other than Strait wrote to the mirror topic"
// within a minute at a 2% rate.

// testLog is the runner's log in tests: on stderr with STRAIT_TEST_LOG set.
func testLog() *slog.Logger {
	if os.Getenv("STRAIT_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// sameCopy checks that partition 0 of topic is identical on both clusters:
// records (read_uncommitted) and transaction markers.
func sameCopy(t *testing.T, src, dst *kfake.Cluster, srcCl, dstCl *kgo.Client, topic string) {
	t.Helper()
	// Control records are read (a partition may end with a marker) and
	// compared by testutil.Markers: the destination stamps its own.
	read := func(c *kfake.Cluster) map[int32][]*kgo.Record {
		out := testutil.ReadAll(t, c.ListenAddrs(), topic, kgo.KeepControlRecords())
		for p, rs := range out {
			kept := rs[:0]
			for _, r := range rs {
				if !r.Attrs.IsControl() {
					kept = append(kept, r)
				}
			}
			out[p] = kept
		}
		return out
	}
	if diff := testutil.DiffRecords(read(src), read(dst)); diff != "" {
		t.Fatal(diff)
	}
	if diff := testutil.DiffMarkers(testutil.Markers(t, srcCl, topic, 0), testutil.Markers(t, dstCl, topic, 0)); diff != "" {
		t.Fatal(diff)
	}
}

// waitCopied waits until the mirror ends where the source does, failing
// at once if the runner failed the topic. The destination's client is the
// runner's: a metadata answer faulted a moment before the faults stopped
// may still be in its cache, so an error reading the ends is waited out.
func waitCopied(t *testing.T, h *hooks, srcCl, dstCl *kgo.Client, topic string, d time.Duration) {
	t.Helper()
	_, srcEnds := testutil.Offsets(t, srcCl, topic)
	testutil.WaitFor(t, d, "mirror caught up", func() error {
		h.mu.Lock()
		failed := h.failed[topic]
		h.mu.Unlock()
		if failed != "" {
			t.Fatalf("the mirror failed: %s", failed)
		}
		ends, err := endOffsets(dstCl, topic)
		if err != nil {
			return err
		}
		for p, e := range srcEnds {
			if ends[p] != e {
				return fmt.Errorf("partition %d at %d of %d", p, ends[p], e)
			}
		}
		return nil
	})
}

// endOffsets reads the end offsets of topic's partitions.
func endOffsets(cl *kgo.Client, topic string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// produceTxns writes n transactions of a few records to partition 0, every
// third aborted, with plain records between them.
func produceTxns(t *testing.T, addrs []string, topic string, n int) {
	t.Helper()
	ctx := context.Background()
	tx := testutil.Client(t, addrs, kgo.TransactionalID("app-"+topic), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	plain := testutil.Client(t, addrs, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	for i := 0; i < n; i++ {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 3; j++ {
			if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("t%d.%d", i, j))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(i%3 != 2)); err != nil {
			t.Fatal(err)
		}
		if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("p%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnknownOutcomesDoNotFailTheMirror(t *testing.T) {
	// rate faults a share of the matching requests while on is set.
	rate := func(on *atomic.Bool, p float64) func(kmsg.Request) bool {
		var mu sync.Mutex
		rng := rand.New(rand.NewSource(1))
		return func(kmsg.Request) bool {
			mu.Lock()
			defer mu.Unlock()
			return on.Load() && rng.Float64() < p
		}
	}
	cases := []struct {
		name string
		txns bool
		// inject installs the faults on the destination; they apply
		// while on is set.
		inject func(dst *kfake.Cluster, on *atomic.Bool)
	}{
		{"produce answered REQUEST_TIMED_OUT after the append", false, func(dst *kfake.Cluster, on *atomic.Bool) {
			dst.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Err: kerr.RequestTimedOut, Count: -1, When: rate(on, 0.3)})
		}},
		{"produce answered NOT_ENOUGH_REPLICAS_AFTER_APPEND", false, func(dst *kfake.Cluster, on *atomic.Bool) {
			dst.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Err: kerr.NotEnoughReplicasAfterAppend, Count: -1, When: rate(on, 0.3)})
		}},
		{"produce answered after the client gave up", false, func(dst *kfake.Cluster, on *atomic.Bool) {
			hold := rate(on, 0.2)
			dst.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				dst.KeepControl()
				if hold(req) {
					// Held past the produce timeout, then appended.
					dst.SleepControl(func() { time.Sleep(1500 * time.Millisecond) })
				}
				return nil, nil, false
			})
		}},
		{"list offsets, metadata and end transaction fail around markers", true, func(dst *kfake.Cluster, on *atomic.Bool) {
			dst.Fault(
				kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: "t", Err: kerr.OffsetNotAvailable, Count: -1, When: rate(on, 0.3)},
				kfake.Fault{Keys: []kmsg.Key{kmsg.Metadata}, Topic: "t", Err: kerr.LeaderNotAvailable, Count: -1, When: rate(on, 0.1)},
				kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.RequestTimedOut, Count: -1, When: rate(on, 0.3)},
			)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, dst, srcCl, dstCl := clusterPair(t, "t", 1)
			var on atomic.Bool
			on.Store(true)
			tc.inject(dst, &on)
			h := newHooks()
			r := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: h, ProduceTimeout: time.Second, Log: testLog()})
			defer r.Close()
			r.Set([]Spec{{Topic: "t", SourceTopic: "t", Partitions: 1, Copying: true, Fresh: true}})
			// Written while the runner copies and its idle check runs.
			p := testutil.Client(t, src.ListenAddrs(), kgo.ProducerLinger(0), kgo.DefaultProduceTopic("t"))
			for i := 0; i < 30; i++ {
				if tc.txns {
					produceTxns(t, src.ListenAddrs(), "t", 2)
				} else {
					// Batches over mergeBelow: several out at once.
					var rs []*kgo.Record
					for j := 0; j < 20; j++ {
						rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprint(j)), Value: make([]byte, 1024)})
					}
					if err := p.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(30 * time.Millisecond)
			}
			time.Sleep(2 * time.Second) // faults still on: copying goes on under them
			on.Store(false)
			waitCopied(t, h, srcCl, dstCl, "t", 90*time.Second)
			// Long enough for the idle check to look at the end again.
			time.Sleep(1500 * time.Millisecond)
			h.mu.Lock()
			failed := h.failed["t"]
			h.mu.Unlock()
			if failed != "" {
				t.Fatalf("the mirror failed: %s", failed)
			}
			sameCopy(t, src, dst, srcCl, dstCl, "t")
		})
	}
}

// TestKilledBetweenEpochBumpAndFirstBatch: a runner replaying a source
// transaction is stopped right after the destination transaction began
// under a new epoch (KIP-890 bumps it at every EndTxn) and before its first
// data batch landed. The next runner resumes that transaction: it must
// take the sequence for the new epoch (0), not the one the partition had
// under the previous epoch, or the broker refuses it forever.
func TestKilledBetweenEpochBumpAndFirstBatch(t *testing.T) {
	src, dst, srcCl, dstCl := clusterPair(t, "t", 1)
	produceTxns(t, src.ListenAddrs(), "t", 3)

	var mu sync.Mutex
	ended, swallowed := false, false
	stopped := make(chan struct{})
	dst.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		ended = true
		mu.Unlock()
		return nil, nil, false
	})
	dst.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ProduceRequest)
		mu.Lock()
		defer mu.Unlock()
		if req.TransactionID == nil || !ended || swallowed {
			dst.KeepControl()
			return nil, nil, false
		}
		swallowed = true
		close(stopped)
		return nil, nil, true // the first batch of the second transaction never lands
	})
	h := newHooks()
	r1 := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: h, ProduceTimeout: time.Second, Log: testLog()})
	r1.Set([]Spec{{Topic: "t", SourceTopic: "t", Partitions: 1, Copying: true, Fresh: true}})
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("the second transaction's first batch was never sent")
	}
	r1.Close()

	r2 := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: h, Log: testLog()})
	defer r2.Close()
	h.mu.Lock()
	writers := map[int32]WriterID{0: h.writers["t/0"]}
	h.mu.Unlock()
	r2.Set([]Spec{{Topic: "t", SourceTopic: "t", Partitions: 1, Copying: true, Writers: writers}})
	waitCopied(t, h, srcCl, dstCl, "t", 30*time.Second)
	sameCopy(t, src, dst, srcCl, dstCl, "t")
}

// TestCoordinatorOutageDoesNotAbortOpenTransaction: a destination
// transaction replaying an open source transaction is left open by a
// runner that stopped. The next runner cannot describe transactions for a
// while (the coordinator is unavailable for longer than a client retries).
// It must wait, not take the failure for "no open transaction": a fresh
// InitProducerID would abort the open transaction and put an abort marker
// where the source later has its commit.
func TestCoordinatorOutageDoesNotAbortOpenTransaction(t *testing.T) {
	src := testutil.NewCluster(t)
	dst := testutil.NewCluster(t)
	srcCl := testutil.Client(t, src.ListenAddrs())
	dstCl := testutil.Client(t, dst.ListenAddrs(), kgo.RequestRetries(1)) // the outage outlasts its retries
	testutil.CreateTopic(t, srcCl, "t", 1, nil)
	testutil.CreateTopic(t, dstCl, "t", 1, nil)
	ctx := context.Background()
	tx := testutil.Client(t, src.ListenAddrs(), kgo.TransactionalID("app"), kgo.DefaultProduceTopic("t"), kgo.ProducerLinger(0))
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint("open ", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	h := newHooks()
	r1 := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: h})
	r1.Set([]Spec{{Topic: "t", SourceTopic: "t", Partitions: 1, Copying: true, Fresh: true}})
	waitCopied(t, h, srcCl, dstCl, "t", 30*time.Second)
	r1.Close()

	outage := dst.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.DescribeTransactions}, Err: kerr.CoordinatorNotAvailable, Count: -1})
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	r2 := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: h, Log: testLog()})
	defer r2.Close()
	h.mu.Lock()
	writers := map[int32]WriterID{0: h.writers["t/0"]}
	h.mu.Unlock()
	r2.Set([]Spec{{Topic: "t", SourceTopic: "t", Partitions: 1, Copying: true, Writers: writers}})
	// The outage lasts at least three descriptions and two seconds,
	// longer than the client's retries.
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = outage.Wait(wctx, 3)
	wcancel()
	time.Sleep(2 * time.Second)
	outage.Remove()
	waitCopied(t, h, srcCl, dstCl, "t", 30*time.Second)
	sameCopy(t, src, dst, srcCl, dstCl, "t")
}

// TestStalledPartitionIsReported: a partition the destination refuses to
// take records for is reported stalled after the stall timeout, with the
// reason, and recovered once it copies again.
func TestStalledPartitionIsReported(t *testing.T) {
	src, dst, srcCl, dstCl := clusterPair(t, "t", 2)
	p := testutil.Client(t, src.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for part := int32(0); part < 2; part++ {
		if err := p.ProduceSync(context.Background(), &kgo.Record{Topic: "t", Partition: part, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	refuse := dst.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Partitions: []int32{1}, Err: kerr.OutOfOrderSequenceNumber, Count: -1})
	h := &stallHooks{hooks: newHooks()}
	r := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: h, StallTimeout: 2 * time.Second})
	defer r.Close()
	r.Set([]Spec{{Topic: "t", SourceTopic: "t", Partitions: 2, Copying: true, Fresh: true}})
	testutil.WaitFor(t, 20*time.Second, "partition 1 reported stalled", func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.stalled[1] == "" {
			return fmt.Errorf("stalls: %v", h.stalled)
		}
		return nil
	})
	h.mu.Lock()
	reason, other := h.stalled[1], h.stalled[0]
	h.mu.Unlock()
	t.Logf("reason: %s", reason)
	if other != "" {
		t.Fatalf("partition 0 copies and was reported stalled: %s", other)
	}
	if !contains(reason, "OUT_OF_ORDER_SEQUENCE_NUMBER") || !contains(reason, "1 offsets to copy") {
		t.Fatalf("reason %q does not say why", reason)
	}
	refuse.Remove()
	testutil.WaitFor(t, 20*time.Second, "partition 1 recovered", func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.stalled[1] != "" {
			return fmt.Errorf("still stalled")
		}
		return nil
	})
}

// stallHooks records Stalled and Recovered.
type stallHooks struct {
	*hooks
	stalled map[int32]string
}

func (h *stallHooks) Stalled(_ string, p int32, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stalled == nil {
		h.stalled = map[int32]string{}
	}
	h.stalled[p] = reason
}

func (h *stallHooks) Recovered(_ string, p int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.stalled, p)
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

package mirror

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestLateBatchOfDeadWriterDoesNotLand holds one produce request of a
// first runner at the destination (it is read and never answered, as a
// broker holds the queued requests of a process that was killed), stops
// that runner, lets a second runner copy the whole partition, and then
// hands the held request to the broker. With the partition's writer shared
// through the state (the fence), the broker refuses the late batch or
// answers it as a duplicate: nothing lands twice. With a writer of its own
// per runner (the design before the fence), the same late batch lands
// after the copy: the case shows the hazard is real on kfake.
func TestLateBatchOfDeadWriterDoesNotLand(t *testing.T) {
	cases := []struct {
		name         string
		hold         int  // which produce request of the first runner is held, from 1
		sharedWriter bool // the second runner writes as the first one's writer
		wantLands    bool
	}{
		{"first batch held, shared writer", 1, true, false},
		{"third batch held, shared writer", 3, true, false},
		{"first batch held, a writer per runner", 1, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, dst, srcCl, dstCl := clusterPair(t, "fence", 1)
			p := testutil.Client(t, src.ListenAddrs(), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
			for i := 0; i < 6; i++ {
				// Batches over mergeBelow: copied one request each.
				var rs []*kgo.Record
				for j := 0; j < 20; j++ {
					rs = append(rs, &kgo.Record{Topic: "fence", Value: bytes.Repeat([]byte{byte(i)}, 1024)})
				}
				if err := p.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}

			var mu sync.Mutex
			var held *kmsg.ProduceRequest
			seen := 0
			heldC := make(chan struct{})
			dst.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				req := kreq.(*kmsg.ProduceRequest)
				mu.Lock()
				defer mu.Unlock()
				if held != nil || req.TransactionID != nil {
					return nil, nil, false
				}
				dst.KeepControl()
				if seen++; seen < tc.hold {
					return nil, nil, false
				}
				held = cloneProduce(req)
				close(heldC)
				dst.DropControl()
				return nil, nil, true // read, never answered
			})

			h1 := newHooks()
			r1 := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: h1, ProduceTimeout: 2 * time.Second})
			r1.Set([]Spec{{Topic: "fence", SourceTopic: "fence", Partitions: 1, Copying: true, Fresh: true}})
			select {
			case <-heldC:
			case <-time.After(30 * time.Second):
				t.Fatal("no produce request was held")
			}
			r1.Close() // the first writer is gone; its held request is not

			h2 := newHooks()
			var writers map[int32]WriterID
			if tc.sharedWriter {
				h1.mu.Lock()
				h2.writers = h1.writers
				writers = map[int32]WriterID{0: h1.writers["fence/0"]}
				h1.mu.Unlock()
			}
			r2 := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: h2})
			defer r2.Close()
			r2.Set([]Spec{{Topic: "fence", SourceTopic: "fence", Partitions: 1, Copying: true, Fresh: true, Writers: writers}})
			_, srcEnds := testutil.Offsets(t, srcCl, "fence")
			testutil.WaitFor(t, 30*time.Second, "second runner caught up", func() error {
				_, ends := testutil.Offsets(t, dstCl, "fence")
				if ends[0] != srcEnds[0] {
					return fmt.Errorf("mirror at %d of %d", ends[0], srcEnds[0])
				}
				return nil
			})
			r2.Close()

			// The held request reaches the broker now.
			resp, err := held.RequestWith(context.Background(), dstCl)
			if err != nil {
				t.Fatal(err)
			}
			rp := resp.Topics[0].Partitions[0]
			_, ends := testutil.Offsets(t, dstCl, "fence")
			landed := ends[0] != srcEnds[0]
			t.Logf("late batch answered %v at offset %d; mirror ends at %d, source at %d", kerr.ErrorForCode(rp.ErrorCode), rp.BaseOffset, ends[0], srcEnds[0])
			if landed != tc.wantLands {
				t.Fatalf("late batch landed: %v, want %v", landed, tc.wantLands)
			}
			if !tc.wantLands {
				if diff := testutil.DiffRecords(testutil.ReadAll(t, src.ListenAddrs(), "fence"), testutil.ReadAll(t, dst.ListenAddrs(), "fence")); diff != "" {
					t.Fatal(diff)
				}
			}
		})
	}
}

// cloneProduce copies a produce request with its record bytes: kfake's
// request buffers are not ours to keep.
func cloneProduce(req *kmsg.ProduceRequest) *kmsg.ProduceRequest {
	c := *req
	c.Topics = nil
	for _, rt := range req.Topics {
		ct := rt
		ct.Partitions = nil
		for _, rp := range rt.Partitions {
			cp := rp
			cp.Records = bytes.Clone(rp.Records)
			ct.Partitions = append(ct.Partitions, cp)
		}
		c.Topics = append(c.Topics, ct)
	}
	return &c
}

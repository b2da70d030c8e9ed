package mirror

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/batch"
	"github.com/strait-dev/strait/internal/testutil"
)

type hooks struct {
	mu      sync.Mutex
	started map[string]bool
	failed  map[string]string
	align   map[string]int64
	writers map[string]WriterID
}

func newHooks() *hooks {
	return &hooks{started: map[string]bool{}, failed: map[string]string{}, align: map[string]int64{}, writers: map[string]WriterID{}}
}

// SaveWriters keeps the first identity saved for a partition, as the
// state topic does.
func (h *hooks) SaveWriters(_ context.Context, topic string, ids map[int32]WriterID) (map[int32]WriterID, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[int32]WriterID{}
	for p, id := range ids {
		k := fmt.Sprintf("%s/%d", topic, p)
		if cur, ok := h.writers[k]; ok && (cur.ID != id.ID || cur.Epoch >= id.Epoch) {
			id = cur
		}
		h.writers[k] = id
		out[p] = id
	}
	return out, nil
}

func (h *hooks) Started(topic string, _ []int32) {
	h.mu.Lock()
	h.started[topic] = true
	h.mu.Unlock()
}
func (h *hooks) Failed(topic, code, msg string) {
	h.mu.Lock()
	h.failed[topic] = code + ": " + msg
	h.mu.Unlock()
}
func (h *hooks) SaveAlign(_ context.Context, topic string, p int32, target int64) error {
	h.mu.Lock()
	h.align[fmt.Sprintf("%s/%d", topic, p)] = target
	h.mu.Unlock()
	return nil
}
func (h *hooks) SourceReachable(error)               {}
func (h *hooks) Stalled(string, int32, string)       {}
func (h *hooks) Recovered(string, int32)             {}
func (h *hooks) PartitionsGrew(string, int32)        {}
func (h *hooks) Skipped(string, int32, int64, int64) {}

// clusterPair starts a source and a destination cluster, each with topic
// of the given partitions, and clients for them.
func clusterPair(t *testing.T, topic string, partitions int32) (src, dst *kfake.Cluster, srcCl, dstCl *kgo.Client) {
	t.Helper()
	src = testutil.NewCluster(t)
	dst = testutil.NewCluster(t)
	srcCl = testutil.Client(t, src.ListenAddrs())
	dstCl = testutil.Client(t, dst.ListenAddrs())
	testutil.CreateTopic(t, srcCl, topic, partitions, nil)
	testutil.CreateTopic(t, dstCl, topic, partitions, nil)
	return src, dst, srcCl, dstCl
}

func produce(t *testing.T, cl *kgo.Client, topic string, n int, codec kgo.CompressionCodec) {
	t.Helper()
	ctx := context.Background()
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{
			Topic:     topic,
			Key:       []byte(fmt.Sprintf("k%d", i)),
			Value:     []byte(fmt.Sprintf("value-%d-%v", i, codec)),
			Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}},
			Timestamp: time.UnixMilli(1_600_000_000_000 + int64(i)),
		})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// copyTopic starts a runner copying topic, with partitions, from the
// source to the destination (both created by the test), and waits until
// the mirror ends where the source does. The runner closes with the test.
func copyTopic(t *testing.T, srcCl, dstCl *kgo.Client, topic string, partitions int32) (*Runner, *hooks) {
	t.Helper()
	h := newHooks()
	r := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: h})
	t.Cleanup(r.Close)
	r.Set([]Spec{{Topic: topic, SourceTopic: topic, Partitions: partitions, Copying: true, Fresh: true}})
	_, srcEnds := testutil.Offsets(t, srcCl, topic)
	testutil.WaitFor(t, 60*time.Second, "mirror caught up", func() error {
		_, ends := testutil.Offsets(t, dstCl, topic)
		for p, e := range srcEnds {
			if ends[p] != e {
				h.mu.Lock()
				defer h.mu.Unlock()
				return fmt.Errorf("partition %d at %d of %d (failed: %v)", p, ends[p], e, h.failed)
			}
		}
		return nil
	})
	return r, h
}

func TestRunnerCopiesWithIdenticalOffsets(t *testing.T) {
	src, dst, srcCl, dstCl := clusterPair(t, "orders", 3)
	for _, c := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		p := testutil.Client(t, src.ListenAddrs(), kgo.ProducerBatchCompression(c))
		produce(t, p, "orders", 500, c)
	}
	_, h := copyTopic(t, srcCl, dstCl, "orders", 3)
	if diff := testutil.DiffRecords(testutil.ReadAll(t, src.ListenAddrs(), "orders"), testutil.ReadAll(t, dst.ListenAddrs(), "orders")); diff != "" {
		t.Fatal(diff)
	}
	if !h.started["orders"] {
		t.Fatal("Started not called")
	}
}

func TestRunnerAlignsToSourceLogStart(t *testing.T) {
	src, dst, srcCl, dstCl := clusterPair(t, "t", 1)
	p := testutil.Client(t, src.ListenAddrs(), kgo.ProducerLinger(0))
	for i := 0; i < 10; i++ {
		produce(t, p, "t", 100, kgo.NoCompression())
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "t", Partition: 0, At: 550})
	if _, err := kadm.NewClient(srcCl).DeleteRecords(context.Background(), offs); err != nil {
		t.Fatal(err)
	}
	h := newHooks()
	r := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: h})
	defer r.Close()
	r.Set([]Spec{{Topic: "t", SourceTopic: "t", Partitions: 1, Copying: true, Fresh: true}})
	testutil.WaitFor(t, 30*time.Second, "aligned", func() error {
		s, e := testutil.Offsets(t, dstCl, "t")
		if s[0] != 550 || e[0] != 1000 {
			return fmt.Errorf("mirror start %d end %d (failed: %v)", s[0], e[0], h.failed)
		}
		return nil
	})
	if diff := testutil.DiffRecords(testutil.ReadAll(t, src.ListenAddrs(), "t"), testutil.ReadAll(t, dst.ListenAddrs(), "t")); diff != "" {
		t.Fatal(diff)
	}
}

// TestRunnerBufferAccounting copies a topic with a small link buffer and
// checks the buffer total goes back to zero: every fetched byte queued is
// accounted for once it is copied or dropped.
func TestRunnerBufferAccounting(t *testing.T) {
	src, _, srcCl, dstCl := clusterPair(t, "b", 4)
	p := testutil.Client(t, src.ListenAddrs(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produce(t, p, "b", 20000, kgo.NoCompression())
	r := NewRunner(Config{Source: srcCl, Dest: dstCl, Hooks: newHooks(), BufferBytes: 256 << 10, PartitionBufferBytes: 64 << 10})
	defer r.Close()
	r.Set([]Spec{{Topic: "b", SourceTopic: "b", Partitions: 4, Copying: true, Fresh: true}})
	_, srcEnds := testutil.Offsets(t, srcCl, "b")
	peak := int64(0)
	testutil.WaitFor(t, 60*time.Second, "caught up", func() error {
		peak = max(peak, r.buffered.Load())
		_, ends := testutil.Offsets(t, dstCl, "b")
		for p, e := range srcEnds {
			if ends[p] != e {
				return fmt.Errorf("partition %d at %d of %d", p, ends[p], e)
			}
		}
		return nil
	})
	testutil.WaitFor(t, 5*time.Second, "buffer drained", func() error {
		if n := r.buffered.Load(); n != 0 {
			return fmt.Errorf("%d bytes still accounted", n)
		}
		return nil
	})
	// One fetch response may overshoot the cap by up to its own size.
	if peak > 256<<10+1<<20 {
		t.Fatalf("buffer peaked at %d bytes", peak)
	}
	r.Set(nil)
	if n := r.buffered.Load(); n != 0 {
		t.Fatalf("%d bytes accounted after the topic stopped", n)
	}
}

// TestRunnerCopiesBombsAsTheyAre: small batches are merged (see
// batch.Merge), which means decompressing them. Batches a few hundred
// bytes on the wire that decompress to more than batch.MaxDecompressedBatch
// together must not be inflated into one giant batch: the runner copies
// them as they are, and the copy is still exact.
func TestRunnerCopiesBombsAsTheyAre(t *testing.T) {
	src, _, srcCl, dstCl := clusterPair(t, "bombs", 1)
	p := testutil.Client(t, src.ListenAddrs(), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.ProducerBatchMaxBytes(16<<20), kgo.MaxBufferedBytes(64<<20))
	const each = 4 << 20
	n := batch.MaxDecompressedBatch/each + 4
	for i := 0; i < n; i++ {
		// One ProduceSync per record: one batch each.
		r := &kgo.Record{Topic: "bombs", Key: []byte(fmt.Sprint(i)), Value: make([]byte, each)}
		if err := p.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	srcBatches := rawBatches(t, srcCl, "bombs")
	if len(srcBatches) != n {
		t.Fatalf("source has %d batches, want %d", len(srcBatches), n)
	}
	for _, b := range srcBatches {
		if !batch.Mergeable(&b) || len(b.Raw) >= mergeBelow {
			t.Fatalf("source batch at %d (%d bytes) would not be merged; the test needs small batches", b.BaseOffset, len(b.Raw))
		}
	}
	copyTopic(t, srcCl, dstCl, "bombs", 1)
	dstBatches := rawBatches(t, dstCl, "bombs")
	if len(dstBatches) != n {
		t.Fatalf("destination has %d batches, want the source's %d", len(dstBatches), n)
	}
	for i, b := range dstBatches {
		s := srcBatches[i]
		if b.BaseOffset != s.BaseOffset || !bytes.Equal(b.Raw[batch.HeaderSize:], s.Raw[batch.HeaderSize:]) {
			t.Fatalf("destination batch %d (offset %d) differs from the source's (offset %d)", i, b.BaseOffset, s.BaseOffset)
		}
	}
}

// rawBatches fetches every batch of partition 0 of topic as the broker
// stores it.
func rawBatches(t *testing.T, cl *kgo.Client, topic string) []batch.Batch {
	t.Helper()
	var out []batch.Batch
	for _, rb := range testutil.RawBatches(t, cl, topic, 0) {
		h, err := batch.ParseHeader(rb.Raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, batch.Batch{Header: h, Raw: rb.Raw})
	}
	return out
}

// TestRunnerPipelinesProduces: batches of many partitions share produce
// requests, several requests are out per broker and several batches per
// partition, and still every partition's batches reach the broker in
// sequence order and the copy is exact.
func TestRunnerPipelinesProduces(t *testing.T) {
	const partitions, batches = 8, 40
	src := testutil.NewCluster(t)
	var mu sync.Mutex
	nextSeq := map[int32]int32{} // partition -> sequence the next batch must have
	var disorder []string
	dst := testutil.NewCluster(t)
	dst.ControlKey(0, func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		dst.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		if req.TransactionID != nil {
			return nil, nil, false
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rt := range req.Topics {
			if rt.Topic != "wide" && rt.TopicID == [16]byte{} {
				continue
			}
			for _, rp := range rt.Partitions {
				bs, err := batch.Split(rp.Records)
				if err != nil || len(bs) != 1 {
					disorder = append(disorder, fmt.Sprintf("partition %d: %d batches, %v", rp.Partition, len(bs), err))
					continue
				}
				b := bs[0]
				if want, ok := nextSeq[rp.Partition]; ok && b.BaseSequence != want && b.BaseSequence != 0 {
					disorder = append(disorder, fmt.Sprintf("partition %d: sequence %d arrived, %d expected", rp.Partition, b.BaseSequence, want))
				}
				nextSeq[rp.Partition] = b.BaseSequence + b.RecordCount
			}
		}
		// A slow broker: requests queue up behind this one.
		time.Sleep(2 * time.Millisecond)
		return nil, nil, false
	})
	srcCl := testutil.Client(t, src.ListenAddrs())
	dstCl := testutil.Client(t, dst.ListenAddrs())
	testutil.CreateTopic(t, srcCl, "wide", partitions, nil)
	testutil.CreateTopic(t, dstCl, "wide", partitions, nil)
	// Batches over mergeBelow, so that each is copied as it is.
	p := testutil.Client(t, src.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	for i := 0; i < batches; i++ {
		var rs []*kgo.Record
		for part := int32(0); part < partitions; part++ {
			rs = append(rs, &kgo.Record{Topic: "wide", Partition: part, Key: []byte(fmt.Sprint(i)), Value: bytes.Repeat([]byte{byte(i)}, mergeBelow)})
		}
		if err := p.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	r, _ := copyTopic(t, srcCl, dstCl, "wide", partitions)
	if diff := testutil.DiffRecords(testutil.ReadAll(t, src.ListenAddrs(), "wide"), testutil.ReadAll(t, dst.ListenAddrs(), "wide")); diff != "" {
		t.Fatal(diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(disorder) > 0 {
		t.Fatalf("batches reached the broker out of sequence order: %v", disorder)
	}
	for name, got := range map[string]int32{
		"produce requests out at once": r.sink.peakOut.Load(),
		"partitions in one request":    r.sink.peakPartitions.Load(),
		"batches of a partition out":   r.sink.peakPipe.Load(),
	} {
		if got < 2 {
			t.Errorf("at most %d %s, want several", got, name)
		}
	}
	t.Logf("peaks: %d requests out, %d partitions per request, %d batches per partition", r.sink.peakOut.Load(), r.sink.peakPartitions.Load(), r.sink.peakPipe.Load())
}

// TestSinkCountsOnlySuccessfulWrites: kgo reports a failed write to the
// hook and then writes the request again on a new connection. Only the
// successful write may release the next request; a signal for the failed
// one would let every later request go one ahead of the one before it.
func TestSinkCountsOnlySuccessfulWrites(t *testing.T) {
	s := &sink{brokers: map[int32]*brokerSink{}}
	b := &brokerSink{s: s, node: 1, written: make(chan struct{}, 2*sinkInflight)}
	s.brokers[1] = b
	h := writeHook{s}
	meta := kgo.BrokerMetadata{NodeID: 1}
	h.OnBrokerWrite(meta, 0, 0, 0, 0, fmt.Errorf("broken pipe"))
	if n := len(b.written); n != 0 {
		t.Fatalf("a failed write signalled %d times", n)
	}
	h.OnBrokerWrite(meta, 1, 100, 0, 0, nil) // a fetch: not ours
	h.OnBrokerWrite(meta, 0, 100, 0, 0, nil)
	if n := len(b.written); n != 1 {
		t.Fatalf("one written produce request signalled %d times", n)
	}
}

package verify

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/batch"
	"github.com/strait-dev/strait/internal/testutil"
)

// Against in-process clusters: a source written with plain batches of
// every codec and a transaction, and a destination written by a raw
// copier of this test, which can change what it copies.

type clusters struct {
	src, dst *kgo.Client
	srcAddrs []string
}

func newClusters(t *testing.T) clusters {
	t.Helper()
	s, d := testutil.NewCluster(t), testutil.NewCluster(t)
	return clusters{src: testutil.Client(t, s.ListenAddrs()), dst: testutil.Client(t, d.ListenAddrs()), srcAddrs: s.ListenAddrs()}
}

// writeSource writes rounds to partition 0 of topic: five batches of 20
// records, one per codec, then a committed transaction of one record. A
// round takes 102 offsets.
func writeSource(t *testing.T, c clusters, topic string, rounds int, tag string) {
	t.Helper()
	ctx := context.Background()
	codecs := []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}
	for r := 0; r < rounds; r++ {
		for i, codec := range codecs {
			b := build(t, spec{n: 20, codec: codec, ts: time.Now().UnixMilli(), tag: fmt.Sprintf("%s%d.%d", tag, r, i)})
			produceRaw(t, c.src, topic, b.Raw, nil)
		}
		tx, err := kgo.NewClient(kgo.SeedBrokers(c.srcAddrs...), kgo.TransactionalID("tx-"+tag), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte("in a transaction " + tag)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		tx.Close()
	}
}

func produceRaw(t testing.TB, cl *kgo.Client, topic string, raw []byte, txnID *string) {
	t.Helper()
	produceRawTo(t, cl, topic, 0, raw, txnID)
}

func produceRawTo(t testing.TB, cl *kgo.Client, topic string, p int32, raw []byte, txnID *string) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	req.TransactionID = txnID
	rt := kmsg.NewProduceRequestTopic()
	td, err := kadm.NewClient(cl).ListTopics(context.Background(), topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, td[topic].Err)
	}
	rt.Topic, rt.TopicID = topic, td[topic].ID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// copier copies raw batches of partition 0 from the source to the
// destination as Strait's copy does: plain batches under a producer of
// its own, transactions replayed as destination transactions. change, if
// set, may alter a batch's bytes (returning nil skips it) and a marker's
// kind.
type copier struct {
	t      *testing.T
	c      clusters
	topic  string
	next   int64
	txns   map[int64]*destTxn
	change func(b *batch.Batch, raw []byte) []byte
	commit func(b *batch.Batch, commit bool) bool
}

type destTxn struct {
	id    string
	pid   int64
	epoch int16
	seq   int32
	open  bool
}

func newCopier(t *testing.T, c clusters, topic string) *copier {
	testutil.CreateTopic(t, c.dst, topic, 1, nil)
	return &copier{t: t, c: c, topic: topic, txns: map[int64]*destTxn{}}
}

// run copies everything the source has past what was copied before.
func (cp *copier) run() {
	t := cp.t
	t.Helper()
	for _, rb := range testutil.RawBatches(t, cp.c.src, cp.topic, 0) {
		b := parse(t, rb.Raw)
		if b.NextOffset() <= cp.next {
			continue
		}
		if b.Control() {
			commit, err := markerCommits(&b)
			if err != nil {
				t.Fatal(err)
			}
			if cp.commit != nil {
				commit = cp.commit(&b, commit)
			}
			cp.endTxn(b.ProducerID, commit)
			cp.next = b.NextOffset()
			continue
		}
		raw := append([]byte(nil), b.Raw...)
		if cp.change != nil {
			if raw = cp.change(&b, raw); raw == nil {
				cp.next = b.NextOffset()
				continue
			}
		}
		if b.Transactional() {
			tx := cp.txn(b.ProducerID)
			batch.Rewrite(raw, batch.Producer{ID: tx.pid, Epoch: tx.epoch, Sequence: tx.seq}, true)
			tx.seq += b.RecordCount
			cp.produce(raw, &tx.id)
		} else {
			batch.Rewrite(raw, batch.Producer{ID: -1, Epoch: -1, Sequence: -1}, false)
			cp.produce(raw, nil)
		}
		cp.next = b.NextOffset()
	}
}

func (cp *copier) produce(raw []byte, txnID *string) {
	cp.t.Helper()
	produceRaw(cp.t, cp.c.dst, cp.topic, raw, txnID)
}

func (cp *copier) txn(srcPID int64) *destTxn {
	t := cp.t
	t.Helper()
	tx, ok := cp.txns[srcPID]
	if !ok {
		tx = &destTxn{id: fmt.Sprintf("copy-%d", srcPID)}
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = &tx.id
		req.TransactionTimeoutMillis = 60000
		resp, err := req.RequestWith(context.Background(), cp.c.dst)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			t.Fatalf("init producer: %v", err)
		}
		tx.pid, tx.epoch = resp.ProducerID, resp.ProducerEpoch
		cp.txns[srcPID] = tx
	}
	if !tx.open {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = tx.id, tx.pid, tx.epoch
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = cp.topic, []int32{0}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), cp.c.dst)
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		}
		if err != nil {
			t.Fatalf("add partition to transaction: %v", err)
		}
		tx.open = true
	}
	return tx
}

func (cp *copier) endTxn(srcPID int64, commit bool) {
	t := cp.t
	t.Helper()
	tx := cp.txn(srcPID)
	_, before := testutil.Offsets(t, cp.c.dst, cp.topic)
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = tx.id, tx.pid, tx.epoch, commit
	resp, err := req.RequestWith(context.Background(), cp.c.dst)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		t.Fatalf("end transaction: %v", err)
	}
	if resp.GetVersion() >= 5 && resp.ProducerID >= 0 {
		tx.pid, tx.epoch = resp.ProducerID, resp.ProducerEpoch
	}
	tx.open, tx.seq = false, 0
	// The marker lands after EndTxn answers: wait for it.
	want := before[0] + 1
	testutil.WaitFor(t, 10*time.Second, "marker", func() error {
		_, ends := testutil.Offsets(t, cp.c.dst, cp.topic)
		if ends[0] < want {
			return fmt.Errorf("destination ends at %d", ends[0])
		}
		return nil
	})
}

func (c clusters) verify(t *testing.T, topic string, from int64) PartitionResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := Run(ctx, Target{Source: c.src, Mirror: c.dst, SourceTopic: topic, MirrorTopic: topic, Partitions: []int32{0}, From: map[int32]int64{0: from}}, Options{FetchBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return rep.Partitions[0]
}

// TestRunFindsInjectedDivergences copies a source with a raw copier that
// changes one thing on purpose, and checks that Run names it.
func TestRunFindsInjectedDivergences(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(cp *copier)
		code   Code
		offset func(src []testutil.RawBatch) int64
	}{
		{"identical", func(*copier) {}, "", nil},
		{"a changed byte in a record", func(cp *copier) {
			cp.change = func(b *batch.Batch, raw []byte) []byte {
				if b.BaseOffset == 20 { // the second batch, gzip: a value changed, compressed again
					recs, _ := b.Records()
					recs[4].Value = append([]byte("X"), recs[4].Value[1:]...)
					var plain []byte
					for _, r := range recs {
						plain = batch.AppendRecord(plain, r)
					}
					return reassemble(raw, plain)
				}
				return raw
			}
		}, CodeRecords, func([]testutil.RawBatch) int64 { return 24 }},
		{"a missing batch", func(cp *copier) {
			cp.change = func(b *batch.Batch, raw []byte) []byte {
				if b.BaseOffset == 40 {
					return nil
				}
				return raw
			}
		}, CodeRecords, func([]testutil.RawBatch) int64 { return 40 }},
		{"a marker of the wrong type", func(cp *copier) {
			cp.commit = func(_ *batch.Batch, commit bool) bool { return !commit }
		}, CodeMarker, func(src []testutil.RawBatch) int64 {
			for _, b := range src {
				if b.Control() {
					return b.FirstOffset
				}
			}
			return -1
		}},
		{"an extra record", func(cp *copier) {
			cp.change = func(b *batch.Batch, raw []byte) []byte {
				if b.BaseOffset == 60 {
					extra := build(cp.t, spec{base: 0, n: 1, ts: 1000, tag: "extra"})
					cp.produce(append([]byte(nil), extra.Raw...), nil)
				}
				return raw
			}
		}, CodeRecords, func([]testutil.RawBatch) int64 { return 60 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClusters(t)
			testutil.CreateTopic(t, c.src, "t", 1, nil)
			writeSource(t, c, "t", 2, "a")
			cp := newCopier(t, c, "t")
			tc.setup(cp)
			cp.run()
			res := c.verify(t, "t", 0)
			if tc.code == "" {
				if res.Divergence != nil || res.Error != "" || res.Verified != res.SourceEnd {
					t.Fatalf("identical copy: %+v", res)
				}
				if res.Decompressed != 0 {
					t.Fatalf("identical copy decompressed %d batches", res.Decompressed)
				}
				return
			}
			if res.Divergence == nil {
				t.Fatalf("no difference found: %+v", res)
			}
			want := tc.offset(testutil.RawBatches(t, c.src, "t", 0))
			if res.Divergence.Code != tc.code || res.Divergence.Offset != want || res.Verified > want {
				t.Fatalf("found %+v (verified to %d), want %s at %d", res.Divergence, res.Verified, tc.code, want)
			}
			t.Logf("%s", res.Divergence.Message)
		})
	}
}

// reassemble puts plain records into raw's header, compressed with raw's
// codec, with a valid CRC.
func reassemble(raw, plain []byte) []byte {
	bs, _ := batch.Split(raw)
	body := plain
	if codec := bs[0].Codec(); codec != batch.CodecNone {
		c, _ := kgo.DefaultCompressor(codecOpt(codec))
		var buf bytes.Buffer
		out, _ := c.Compress(&buf, plain)
		body = append([]byte(nil), out...)
	}
	out := append(append([]byte(nil), raw[:batch.HeaderSize]...), body...)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	sealCRC(out)
	return out
}

// TestRunIsIncremental: a second run from the first one's verified offset
// reads only the batches written since.
func TestRunIsIncremental(t *testing.T) {
	c := newClusters(t)
	testutil.CreateTopic(t, c.src, "t", 1, nil)
	writeSource(t, c, "t", 2, "a")
	cp := newCopier(t, c, "t")
	cp.run()
	first := c.verify(t, "t", 0)
	if first.Divergence != nil || first.Verified != first.SourceEnd {
		t.Fatalf("first run: %+v", first)
	}
	before := len(testutil.RawBatches(t, c.src, "t", 0))
	writeSource(t, c, "t", 1, "b")
	cp.run()
	added := len(testutil.RawBatches(t, c.src, "t", 0)) - before
	second := c.verify(t, "t", first.Verified)
	if second.Divergence != nil || second.Verified != second.SourceEnd || second.From != first.Verified {
		t.Fatalf("second run: %+v", second)
	}
	if second.SourceBatches != int64(added) || second.MirrorBatches != int64(added) {
		t.Fatalf("second run read %d source and %d mirror batches, %d were added", second.SourceBatches, second.MirrorBatches, added)
	}
	if again := c.verify(t, "t", second.Verified); again.SourceBatches != 0 || again.Verified != second.Verified {
		t.Fatalf("a run with nothing new: %+v", again)
	}
}

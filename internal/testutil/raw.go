package testutil

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RawBatch is one record batch as a broker stores it.
type RawBatch struct {
	kmsg.RecordBatch
	// Raw is the whole batch, header included.
	Raw []byte
}

// Control reports a control batch (a transaction marker).
func (b *RawBatch) Control() bool { return b.Attributes&0x20 != 0 }

// splitBatches splits fetched record bytes into v2 batches.
func splitBatches(data []byte) ([]RawBatch, error) {
	var out []RawBatch
	for len(data) >= 12 {
		n := 12 + int(int32(uint32(data[8])<<24|uint32(data[9])<<16|uint32(data[10])<<8|uint32(data[11])))
		if n < 61 || n > len(data) {
			break // a partial batch at the end of a fetch
		}
		var b RawBatch
		if err := b.ReadFrom(data[:n]); err != nil {
			return nil, err
		}
		b.Raw = append([]byte(nil), data[:n]...)
		out = append(out, b)
		data = data[n:]
	}
	return out, nil
}

// RawBatches fetches every batch of a partition as its leader stores it,
// control batches included.
func RawBatches(t testing.TB, cl *kgo.Client, topic string, partition int32) []RawBatch {
	t.Helper()
	return RawBatchesFrom(t, cl, topic, partition, 0)
}

// RawBatchesFrom is RawBatches from offset from: the batch that holds it
// and every one after.
func RawBatchesFrom(t testing.TB, cl *kgo.Client, topic string, partition int32, from int64) []RawBatch {
	t.Helper()
	locate := func() ([16]byte, int32) {
		for {
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(context.Background(), cl)
			if err != nil || len(resp.Topics) != 1 {
				t.Fatalf("metadata of %s: %v", topic, err)
			}
			for _, p := range resp.Topics[0].Partitions {
				if p.Partition == partition && p.Leader >= 0 {
					return resp.Topics[0].TopicID, p.Leader
				}
			}
			time.Sleep(100 * time.Millisecond) // polling for a leader
		}
	}
	id, leader := locate()
	var out []RawBatch
	for off := from; ; {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MaxBytes, req.ReplicaID, req.SessionEpoch = 0, 64<<20, -1, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, off, 64<<20
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), cl.Broker(int(leader)))
		if err != nil {
			t.Fatalf("fetch %s[%d]: %v", topic, partition, err)
		}
		part := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
			if errors.Is(err, kerr.NotLeaderForPartition) {
				time.Sleep(100 * time.Millisecond) // the leader moved
				id, leader = locate()
				continue
			}
			t.Fatalf("fetch %s[%d]: %v", topic, partition, err)
		}
		bs, err := splitBatches(part.RecordBatches)
		if err != nil {
			t.Fatalf("split %s[%d]: %v", topic, partition, err)
		}
		if len(bs) == 0 {
			return out
		}
		out = append(out, bs...)
		last := bs[len(bs)-1]
		off = last.FirstOffset + int64(last.LastOffsetDelta) + 1
	}
}

// Markers returns the transaction markers of a partition: offset, and
// whether the marker commits.
func Markers(t testing.TB, cl *kgo.Client, topic string, partition int32) map[int64]bool {
	t.Helper()
	out := map[int64]bool{}
	for _, b := range RawBatches(t, cl, topic, partition) {
		if !b.Control() {
			continue
		}
		// Control batches are never compressed: one record, whose key
		// is the marker's version and type.
		var r kmsg.Record
		if err := r.ReadFrom(b.Records); err != nil || len(r.Key) < 4 {
			t.Fatalf("%s[%d]: unreadable control batch at %d: %v", topic, partition, b.FirstOffset, err)
		}
		out[b.FirstOffset] = r.Key[3] == 1
	}
	return out
}

// DiffMarkers describes the first difference between the markers of two
// partitions, "" when they are the same.
func DiffMarkers(src, dst map[int64]bool) string {
	if len(src) != len(dst) {
		return fmt.Sprintf("%d transaction markers at the source, %d on the mirror", len(src), len(dst))
	}
	for o, c := range src {
		if dc, ok := dst[o]; !ok || dc != c {
			return fmt.Sprintf("the source has a marker (commit %v) at %d, the mirror not the same", c, o)
		}
	}
	return ""
}

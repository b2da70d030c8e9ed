package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/batch"
)

// fetchBatchAt fetches the first complete batch at or around offset o of a
// partition, ok false when there is none.
func fetchBatchAt(ctx context.Context, cl *kgo.Client, meta *metaCache, topic string, partition int32, o int64) (batch.Batch, bool, error) {
	leader, id, err := meta.leader(ctx, topic, partition, false)
	if err != nil {
		return batch.Batch{}, false, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, o, 1<<20
	rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		return batch.Batch{}, false, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition != partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				if isLeaderErr(err) {
					meta.leader(ctx, topic, partition, true) //nolint:errcheck // refresh only
				}
				return batch.Batch{}, false, err
			}
			bs, err := batch.Split(p.RecordBatches)
			if err != nil || len(bs) == 0 {
				return batch.Batch{}, false, err
			}
			return bs[0], true, nil
		}
	}
	return batch.Batch{}, false, errors.New("fetch response without the partition")
}

// verifyTail checks, when a worker starts on a mirror that already has
// data, that the mirror's last batch holds the same records as the source
// batch at the same offsets. The mirror's end is the copy cursor, so a
// record appended by someone else while no worker was running would
// otherwise shift the copy silently.
func (w *worker) verifyTail(ctx context.Context, start, end int64) error {
	if end <= start || w.align >= 0 {
		return nil // empty, or the tail is alignment filler
	}
	d, ok, err := fetchBatchAt(ctx, w.r.cfg.Dest, &w.r.destMeta, w.t.spec.Topic, w.p.id, end-1)
	if err != nil || !ok {
		return err
	}
	s, ok, err := fetchBatchAt(ctx, w.r.cfg.Source, &w.r.srcMeta, w.t.spec.SourceTopic, w.p.id, end-1)
	if errors.Is(err, kerr.OffsetOutOfRange) || (err == nil && !ok) {
		return nil // the source no longer has (or not yet) those offsets
	}
	if err != nil {
		return err
	}
	// Batch boundaries may differ (small batches are merged): compare the
	// last record itself.
	sr, serr := recordAt(&s, end-1)
	if serr != nil {
		return nil // compacted away at the source since: nothing to compare
	}
	dr, derr := recordAt(&d, end-1)
	if derr != nil || !sameRecord(dr, sr) {
		return fatal(ErrIllegalState, "partition %d: the mirror's last record (offset %d) is not the source's; something other than Strait wrote to the mirror topic", w.p.id, end-1)
	}
	return nil
}

// absRecord is a record with its absolute offset and timestamp.
type absRecord struct {
	offset, ts int64
	r          batch.Record
	// control marks a transaction marker: the destination writes its own,
	// so only its place and kind can be compared.
	control bool
}

// recordAt finds the record at offset o in b.
func recordAt(b *batch.Batch, o int64) (absRecord, error) {
	if b.Control() {
		return absRecord{offset: o, control: true}, nil
	}
	recs, err := b.Records()
	if err != nil {
		return absRecord{}, err
	}
	for _, r := range recs {
		if b.BaseOffset+int64(r.OffsetDelta) == o {
			ts := b.BaseTimestamp + r.TimestampDelta
			if b.LogAppendTime() {
				ts = b.MaxTimestamp
			}
			return absRecord{offset: o, ts: ts, r: r}, nil
		}
	}
	return absRecord{}, fmt.Errorf("no record at %d", o)
}

func sameRecord(a, b absRecord) bool {
	if a.control || b.control {
		return a.control == b.control && a.offset == b.offset
	}
	return a.offset == b.offset && a.ts == b.ts &&
		bytes.Equal(a.r.Key, b.r.Key) && (a.r.Key == nil) == (b.r.Key == nil) &&
		bytes.Equal(a.r.Value, b.r.Value) && (a.r.Value == nil) == (b.r.Value == nil) &&
		bytes.Equal(a.r.Headers, b.r.Headers)
}

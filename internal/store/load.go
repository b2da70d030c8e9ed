package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/batch"
	"github.com/strait-dev/strait/internal/retry"
)

// Reading the state topic whole. The catalog is served only once every
// record up to the end offset listed at the start of the read has been
// seen: a partial read would be taken for the whole state, and links that
// exist would be answered 404 and stop being mirrored.
//
// The read is driven by the fetch position, not by the records: in a
// compacted topic the records just below the end may be gone, so the last
// record seen says nothing about where the topic ends. The position
// advances over every batch the broker returns (a batch keeps its offset
// range after compaction), and a fetch that returns nothing while the
// partition's high watermark is at or past the listed end means the rest
// was compacted away. A slow or failing cluster makes the read wait and
// retry, never end early.

// attemptTimeout bounds one request of the read; a slow broker is retried.
const attemptTimeout = 30 * time.Second

// readTopic reads partition 0 of topic from its log start to the end offset
// listed when the read began. mustExist false turns an unknown topic into
// ErrNoStateTopic (a remote cluster no Strait manages); true waits for the
// topic to appear (it was just created).
func readTopic(ctx context.Context, cl *kgo.Client, topic string, log *slog.Logger, mustExist bool) (map[string]Entry, int64, error) {
	var start, end int64
	var leader int32
	var id [16]byte
	locate := func(ctx context.Context) error {
		var err error
		leader, id, err = partitionLeader(ctx, cl, topic)
		if err != nil {
			return err
		}
		start, end, err = logBounds(ctx, cl, leader, topic)
		return err
	}
	err := retry.Do(ctx, log, "the state topic "+topic, attemptTimeout, func(ctx context.Context) error {
		err := locate(ctx)
		if !mustExist && errors.Is(err, kerr.UnknownTopicOrPartition) {
			return retry.Permanent(ErrNoStateTopic)
		}
		return err
	})
	if errors.Is(err, ErrNoStateTopic) {
		return nil, 0, ErrNoStateTopic
	}
	if err != nil {
		return nil, 0, err
	}
	out := map[string]Entry{}
	pos := start
	for pos < end {
		what := fmt.Sprintf("the state topic %s read to offset %d (at %d)", topic, end, pos)
		err := retry.Do(ctx, log, what, attemptTimeout, func(ctx context.Context) error {
			next, err := readFrom(ctx, cl, leader, topic, id, pos, end, out)
			switch {
			case errors.Is(err, kerr.OffsetOutOfRange):
				// Retention or compaction moved the log start past pos.
				if lerr := locate(ctx); lerr != nil {
					return lerr
				}
				pos = max(pos, start)
				return nil
			case err != nil:
				if isLeaderErr(err) || errors.Is(err, kerr.UnknownTopicID) {
					if l, tid, lerr := partitionLeader(ctx, cl, topic); lerr == nil {
						leader, id = l, tid
					}
				}
				return err
			}
			pos = next
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return out, end, nil
}

func isLeaderErr(err error) bool {
	return errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.LeaderNotAvailable) ||
		errors.Is(err, kerr.FencedLeaderEpoch) || errors.Is(err, kerr.UnknownLeaderEpoch) ||
		errors.Is(err, kerr.UnknownTopicOrPartition)
}

// partitionLeader asks for the leader of the topic's partition 0 and the
// topic's id (fetch requests name topics by id).
func partitionLeader(ctx context.Context, cl *kgo.Client, topic string) (int32, [16]byte, error) {
	var none [16]byte
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, none, err
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return -1, none, err
		}
		for _, p := range t.Partitions {
			if p.Partition != 0 {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return -1, none, err
			}
			if p.Leader < 0 {
				return -1, none, kerr.LeaderNotAvailable
			}
			return p.Leader, t.TopicID, nil
		}
	}
	return -1, none, kerr.UnknownTopicOrPartition
}

// logBounds lists the log start and end offsets of partition 0.
func logBounds(ctx context.Context, cl *kgo.Client, leader int32, topic string) (int64, int64, error) {
	var out [2]int64
	for i, ts := range []int64{-2, -1} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, ts, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		if err != nil {
			return 0, 0, err
		}
		found := false
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.Partition != 0 {
					continue
				}
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return 0, 0, err
				}
				out[i], found = p.Offset, true
			}
		}
		if !found {
			return 0, 0, kerr.UnknownTopicOrPartition
		}
	}
	return out[0], out[1], nil
}

// readFrom fetches once from pos, adds the records below end to out, and
// returns the position after what it read.
func readFrom(ctx context.Context, cl *kgo.Client, leader int32, topic string, id [16]byte, pos, end int64, out map[string]Entry) (int64, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = 8 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, pos, 8<<20
	rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		return pos, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return pos, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition != 0 {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return pos, err
			}
			bs, err := batch.Split(p.RecordBatches)
			if err != nil {
				return pos, fmt.Errorf("state topic at %d: %w", pos, err)
			}
			if len(bs) == 0 {
				if p.HighWatermark >= end {
					// Nothing left below the end: compacted away.
					return end, nil
				}
				return pos, fmt.Errorf("state topic at %d: no data yet (high watermark %d, listed end %d)", pos, p.HighWatermark, end)
			}
			for i := range bs {
				b := &bs[i]
				if b.NextOffset() <= pos {
					continue
				}
				if !b.Control() {
					recs, err := b.Records()
					if err != nil {
						return pos, fmt.Errorf("state topic batch at %d: %w", b.BaseOffset, err)
					}
					for _, r := range recs {
						o := b.BaseOffset + int64(r.OffsetDelta)
						if o < pos || o >= end {
							continue
						}
						out[string(r.Key)] = Entry{Value: r.Value, Offset: o}
					}
				}
				pos = min(b.NextOffset(), end)
				if pos >= end {
					return end, nil
				}
			}
			return pos, nil
		}
	}
	return pos, errors.New("fetch response without the state topic's partition")
}

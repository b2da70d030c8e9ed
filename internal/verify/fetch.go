package verify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/batch"
)

// reader fetches raw batches of one topic of one cluster, from each
// partition's leader, as the copy does (read_uncommitted, no fetch
// session).
type reader struct {
	cl    *kgo.Client
	topic string
	lim   *Limiter

	mu      sync.Mutex
	id      [16]byte
	leaders map[int32]int32
}

func newReader(cl *kgo.Client, topic string, lim *Limiter) *reader {
	return &reader{cl: cl, topic: topic, lim: lim}
}

// leader returns the topic's id and the partition's leader, asking the
// cluster when unknown or when refresh is set.
func (r *reader) leader(ctx context.Context, p int32, refresh bool) ([16]byte, int32, error) {
	r.mu.Lock()
	l, ok := r.leaders[p]
	id := r.id
	r.mu.Unlock()
	if ok && !refresh && l >= 0 {
		return id, l, nil
	}
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(r.topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return id, -1, err
	}
	if len(resp.Topics) != 1 {
		return id, -1, fmt.Errorf("metadata of %s: %d topics answered", r.topic, len(resp.Topics))
	}
	t := resp.Topics[0]
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		return id, -1, fmt.Errorf("metadata of %s: %w", r.topic, err)
	}
	leaders := map[int32]int32{}
	for _, tp := range t.Partitions {
		leaders[tp.Partition] = tp.Leader
	}
	r.mu.Lock()
	r.id, r.leaders = t.TopicID, leaders
	r.mu.Unlock()
	l, ok = leaders[p]
	if !ok || l < 0 {
		return t.TopicID, -1, fmt.Errorf("%s[%d] has no leader", r.topic, p)
	}
	return t.TopicID, l, nil
}

// fetched is one fetch's complete batches and the partition's high
// watermark.
type fetched struct {
	batches []batch.Batch
	hw      int64
	bytes   int
}

// fetch fetches the batches of partition p from offset o, about maxBytes
// of them (at least one whole batch), retrying leader changes.
func (r *reader) fetch(ctx context.Context, p int32, o int64, maxBytes int32) (fetched, error) {
	var last error
	for attempt := 0; attempt < 8; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fetched{}, ctx.Err()
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond): // backoff
			}
		}
		f, err := r.fetchOnce(ctx, p, o, maxBytes, attempt > 0)
		switch {
		case err == nil:
			return f, nil
		case errors.Is(err, errTooSmall):
			maxBytes *= 4 // a batch larger than the fetch: ask for it whole
			continue
		case errors.Is(err, kerr.OffsetOutOfRange), ctx.Err() != nil:
			return fetched{}, err
		}
		last = err
	}
	return fetched{}, last
}

var errTooSmall = errors.New("fetch smaller than the batch")

func (r *reader) fetchOnce(ctx context.Context, p int32, o int64, maxBytes int32, refresh bool) (fetched, error) {
	id, leader, err := r.leader(ctx, p, refresh)
	if err != nil {
		return fetched{}, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = maxBytes
	req.SessionEpoch = -1
	req.IsolationLevel = 0 // read_uncommitted: markers and aborted data are compared too
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = r.topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, o, maxBytes
	rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, r.cl.Broker(int(leader)))
	if err != nil {
		return fetched{}, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fetched{}, err
	}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			if rp.Partition != p {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return fetched{}, fmt.Errorf("fetch %s[%d] at %d: %w", r.topic, p, o, err)
			}
			bs, err := batch.Split(rp.RecordBatches)
			if err != nil {
				return fetched{}, fmt.Errorf("fetch %s[%d] at %d: %w", r.topic, p, o, err)
			}
			r.lim.Take(ctx, len(rp.RecordBatches))
			if len(bs) == 0 && len(rp.RecordBatches) > 0 {
				return fetched{}, errTooSmall
			}
			return fetched{batches: bs, hw: rp.HighWatermark, bytes: len(rp.RecordBatches)}, nil
		}
	}
	return fetched{}, fmt.Errorf("fetch %s[%d]: no answer for the partition", r.topic, p)
}

// chunk is what a stream hands the comparer: the next batches and how far
// the log is known with them, or the error that ended the stream.
type chunk struct {
	batches []batch.Batch
	known   int64
	err     error
}

// stream fetches partition p from offset from until it has every batch
// that starts below to, ahead of the comparer by at most the channel's
// capacity. It closes out when done.
func (r *reader) stream(ctx context.Context, p int32, from, to int64, maxBytes int32, out chan<- chunk) {
	defer close(out)
	send := func(c chunk) bool {
		select {
		case out <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for pos := from; pos < to; {
		f, err := r.fetch(ctx, p, pos, maxBytes)
		if err != nil {
			send(chunk{err: err})
			return
		}
		known := pos
		if n := len(f.batches); n > 0 {
			known = f.batches[n-1].NextOffset()
		} else {
			// Nothing from pos to the end of the log: a compacted tail,
			// or the end itself.
			known = max(pos, f.hw, to)
		}
		if !send(chunk{batches: f.batches, known: known}) {
			return
		}
		pos = known
	}
}

package mirror

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// destOffsets returns the mirror partition's log start and end offsets.
func (w *worker) destOffsets(ctx context.Context) (int64, int64, error) {
	return listOffsets(ctx, w.r.cfg.Dest, w.t.spec.Topic, w.p.id)
}

// firstDestOffsets is destOffsets for a worker's first setup in a topic
// run: the workers of the topic, starting together, share one lookup of all
// the topic's partitions. That is safe only then: no worker of the run has
// produced yet, and only a partition's own worker moves its end.
func (w *worker) firstDestOffsets(ctx context.Context) (int64, int64, error) {
	return w.t.startOffsets.get(ctx, w.p.id, func(ctx context.Context) (map[int32][2]int64, error) {
		adm := kadm.NewClient(w.r.cfg.Dest)
		starts, err := adm.ListStartOffsets(ctx, w.t.spec.Topic)
		if err != nil {
			return nil, err
		}
		ends, err := adm.ListEndOffsets(ctx, w.t.spec.Topic)
		if err != nil {
			return nil, err
		}
		out := map[int32][2]int64{}
		var ferr error
		for i, listed := range []kadm.ListedOffsets{starts, ends} {
			listed.Each(func(o kadm.ListedOffset) {
				if o.Err != nil {
					ferr = o.Err
				}
				v := out[o.Partition]
				v[i] = o.Offset
				out[o.Partition] = v
			})
		}
		return out, ferr
	})
}

// offsetsOnce runs one offsets lookup for all the workers that ask for it
// together; a failed lookup is not kept.
type offsetsOnce struct {
	mu   sync.Mutex
	done chan struct{}
	got  map[int32][2]int64
	err  error
}

func (o *offsetsOnce) get(ctx context.Context, p int32, fetch func(context.Context) (map[int32][2]int64, error)) (int64, int64, error) {
	o.mu.Lock()
	if o.done == nil {
		o.done = make(chan struct{})
		o.mu.Unlock()
		got, err := fetch(ctx)
		o.mu.Lock()
		o.got, o.err = got, err
		close(o.done)
		if err != nil {
			o.done = nil // the next caller tries again
		}
		o.mu.Unlock()
	} else {
		done := o.done
		o.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return 0, 0, o.err
	}
	v, ok := o.got[p]
	if !ok {
		return 0, 0, fmt.Errorf("no offsets for partition %d", p)
	}
	return v[0], v[1], nil
}

func (w *worker) sourceOffsets(ctx context.Context) (int64, int64, error) {
	return listOffsets(ctx, w.r.cfg.Source, w.t.spec.SourceTopic, w.p.id)
}

// listOffsets returns one partition's log start and end offsets.
func listOffsets(ctx context.Context, cl *kgo.Client, topic string, p int32) (int64, int64, error) {
	start, err := listOffset(ctx, cl, topic, p, -2)
	if err != nil {
		return 0, 0, err
	}
	end, err := listOffset(ctx, cl, topic, p, -1)
	return start, end, err
}

// listOffset asks the partition's leader for one offset: ts -2 is the log
// start, -1 the end, else the first offset at or after the timestamp (-1
// when there is none). Only the one partition is asked about: a worker
// per partition asking for the whole topic costs partitions squared.
func listOffset(ctx context.Context, cl *kgo.Client, topic string, p int32, ts int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			if rp.Partition != p {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return 0, fmt.Errorf("list offsets of %s[%d]: %w", topic, p, err)
			}
			return rp.Offset, nil
		}
	}
	return 0, fmt.Errorf("no offsets for %s[%d]", topic, p)
}

package mirror

import (
	"context"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// listEnds lists the end offsets of exactly the partitions in set, in one
// ListOffsets per broker. The partitions go to the leaders the cache
// knows: kgo's own routing of a sharded request asks the cluster for the
// metadata of every topic in it first (its cache for that lasts half a
// second), which for thousands of idle partitions read every second cost
// more than the offsets. A partition whose leader the cache does not know,
// or whose broker answers that it is not the leader, is asked for through
// kgo in the same call, and its topic's metadata is read again for the
// next call.
func (m *metaCache) listEnds(ctx context.Context, set kadm.TopicsSet) (kadm.ListedOffsets, error) {
	type req struct {
		r     *kmsg.ListOffsetsRequest
		index map[string]int
	}
	byLeader := map[int32]*req{}
	rest := kadm.TopicsSet{}
	stale := map[string]bool{}
	m.mu.Lock()
	for topic, parts := range set {
		tm, ok := m.topics[topic]
		for p := range parts {
			if !ok || tm.err != nil || int(p) >= len(tm.leaders) || tm.leaders[p] < 0 {
				// Not known, or known without a leader: kgo routes it
				// now, and the topic is read again for the next call.
				rest.Add(topic, p)
				stale[topic] = true
				continue
			}
			leader := tm.leaders[p]
			q := byLeader[leader]
			if q == nil {
				q = &req{r: kmsg.NewPtrListOffsetsRequest(), index: map[string]int{}}
				q.r.ReplicaID = -1
				byLeader[leader] = q
			}
			i, ok := q.index[topic]
			if !ok {
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = topic
				q.r.Topics = append(q.r.Topics, rt)
				i = len(q.r.Topics) - 1
				q.index[topic] = i
			}
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rp.Timestamp = -1 // the end
			rp.CurrentLeaderEpoch = -1
			q.r.Topics[i].Partitions = append(q.r.Topics[i].Partitions, rp)
		}
	}
	m.mu.Unlock()

	out := make(kadm.ListedOffsets)
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
	)
	for leader, q := range byLeader {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := q.r.RequestWith(ctx, m.cl.Broker(int(leader)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				// The broker may be gone: kgo finds where they are now.
				for _, rt := range q.r.Topics {
					stale[rt.Topic] = true
					for _, rp := range rt.Partitions {
						rest.Add(rt.Topic, rp.Partition)
					}
				}
				return
			}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					err := kerr.ErrorForCode(rp.ErrorCode)
					if isLeaderErr(err) || errors.Is(err, kerr.UnknownTopicOrPartition) {
						stale[rt.Topic] = true
						rest.Add(rt.Topic, rp.Partition)
						continue
					}
					addListed(out, rt.Topic, rp, err)
				}
			}
		}()
	}
	wg.Wait()
	if len(rest) > 0 {
		more, err := listEndsSharded(ctx, m.cl, rest)
		if err != nil {
			firstErr = err
		}
		for topic, ps := range more {
			for p, o := range ps {
				if out[topic] == nil {
					out[topic] = map[int32]kadm.ListedOffset{}
				}
				out[topic][p] = o
			}
		}
	}
	if len(stale) > 0 {
		topics := make([]string, 0, len(stale))
		for t := range stale {
			topics = append(topics, t)
		}
		_, _ = m.load(ctx, topics) // for the next call; an error leaves it to kgo again
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// cached returns the cached metadata of topic, if any.
func (m *metaCache) cached(topic string) (topicMeta, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tm, ok := m.topics[topic]
	return tm, ok
}

func addListed(out kadm.ListedOffsets, topic string, rp kmsg.ListOffsetsResponseTopicPartition, err error) {
	if out[topic] == nil {
		out[topic] = map[int32]kadm.ListedOffset{}
	}
	out[topic][rp.Partition] = kadm.ListedOffset{
		Topic: topic, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch, Err: err,
	}
}

// listEndsSharded lists the end offsets of exactly the partitions in set,
// routed by kgo.
func listEndsSharded(ctx context.Context, cl *kgo.Client, set kadm.TopicsSet) (kadm.ListedOffsets, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	for topic, parts := range set {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for p := range parts {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rp.Timestamp = -1 // the end
			rp.CurrentLeaderEpoch = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	// kgo splits the request by partition leader and merges the answers.
	shards := cl.RequestSharded(ctx, req)
	out := make(kadm.ListedOffsets)
	var firstErr error
	for _, sh := range shards {
		if sh.Err != nil {
			if firstErr == nil {
				firstErr = sh.Err
			}
			continue
		}
		resp := sh.Resp.(*kmsg.ListOffsetsResponse)
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				addListed(out, rt.Topic, rp, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

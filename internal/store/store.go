// Package store keeps Strait's state (links and mirrors) as keyed records in
// a compacted topic on the destination cluster, the system of record.
//
// The store is a durable key/value map: Put and Delete return only once the
// destination acknowledged the record with acks=all, so a caller that
// answers a request after Put never acknowledges a change that a crash
// could lose. Load replays the topic into a map at start.
package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTopic is the state topic's name unless configured otherwise. The
// leading underscores mark it internal: it is never offered for mirroring.
const DefaultTopic = "__strait_state"

// Store is the state topic. It is safe for concurrent use; writes are
// applied in the order Put and Delete are called.
type Store struct {
	topic string
	base  []kgo.Opt
	prod  *kgo.Client
	mu    sync.Mutex // serializes writes so records land in call order
}

// Open connects to the destination with the base client options, creates
// the state topic if it does not exist, and returns the store.
func Open(ctx context.Context, base []kgo.Opt, topic string) (*Store, error) {
	if topic == "" {
		topic = DefaultTopic
	}
	prod, err := kgo.NewClient(append(append([]kgo.Opt{}, base...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)...)
	if err != nil {
		return nil, err
	}
	s := &Store{topic: topic, base: base, prod: prod}
	if err := s.ensureTopic(ctx); err != nil {
		prod.Close()
		return nil, err
	}
	return s, nil
}

// Topic is the state topic's name.
func (s *Store) Topic() string { return s.topic }

func (s *Store) ensureTopic(ctx context.Context) error {
	adm := kadm.NewClient(s.prod)
	cfg := map[string]*string{
		"cleanup.policy":        kadm.StringPtr("compact"),
		"min.compaction.lag.ms": kadm.StringPtr("0"),
		"retention.ms":          kadm.StringPtr("-1"),
	}
	resp, err := adm.CreateTopic(ctx, 1, -1, cfg, s.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create state topic %q: %w", s.topic, err)
	}
	return nil
}

// Put durably stores value under key.
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{} // a nil value would be a tombstone
	}
	return s.write(ctx, key, value)
}

// Delete durably removes key (a tombstone record).
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.write(ctx, key, nil)
}

func (s *Store) write(ctx context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := &kgo.Record{Key: []byte(key), Value: value, Partition: 0}
	if err := s.prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("write state %q: %w", key, err)
	}
	return nil
}

// Load reads the whole state topic and returns the latest value of every
// key that is not deleted.
func (s *Store) Load(ctx context.Context) (map[string][]byte, error) {
	adm := kadm.NewClient(s.prod)
	ends, err := adm.ListEndOffsets(ctx, s.topic)
	if err != nil {
		return nil, fmt.Errorf("list state topic end: %w", err)
	}
	end, ok := ends.Lookup(s.topic, 0)
	if !ok || end.Err != nil {
		return nil, fmt.Errorf("list state topic end: %v", end.Err)
	}
	out := map[string][]byte{}
	if end.Offset == 0 {
		return out, nil
	}
	cons, err := kgo.NewClient(append(append([]kgo.Opt{}, s.base...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	for {
		// Compaction can remove the records just below the end offset, so
		// a poll that finds nothing for a while also means the end.
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fs := cons.PollFetches(pctx)
		idle := pctx.Err() != nil && fs.NumRecords() == 0
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if idle {
			return out, nil
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = err
			}
		})
		if ferr != nil && !kerr.IsRetriable(ferr) {
			return nil, fmt.Errorf("read state topic: %w", ferr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				delete(out, string(r.Key))
			} else {
				out[string(r.Key)] = r.Value
			}
			if r.Offset >= end.Offset-1 {
				done = true
			}
		})
		if done {
			return out, nil
		}
	}
}

// Close releases the store's client.
func (s *Store) Close() { s.prod.Close() }

// Package store keeps Strait's state (links and mirrors) as keyed records in
// a compacted topic on the destination cluster, the system of record.
//
// The store is a durable key/value map: Put and Delete return only once the
// destination acknowledged the record with acks=all, so a caller that
// answers a request after Put never acknowledges a change that a crash
// could lose. Load replays the topic into a map at start and Follow tails it
// afterwards, so changes written by someone else (another Strait managing
// the other side of a bidirectional link) are seen too. Every entry carries
// its offset: a reader applies a record only if it is newer than what it
// holds for that key.
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

// ErrNoStateTopic is returned when a remote cluster has no state topic: no
// Strait manages it.
var ErrNoStateTopic = errors.New("no Strait state topic on the cluster")

// Entry is a key's latest record. A nil Value means the key was deleted.
type Entry struct {
	Value  []byte
	Offset int64
}

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

// Put durably stores value under key and returns the record's offset.
func (s *Store) Put(ctx context.Context, key string, value []byte) (int64, error) {
	if value == nil {
		value = []byte{} // a nil value would be a tombstone
	}
	return s.write(ctx, key, value)
}

// Delete durably removes key (a tombstone record) and returns its offset.
func (s *Store) Delete(ctx context.Context, key string) (int64, error) {
	return s.write(ctx, key, nil)
}

func (s *Store) write(ctx context.Context, key string, value []byte) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := &kgo.Record{Key: []byte(key), Value: value, Partition: 0}
	if err := s.prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return 0, fmt.Errorf("write state %q: %w", key, err)
	}
	return rec.Offset, nil
}

// Load reads the whole state topic. It returns every key's latest record
// (deleted keys included, with a nil Value) and the offset to Follow from.
func (s *Store) Load(ctx context.Context) (map[string]Entry, int64, error) {
	return load(ctx, s.prod, s.base, s.topic)
}

// Follow calls fn for every record from offset from on, in order, until ctx
// ends. fn runs on Follow's goroutine.
func (s *Store) Follow(ctx context.Context, from int64, fn func(key string, e Entry)) error {
	cons, err := kgo.NewClient(append(append([]kgo.Opt{}, s.base...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	defer cons.Close()
	for {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachRecord(func(r *kgo.Record) {
			fn(string(r.Key), Entry{Value: r.Value, Offset: r.Offset})
		})
	}
}

// Close releases the store's client.
func (s *Store) Close() { s.prod.Close() }

// Remote is the state topic of another cluster, reached with a client for
// that cluster: the other side of a bidirectional link.
type Remote struct {
	cl    *kgo.Client
	topic string
}

// NewRemote returns the state topic named topic on the cluster cl reaches.
func NewRemote(cl *kgo.Client, topic string) *Remote {
	if topic == "" {
		topic = DefaultTopic
	}
	return &Remote{cl: cl, topic: topic}
}

// Load reads the remote state topic; ErrNoStateTopic if there is none.
func (r *Remote) Load(ctx context.Context) (map[string]Entry, error) {
	out, _, err := load(ctx, r.cl, r.cl.Opts(), r.topic)
	return out, err
}

// Put writes value under key to the remote state topic, durably.
func (r *Remote) Put(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	rec := &kgo.Record{Topic: r.topic, Key: []byte(key), Value: value}
	if err := r.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("write remote state %q: %w", key, err)
	}
	return nil
}

// load reads topic from its start to its current end with a consumer built
// from opts; adm is any client of that cluster.
func load(ctx context.Context, adm *kgo.Client, opts []kgo.Opt, topic string) (map[string]Entry, int64, error) {
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, 0, fmt.Errorf("list state topic end: %w", err)
	}
	end, ok := ends.Lookup(topic, 0)
	if !ok || errors.Is(end.Err, kerr.UnknownTopicOrPartition) {
		return nil, 0, ErrNoStateTopic
	}
	if end.Err != nil {
		return nil, 0, fmt.Errorf("list state topic end: %w", end.Err)
	}
	out := map[string]Entry{}
	if end.Offset == 0 {
		return out, 0, nil
	}
	cons, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return nil, 0, err
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
			return nil, 0, err
		}
		if idle {
			return out, end.Offset, nil
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = err
			}
		})
		if ferr != nil && !kerr.IsRetriable(ferr) {
			return nil, 0, fmt.Errorf("read state topic: %w", ferr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			out[string(r.Key)] = Entry{Value: r.Value, Offset: r.Offset}
			if r.Offset >= end.Offset-1 {
				done = true
			}
		})
		if done {
			return out, end.Offset, nil
		}
	}
}

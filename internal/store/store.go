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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/retry"
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
	log   *slog.Logger
	mu    sync.Mutex // serializes writes so records land in call order
	// observe receives every write's latency and outcome; see Observe.
	observe atomic.Pointer[func(took time.Duration, err error)]
}

// Observe makes fn receive the latency and outcome of every write (Put,
// Delete) from now on: the metrics of the state topic.
func (s *Store) Observe(fn func(took time.Duration, err error)) { s.observe.Store(&fn) }

// Open connects to the destination with the base client options, creates
// the state topic if it does not exist, and returns the store. Transient
// errors (a leader moving, a dropped connection) are retried until ctx
// ends; log says what it waits for.
func Open(ctx context.Context, base []kgo.Opt, topic string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
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
	s := &Store{topic: topic, base: base, prod: prod, log: log}
	if err := retry.Do(ctx, log, "the state topic "+topic+" to be created", attemptTimeout, s.ensureTopic); err != nil {
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

// FormatKey is the state record that says which format the state topic is
// written in and for which destination cluster.
const FormatKey = "meta/format"

// FormatVersion is the state format this Strait writes and reads. A later
// version that changes the meaning of records raises it; this one refuses
// to serve from a topic written in a newer format.
const FormatVersion = 1

// format is the value of the FormatKey record.
type format struct {
	Version   int    `json:"version"`
	ClusterID string `json:"cluster_id"`
}

// CheckFormat checks the format record of a loaded state against this
// Strait and the destination's cluster id, and writes it when the topic has
// none yet. A topic from a newer Strait, or one that belongs to another
// cluster (its records were copied here), cannot heal by waiting: the
// errors say what to do.
func (s *Store) CheckFormat(ctx context.Context, kv map[string]Entry, clusterID string) error {
	e, ok := kv[FormatKey]
	if ok && e.Value != nil {
		var f format
		if err := json.Unmarshal(e.Value, &f); err != nil {
			return fmt.Errorf("state topic %s: unreadable format record: %w", s.topic, err)
		}
		switch {
		case f.Version > FormatVersion:
			return fmt.Errorf("state topic %s is in format %d, written by a newer Strait; this one reads format %d: run the newer version", s.topic, f.Version, FormatVersion)
		case f.ClusterID != "" && f.ClusterID != clusterID:
			return fmt.Errorf("state topic %s belongs to cluster %s, but the destination is cluster %s: point --destination-bootstrap at the right cluster, or give this one its own --state-topic", s.topic, f.ClusterID, clusterID)
		}
		return nil
	}
	b, _ := json.Marshal(format{Version: FormatVersion, ClusterID: clusterID})
	return retry.Do(ctx, s.log, "the state topic's format record", attemptTimeout, func(ctx context.Context) error {
		_, err := s.Put(ctx, FormatKey, b)
		return err
	})
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
	start := time.Now()
	err := s.prod.ProduceSync(ctx, rec).FirstErr()
	if fn := s.observe.Load(); fn != nil {
		(*fn)(time.Since(start), err)
	}
	if err != nil {
		return 0, fmt.Errorf("write state %q: %w", key, err)
	}
	return rec.Offset, nil
}

// Record is one key and value for PutMany; a nil Value deletes the key.
type Record struct {
	Key   string
	Value []byte
}

// PutMany durably stores records, in order, in one ProduceSync: the
// producer sends them together (one produce request while they fit in
// one), so a thousand records cost about one round trip, not a thousand.
// It returns each record's offset, -1 for a record that was not stored,
// and the first error. On an error some records may have been stored,
// those with an offset; the others were not (they were refused, or their
// outcome was unknown when the retries ran out and they may yet be in
// the log: a reader of the topic applies whatever is there).
func (s *Store) PutMany(ctx context.Context, recs []Record) ([]int64, error) {
	offs := make([]int64, len(recs))
	if len(recs) == 0 {
		return offs, nil
	}
	krs := make([]*kgo.Record, len(recs))
	index := make(map[*kgo.Record]int, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Key: []byte(r.Key), Value: r.Value, Partition: 0}
		index[krs[i]] = i
		offs[i] = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The results come in the order the producer finished them, not the
	// order given.
	var first error
	firstAt := len(recs)
	for _, res := range s.prod.ProduceSync(ctx, krs...) {
		i := index[res.Record]
		if res.Err == nil {
			offs[i] = res.Record.Offset
		} else if i < firstAt {
			first, firstAt = fmt.Errorf("write state %q: %w", recs[i].Key, res.Err), i
		}
	}
	return offs, first
}

// Load reads the whole state topic, up to the end offset it had when the
// read began, however long the cluster takes (see readTopic). It returns
// every key's latest record (deleted keys included, with a nil Value) and
// the offset to Follow from.
func (s *Store) Load(ctx context.Context) (map[string]Entry, int64, error) {
	return readTopic(ctx, s.prod, s.topic, s.log, true)
}

// Follow calls fn for every record from offset from on, in order, until ctx
// ends, and done (when not nil) after each batch of records read together,
// so that what they change can be applied together. Both run on Follow's
// goroutine.
func (s *Store) Follow(ctx context.Context, from int64, fn func(key string, e Entry), done func()) error {
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
		if done != nil {
			done()
		}
	}
}

// End returns the state topic's end offset: the offset the next record
// will have.
func (s *Store) End(ctx context.Context) (int64, error) {
	leader, _, err := partitionLeader(ctx, s.prod, s.topic)
	if err != nil {
		return 0, err
	}
	_, end, err := logBounds(ctx, s.prod, leader, s.topic)
	return end, err
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

// Load reads the remote state topic whole; ErrNoStateTopic if there is
// none.
func (r *Remote) Load(ctx context.Context) (map[string]Entry, error) {
	out, _, err := readTopic(ctx, r.cl, r.topic, nil, false)
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

package mirror

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic errors reported through Hooks.Failed. The values are the
// mirror_topic_error names of the REST API.
const (
	ErrSourceTopicDeleted       = "SOURCE_TOPIC_MAY_BE_DELETED"
	ErrSourceTopicIDChanged     = "SOURCE_TOPIC_ID_CHANGED"
	ErrSourcePartitionsDecrease = "SOURCE_PARTITIONS_DECREASED"
	ErrUnsupportedFormat        = "UNSUPPORTED_MESSAGE_FORMAT"
	ErrUnexpectedTruncation     = "UNEXPECTED_TRUNCATION"
	ErrIllegalState             = "ILLEGAL_STATE"
)

// Spec is one mirror topic as the runner should mirror it.
type Spec struct {
	// Topic is the mirror topic on the destination.
	Topic string
	// SourceTopic is the topic read on the source.
	SourceTopic string
	// Partitions is the mirror's partition count.
	Partitions int32
	// SourceTopicID is the source topic's id when the mirror was created;
	// a different id at the source means the topic was re-created. Zero
	// disables the check.
	SourceTopicID [16]byte
	// Copying is false for a mirror that must not fetch (paused, failed,
	// stopped); its lag is still kept up to date.
	Copying bool
	// Fresh is true until the mirror has started once; StartOffset applies
	// only then.
	Fresh bool
	// StartOffset is mirror.start.offset.spec: "earliest", "latest" or an
	// RFC 3339 timestamp.
	StartOffset string
	// Align holds alignment targets saved by Hooks.SaveAlign and not yet
	// finished, by partition.
	Align map[int32]int64
	// Compacted is set for a mirror topic with cleanup.policy=compact: its
	// filler records need a key.
	Compacted bool
	// Writers are the partitions' writer identities saved by
	// Hooks.SaveWriters (see fence.go); the runner does not modify the map.
	Writers map[int32]WriterID
	// Owned are the partitions this runner copies when the topic copies;
	// nil means all of them. Instances that share a link's partitions
	// each own some (internal/group): a partition that is not owned here
	// is only watched for its lag, on demand (RefreshLags). The runner
	// does not modify the map.
	Owned map[int32]bool
}

// owns reports whether the spec gives partition p to this runner.
func (s *Spec) owns(p int32) bool { return s.Owned == nil || s.Owned[p] }

// Hooks is how a runner reports to its owner. Calls may come from any
// goroutine, never with a runner lock held.
type Hooks interface {
	// Started is called once partitions of a Fresh topic are set up: the
	// ones this runner owned when the topic started, together, and any
	// it gains later, one by one.
	Started(topic string, partitions []int32)
	// Failed is called when a topic cannot be mirrored faithfully any more;
	// code is one of the Err constants, msg says why. The runner stops the
	// topic's copy itself; the owner is expected to persist the failure.
	Failed(topic, code, msg string)
	// SaveAlign durably records (target >= 0) or clears (target < 0) a
	// partition's alignment target. The worker does not pad before it
	// returns nil.
	SaveAlign(ctx context.Context, topic string, partition int32, target int64) error
	// SourceReachable reports the outcome of each source metadata probe.
	SourceReachable(err error)
	// PartitionsGrew reports a source topic that now has more partitions
	// than its mirror. The owner adds them to the mirror topic and Sets the
	// new count; the new partitions are copied from their start.
	PartitionsGrew(topic string, partitions int32)
	// Skipped reports offsets [from, to) of a partition that the source
	// deleted (retention) before they were copied: the mirror was aligned
	// past them, and they are lost to it.
	Skipped(topic string, partition int32, from, to int64)
	// SaveWriters durably records writer identities of a topic's
	// partitions and returns the identities stored for them afterwards
	// (one stored before is kept). The runner writes as a partition's
	// writer only once it is saved.
	SaveWriters(ctx context.Context, topic string, ids map[int32]WriterID) (map[int32]WriterID, error)
	// Stalled reports a partition that has offsets to copy and has copied
	// none for Config.StallTimeout, and why; Recovered reports that it
	// moves again or stopped being copied.
	Stalled(topic string, partition int32, reason string)
	Recovered(topic string, partition int32)
}

// Config configures a Runner.
type Config struct {
	// Source and Dest are clients for the two clusters. The runner does
	// not close them.
	Source, Dest *kgo.Client
	// DestClusterID is the destination's cluster id: a source with the same
	// id is the destination itself, and nothing is copied from it.
	DestClusterID string
	Hooks         Hooks
	Log           *slog.Logger
	// FetchMaxBytes caps a fetch response (replica.fetch.response.max.bytes).
	FetchMaxBytes int32
	// PartitionMaxBytes caps one partition in a fetch (replica.fetch.max.bytes).
	PartitionMaxBytes int32
	// FetchMaxWait is how long a broker may hold an empty fetch.
	FetchMaxWait time.Duration
	// BufferBytes caps the fetched bytes queued for all the link's
	// partitions together: the link's memory bound. Default 64 MiB.
	BufferBytes int
	// PartitionBufferBytes caps the fetched bytes queued per partition.
	// Default 4 MiB.
	PartitionBufferBytes int
	// MetadataInterval is how often the source is probed for its
	// availability. Default 5 s.
	MetadataInterval time.Duration
	// TopicCheckInterval is how often every mirrored topic's source
	// metadata (leaders, topic id, partition count) is read; a topic whose
	// fetches fail is read at once. Default 30 s.
	TopicCheckInterval time.Duration
	// ProduceTimeout bounds one produce request.
	ProduceTimeout time.Duration
	// ProbeTimeout bounds one probe of the source (metadata), which tells
	// whether the source is reachable. Default 15 s.
	ProbeTimeout time.Duration
	// TxnIDPrefix starts the transactional ids of replayed source
	// transactions; one per link. Default "strait".
	TxnIDPrefix string
	// StallTimeout is how long a partition with offsets to copy may copy
	// nothing before it is reported stalled. Default one minute.
	StallTimeout time.Duration
	// Observer receives the copy's measurements; nil discards them.
	Observer Observer
}

func (c *Config) defaults() {
	if c.FetchMaxBytes <= 0 {
		c.FetchMaxBytes = 10 << 20
	}
	if c.PartitionMaxBytes <= 0 {
		c.PartitionMaxBytes = 5 << 20
	}
	if c.FetchMaxWait <= 0 {
		c.FetchMaxWait = 500 * time.Millisecond
	}
	if c.BufferBytes <= 0 {
		c.BufferBytes = 64 << 20
	}
	if c.PartitionBufferBytes <= 0 {
		c.PartitionBufferBytes = 4 << 20
	}
	if c.MetadataInterval <= 0 {
		c.MetadataInterval = 5 * time.Second
	}
	if c.TopicCheckInterval <= 0 {
		c.TopicCheckInterval = 30 * time.Second
	}
	if c.ProduceTimeout <= 0 {
		c.ProduceTimeout = 30 * time.Second
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = 15 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.TxnIDPrefix == "" {
		c.TxnIDPrefix = "strait"
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = time.Minute
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
}

// Lag is one partition's replication lag.
type Lag struct {
	Partition int32
	// Lag is how many offsets the mirror is behind the source high
	// watermark last seen; never negative.
	Lag int64
	// LastSourceFetchOffset is the source high watermark last seen, -1
	// before any.
	LastSourceFetchOffset int64
	// MirrorEnd is the mirror partition's log end offset as last known.
	MirrorEnd int64
	// OldestUncopiedMs is the timestamp (Unix ms) of the oldest source
	// record not yet copied, the source batch at MirrorEnd, when Lag is
	// not zero; 0 when Lag is zero or the timestamp is not known yet.
	OldestUncopiedMs int64
}

// Runner mirrors the topics of one link. Create it with NewRunner, feed it
// the desired topics with Set, and Close it when done.
type Runner struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	topics   map[string]*topicRun
	fetchers map[int32]*fetcher

	kick     broadcast // wakes fetchers: partitions became fetchable
	buffered atomic.Int64
	// reached is set once a probe of the source succeeded.
	reached  atomic.Bool
	metaKick chan struct{}

	srcMeta  metaCache
	destMeta metaCache
	// watched is watchStalls' list, reused by the lag loop's ticks.
	watched []*part
	// sink produces the workers' plain batches.
	sink *sink
}

// topicRun is the runner's view of one mirror topic.
type topicRun struct {
	// spec is the topic as first set. Its identity fields (Topic,
	// SourceTopic, Partitions, SourceTopicID) never change; a partition
	// count change makes a new topicRun. Read it without locks.
	spec Spec
	// desired is the latest Set for the topic, guarded by Runner.mu; a
	// worker takes a copy when it starts.
	desired Spec
	parts   []*part
	// copying is true while workers run; written under Runner.mu, read
	// anywhere.
	copying atomic.Bool
	failed  atomic.Bool
	// checkMeta asks the next probe to check the topic's metadata (a
	// fetch error said its leaders or the topic itself changed).
	checkMeta atomic.Bool
	// startedLeft counts the fresh partitions of the topic's start still
	// setting up; startedParts are the ones done (guarded by startedMu).
	startedLeft  atomic.Int32
	startedMu    sync.Mutex
	startedParts []int32
	// ctx is the context of the topic's workers while it copies; each
	// worker has its own child (part.cancel). Guarded by Runner.mu.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   *broadcast
	// buffered is the link's total of queued fetched bytes (shared by
	// every topicRun of the runner).
	buffered *atomic.Int64
	// startOffsets is the shared offsets lookup of the workers' first
	// setup; new for every start of the topic.
	startOffsets *offsetsOnce
	// writers hands out the partitions' writer identities.
	writers *writerIDs
}

// kickFetchers wakes the fetchers: a partition of t can take data again.
func (t *topicRun) kickFetchers() { t.kick.Notify() }

// NewRunner starts a runner with no topics.
func NewRunner(cfg Config) *Runner {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{
		cfg:      cfg,
		log:      cfg.Log,
		ctx:      ctx,
		cancel:   cancel,
		topics:   map[string]*topicRun{},
		fetchers: map[int32]*fetcher{},
		metaKick: make(chan struct{}, 1),
	}
	r.srcMeta.cl = cfg.Source
	r.destMeta.cl = cfg.Dest
	r.sink = newSink(ctx, cfg.Dest, cfg.ProduceTimeout, cfg.Observer)
	r.wg.Add(2)
	go r.metadataLoop()
	go r.lagLoop()
	return r
}

// Set makes the runner mirror exactly specs: new topics start, topics no
// longer listed stop, and topics whose Copying flag changed start or stop.
// Stopping is synchronous: when Set returns, no worker of a stopped topic
// will produce again. The topics that stop are stopped together, not one
// after another.
func (r *Runner) Set(specs []Spec) {
	r.apply(specs, nil, true)
}

// Update is Set for some topics only: specs are set as Set sets them, the
// topics named in drop stop and are forgotten, and every other topic is
// left as it is, untouched. Its cost grows with the topics it names, not
// with the runner's.
func (r *Runner) Update(specs []Spec, drop ...string) {
	r.apply(specs, drop, false)
}

// apply sets specs; with all, the topics not in specs are dropped,
// otherwise only those named in drop.
func (r *Runner) apply(specs []Spec, drop []string, all bool) {
	want := make(map[string]Spec, len(specs))
	for _, s := range specs {
		want[s.Topic] = s
	}
	r.mu.Lock()
	var stop []*topicRun
	var revoke []*part
	dropTopic := func(name string, t *topicRun) {
		stop = append(stop, t)
		delete(r.topics, name)
	}
	if all {
		for name, t := range r.topics {
			if _, ok := want[name]; !ok {
				dropTopic(name, t)
			}
		}
	}
	for _, name := range drop {
		if t, ok := r.topics[name]; ok {
			if _, keep := want[name]; !keep {
				dropTopic(name, t)
			}
		}
	}
	for name, s := range want {
		t, ok := r.topics[name]
		if !ok || !t.copying.Load() {
			continue
		}
		if !s.Copying || s.Partitions != t.spec.Partitions || s.Compacted != t.desired.Compacted {
			// A compaction change restarts the workers: their filler
			// records take a key on a compacted mirror.
			stop = append(stop, t)
			continue
		}
		// The same topic copying on: only the partitions that left
		// this runner stop; the others copy on undisturbed.
		for _, p := range t.parts {
			if p.running && !s.owns(p.id) {
				revoke = append(revoke, p)
			}
		}
	}
	r.mu.Unlock()
	r.stopTopics(stop)
	r.stopParts(revoke)

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range specs {
		t, ok := r.topics[s.Topic]
		if !ok || t.spec.Partitions != s.Partitions {
			t = r.newTopicRun(s, t)
			r.topics[s.Topic] = t
		}
		t.desired = s
		switch {
		case s.Copying && !t.copying.Load() && !t.failed.Load():
			r.startTopicLocked(t)
		case t.copying.Load():
			for _, p := range t.parts {
				if !p.running && s.owns(p.id) {
					r.startPartLocked(t, p, true)
				}
			}
		}
	}
	if len(specs) > 0 {
		r.kickMeta()
	}
}

// newTopicRun builds the run state of a topic, keeping the lag figures of
// prev where partitions carry over.
func (r *Runner) newTopicRun(s Spec, prev *topicRun) *topicRun {
	t := &topicRun{spec: s, desired: s, parts: make([]*part, s.Partitions), kick: &r.kick, buffered: &r.buffered}
	for i := range t.parts {
		p := newPart(t, int32(i), r.cfg.Observer.Partition(s.Topic, int32(i)))
		if prev != nil && i < len(prev.parts) {
			p.srcHW.Store(prev.parts[i].srcHW.Load())
			p.destEnd.Store(prev.parts[i].destEnd.Load())
		}
		t.parts[i] = p
	}
	return t
}

func (r *Runner) startTopicLocked(t *topicRun) {
	t.ctx, t.cancel = context.WithCancel(r.ctx)
	t.copying.Store(true)
	t.startOffsets = &offsetsOnce{}
	t.writers = newWriterIDs(t.desired.Writers)
	t.startedMu.Lock()
	t.startedParts = nil
	t.startedMu.Unlock()
	n := int32(0)
	for _, p := range t.parts {
		if t.desired.owns(p.id) {
			n++
		}
	}
	if t.desired.Fresh {
		t.startedLeft.Store(n)
	}
	for _, p := range t.parts {
		if t.desired.owns(p.id) {
			r.startPartLocked(t, p, false)
		}
	}
}

// startPartLocked starts the worker of one partition of a copying topic.
// late is set for a partition gained after the topic started: it reports
// its own start. Callers hold r.mu.
func (r *Runner) startPartLocked(t *topicRun, p *part, late bool) {
	ctx, cancel := context.WithCancel(t.ctx)
	done := make(chan struct{})
	p.running, p.cancel, p.done = true, cancel, done
	p.reset()
	p.progressAt.Store(time.Now().UnixNano())
	t.wg.Add(1)
	w := &worker{r: r, t: t, p: p, spec: t.desired, lateStart: late}
	go func() {
		defer t.wg.Done()
		defer close(done)
		w.run(ctx)
	}()
}

// stopParts stops the workers of some partitions, each of a copying
// topic, and waits for them, as stopTopic does for a whole topic: when it
// returns, none of them will produce again.
func (r *Runner) stopParts(ps []*part) {
	if len(ps) == 0 {
		return
	}
	var wait []chan struct{}
	r.mu.Lock()
	for _, p := range ps {
		if !p.running {
			continue
		}
		p.stop()
		if f, ok := r.fetchers[int32(p.fetcherID.Load())]; ok {
			f.remove(p)
		}
		p.fetcherID.Store(-1)
		p.running = false
		p.cancel()
		wait = append(wait, p.done)
	}
	r.mu.Unlock()
	for _, d := range wait {
		<-d
	}
	for _, p := range ps {
		if p.stalled.CompareAndSwap(true, false) {
			r.report(func() { r.cfg.Hooks.Recovered(p.t.spec.Topic, p.id) })
		}
	}
}

// stopTopics stops the workers and fetching of topics and waits for
// them: every topic is told to stop first, then all are waited for. An
// in-flight produce is allowed to finish (it is bounded by the produce
// timeout) so that nothing lands after stopTopics returns.
func (r *Runner) stopTopics(ts []*topicRun) {
	if len(ts) == 0 {
		return
	}
	cancels := make([]context.CancelFunc, 0, len(ts))
	r.mu.Lock()
	for _, t := range ts {
		for _, p := range t.parts {
			p.stop()
			p.running = false
			if f, ok := r.fetchers[int32(p.fetcherID.Load())]; ok {
				f.remove(p)
			}
			p.fetcherID.Store(-1)
		}
		if t.cancel != nil {
			cancels = append(cancels, t.cancel)
		}
		t.copying.Store(false)
	}
	r.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
	for _, t := range ts {
		t.wg.Wait()
	}
	for _, t := range ts {
		r.clearStalls(t)
	}
}

// stopTopic stops one topic as stopTopics does.
func (r *Runner) stopTopic(t *topicRun) { r.stopTopics([]*topicRun{t}) }

// Stop stops copying topics, synchronously and together, as Set would,
// and leaves their lag tracked. A topic that is not copying is left as it
// is. A later Set or Update that wants a stopped topic copying starts it
// again.
func (r *Runner) Stop(topics ...string) {
	var ts []*topicRun
	r.mu.Lock()
	for _, name := range topics {
		if t, ok := r.topics[name]; ok && t.copying.Load() {
			ts = append(ts, t)
		}
	}
	r.mu.Unlock()
	r.stopTopics(ts)
}

// Lags returns the per-partition lag of topic, or nil if the runner does
// not know it.
func (r *Runner) Lags(topic string) []Lag {
	r.mu.Lock()
	t, ok := r.topics[topic]
	r.mu.Unlock()
	if !ok {
		return nil
	}
	out := make([]Lag, len(t.parts))
	for i, p := range t.parts {
		out[i] = p.lag()
	}
	return out
}

// RefreshLags reads the source high watermarks and the mirror end offsets of
// the given topics now, so the next Lags call reports current figures.
func (r *Runner) RefreshLags(ctx context.Context, topics ...string) {
	r.mu.Lock()
	var ts []*topicRun
	for _, name := range topics {
		if t, ok := r.topics[name]; ok {
			ts = append(ts, t)
		}
	}
	r.mu.Unlock()
	r.refreshLags(ctx, ts)
}

// RefreshStale reads, from the clusters, the lag figures of the partitions
// of topics that another instance copies (not owned here) and that were
// read longer than maxAge ago, in one request per broker: a read of many
// mirrors costs one round trip, not one per partition.
func (r *Runner) RefreshStale(ctx context.Context, maxAge time.Duration, topics ...string) {
	cutoff := time.Now().Add(-maxAge).UnixNano()
	r.mu.Lock()
	var ps []*part
	for _, name := range topics {
		t, ok := r.topics[name]
		if !ok {
			continue
		}
		for _, p := range t.parts {
			if !p.running && !t.desired.owns(p.id) && p.lagAt.Load() < cutoff {
				ps = append(ps, p)
			}
		}
	}
	r.mu.Unlock()
	r.refreshParts(ctx, ps)
}

// Close stops everything and waits.
func (r *Runner) Close() {
	r.mu.Lock()
	var ts []*topicRun
	for _, t := range r.topics {
		ts = append(ts, t)
	}
	r.mu.Unlock()
	r.stopTopics(ts)
	r.cancel()
	r.wg.Wait()
	r.sink.close()
	r.mu.Lock()
	fs := r.fetchers
	r.fetchers = map[int32]*fetcher{}
	r.mu.Unlock()
	for _, f := range fs {
		f.close()
	}
}

// fail stops a topic and reports it; only the first failure is reported.
func (r *Runner) fail(t *topicRun, code, msg string) {
	if !t.failed.CompareAndSwap(false, true) {
		return
	}
	r.log.Warn("mirror failed", "topic", t.spec.Topic, "error", code, "detail", msg)
	// Stop in the background: fail is called from the topic's own
	// workers, which stopTopic waits for.
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.stopTopic(t)
		r.cfg.Hooks.Failed(t.spec.Topic, code, msg)
	}()
}

// kickTopic asks for a check of t's metadata now.
func (r *Runner) kickTopic(t *topicRun) {
	t.checkMeta.Store(true)
	r.kickMeta()
}

func (r *Runner) kickMeta() {
	select {
	case r.metaKick <- struct{}{}:
	default:
	}
}

// broadcast is a level-free wake-up: Wait returns a channel that is closed
// by the next Notify.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) Notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

package mirror

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicMeta is what the data path needs to know about a topic on one
// cluster.
type topicMeta struct {
	id      [16]byte
	leaders []int32 // by partition; -1 when leaderless
	err     error   // topic-level error from the broker, e.g. unknown topic
}

// metaCache caches topic metadata of one cluster.
type metaCache struct {
	cl     *kgo.Client
	mu     sync.Mutex
	topics map[string]topicMeta
	// loaded is when each topic was last loaded: a refresh asked for
	// within freshFor of it is answered from the cache, so the workers of
	// a topic starting together ask the cluster once, not once each.
	loaded map[string]time.Time
	// clusterID is the cluster's id as the last answer gave it.
	clusterID string
}

// cluster returns the cluster's id, "" before any answer.
func (m *metaCache) cluster() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clusterID
}

// freshFor is how recent a load satisfies a refresh.
const freshFor = 100 * time.Millisecond

// load asks the cluster for the metadata of topics and caches it.
func (m *metaCache) load(ctx context.Context, topics []string) (map[string]topicMeta, error) {
	req := kmsg.NewPtrMetadataRequest()
	// Never null: a null list asks for every topic of the cluster.
	req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(topics))
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		return nil, err
	}
	out := make(map[string]topicMeta, len(resp.Topics))
	for _, rt := range resp.Topics {
		if rt.Topic == nil {
			continue
		}
		tm := topicMeta{id: rt.TopicID, err: kerr.ErrorForCode(rt.ErrorCode)}
		tm.leaders = make([]int32, len(rt.Partitions))
		for i := range tm.leaders {
			tm.leaders[i] = -1
		}
		for _, p := range rt.Partitions {
			if p.Partition >= 0 && int(p.Partition) < len(tm.leaders) {
				tm.leaders[p.Partition] = p.Leader
			}
		}
		out[*rt.Topic] = tm
	}
	m.mu.Lock()
	if resp.ClusterID != nil {
		m.clusterID = *resp.ClusterID
	}
	if m.topics == nil {
		m.topics = map[string]topicMeta{}
		m.loaded = map[string]time.Time{}
	}
	now := time.Now()
	for t, tm := range out {
		m.topics[t] = tm
		m.loaded[t] = now
	}
	m.mu.Unlock()
	return out, nil
}

// get returns the cached metadata of topic, loading it when absent or when
// refresh is set.
func (m *metaCache) get(ctx context.Context, topic string, refresh bool) (topicMeta, error) {
	m.mu.Lock()
	tm, ok := m.topics[topic]
	fresh := time.Since(m.loaded[topic]) < freshFor
	m.mu.Unlock()
	if ok && tm.err == nil && (!refresh || fresh) {
		return tm, nil
	}
	got, err := m.load(ctx, []string{topic})
	if err != nil {
		return topicMeta{}, err
	}
	tm, ok = got[topic]
	if !ok {
		return topicMeta{}, fmt.Errorf("no metadata for topic %q", topic)
	}
	if tm.err != nil {
		return tm, tm.err
	}
	return tm, nil
}

// leader returns the cached leader of a partition, loading when needed.
func (m *metaCache) leader(ctx context.Context, topic string, p int32, refresh bool) (int32, [16]byte, error) {
	tm, err := m.get(ctx, topic, refresh)
	if err != nil {
		return -1, tm.id, err
	}
	if int(p) >= len(tm.leaders) || tm.leaders[p] < 0 {
		if !refresh {
			return m.leader(ctx, topic, p, true)
		}
		return -1, tm.id, kerr.LeaderNotAvailable
	}
	return tm.leaders[p], tm.id, nil
}

// metadataLoop probes the source. Every MetadataInterval it asks whether
// the source answers (a metadata request without topics, which costs the
// same however many topics the link mirrors). The topics themselves are
// checked every TopicCheckInterval, and at once when they need it (a
// partition without a fetcher, a fetch error, a topic seen missing): the
// check keeps partition leaders current for the fetchers, reports growth,
// and fails topics that were deleted, re-created or shrunk at the source.
func (r *Runner) metadataLoop() {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.MetadataInterval)
	defer tick.Stop()
	missing := map[string]time.Time{}
	var lastFull time.Time
	for {
		full := time.Since(lastFull) >= r.cfg.TopicCheckInterval
		if full {
			lastFull = time.Now()
		}
		r.probeSource(missing, full)
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		case <-r.metaKick:
		}
	}
}

// topicsToCheck returns the topics a probe checks: all of them, or the
// ones that need it now.
func (r *Runner) topicsToCheck(missing map[string]time.Time, full bool) []*topicRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ts []*topicRun
	for name, t := range r.topics {
		if t.failed.Load() {
			continue
		}
		want := full || t.checkMeta.Swap(false)
		if _, ok := missing[name]; ok {
			want = true
		}
		for i := 0; !want && i < len(t.parts); i++ {
			// A copying partition no fetcher has (new, or nudged).
			p := t.parts[i]
			want = p.running && p.fetcherID.Load() < 0
		}
		if want {
			ts = append(ts, t)
		}
	}
	return ts
}

func (r *Runner) probeSource(missing map[string]time.Time, full bool) {
	ts := r.topicsToCheck(missing, full)
	names := make([]string, 0, len(ts))
	for _, t := range ts {
		names = append(names, t.spec.SourceTopic)
	}
	// Until the source has answered once, a probe gives up after a few
	// seconds: a link to a source that cannot be reached says so at once,
	// not after the full probe timeout.
	timeout := r.cfg.ProbeTimeout
	if !r.reached.Load() {
		timeout = min(timeout, 3*time.Second)
	}
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	// No topics: still probe the cluster, so link availability is known.
	metas, err := r.srcMeta.load(ctx, names)
	if r.ctx.Err() != nil {
		return
	}
	if err != nil {
		r.cfg.Observer.Error(OpSourceMetadata, err)
	}
	r.cfg.Hooks.SourceReachable(err)
	if err != nil {
		for _, t := range ts {
			t.checkMeta.Store(true) // not checked: next time
		}
		return
	}
	r.reached.Store(true)
	for _, t := range ts {
		tm, ok := metas[t.spec.SourceTopic]
		if !ok || tm.err != nil {
			if !ok || tm.err == kerr.UnknownTopicOrPartition || tm.err == kerr.UnknownTopicID {
				// Missing for a while, so that a cluster still loading its
				// topics after a restart is not taken for a deletion, and
				// a topic re-created at once is reported as re-created.
				first, seen := missing[t.spec.Topic]
				if !seen {
					missing[t.spec.Topic] = time.Now()
				} else if time.Since(first) >= max(2*r.cfg.MetadataInterval, 2*time.Second) {
					delete(missing, t.spec.Topic)
					r.fail(t, ErrSourceTopicDeleted, fmt.Sprintf("source topic '%s' does not exist any more", t.spec.SourceTopic))
				}
			} else {
				t.checkMeta.Store(true) // another error: look again
			}
			continue
		}
		delete(missing, t.spec.Topic)
		// Fewer partitions first: it is the more specific reason when a
		// topic was re-created smaller (which also changes its id).
		if int32(len(tm.leaders)) < t.spec.Partitions {
			r.fail(t, ErrSourcePartitionsDecrease, fmt.Sprintf("source topic '%s' has %d partitions, the mirror has %d", t.spec.SourceTopic, len(tm.leaders), t.spec.Partitions))
			continue
		}
		var zero [16]byte
		if t.spec.SourceTopicID != zero && tm.id != zero && tm.id != t.spec.SourceTopicID {
			r.fail(t, ErrSourceTopicIDChanged, fmt.Sprintf("source topic '%s' was deleted and re-created (its topic id changed)", t.spec.SourceTopic))
			continue
		}
		if n := int32(len(tm.leaders)); n > t.spec.Partitions {
			r.cfg.Hooks.PartitionsGrew(t.spec.Topic, n)
		}
		r.assignLeaders(t, tm)
	}
	if full {
		// Topics dropped from the runner are not missing any more.
		for name := range missing {
			r.mu.Lock()
			_, ok := r.topics[name]
			r.mu.Unlock()
			if !ok {
				delete(missing, name)
			}
		}
	}
}

// assignLeaders moves each copying partition of t to the fetcher of its
// current source leader.
func (r *Runner) assignLeaders(t *topicRun, tm topicMeta) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !t.copying.Load() {
		return
	}
	for _, p := range t.parts {
		if !p.running {
			continue
		}
		leader := tm.leaders[p.id]
		cur := p.fetcherID.Load()
		if leader < 0 || int32(cur) == leader {
			continue
		}
		if old, ok := r.fetchers[int32(cur)]; ok && cur >= 0 {
			old.remove(p)
		}
		f, ok := r.fetchers[leader]
		if !ok {
			f = newFetcher(r, leader)
			r.fetchers[leader] = f
		}
		p.fetcherID.Store(int64(leader))
		f.add(p)
	}
}

// lagLoop keeps the lag of topics that are not copying current, so a paused
// mirror reports how far the source has moved on.
func (r *Runner) lagLoop() {
	defer r.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// The slices are kept from one tick to the next: a tick allocates
	// nothing for what has not changed.
	var idle, running []*part
	var copying []*topicRun
	for n := 1; ; n++ {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		clear(idle)
		clear(running)
		clear(copying)
		idle, running, copying = idle[:0], running[:0], copying[:0]
		r.mu.Lock()
		for _, t := range r.topics {
			if t.copying.Load() {
				copying = append(copying, t)
			}
			for _, p := range t.parts {
				if p.running {
					running = append(running, p)
				}
			}
			// Partitions of this runner that do not copy (a paused
			// mirror) show how far the source moved on. Those another
			// instance owns are its to watch; here they are read on
			// demand only (RefreshLags).
			for _, p := range t.parts {
				if !p.running && t.desired.owns(p.id) {
					idle = append(idle, p)
				}
			}
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		r.refreshParts(ctx, idle)
		r.checkForeignWrites(ctx, copying, time.Now())
		if n%sourceEndsEvery == 0 {
			// The source's ends of the copying topics too, from the
			// source itself: a partition whose fetches stopped coming
			// back would otherwise keep the high watermark of its last
			// answer and look caught up.
			r.refreshSourceEnds(ctx, copying)
		}
		// The age of what this instance copies or watches; the others'
		// partitions are their owners' to tell.
		running = append(running, idle...)
		r.refreshAges(ctx, running, time.Now())
		cancel()
		r.watchStalls(copying, time.Now())
	}
}

// sourceEndsEvery is how many lag-loop ticks (seconds) go between two
// reads of the copying topics' source end offsets.
const sourceEndsEvery = 10

// refreshSourceEnds raises the source high watermarks of ts to the source's
// end offsets, in one ListOffsets per broker for exactly their copying
// partitions.
func (r *Runner) refreshSourceEnds(ctx context.Context, ts []*topicRun) {
	set := kadm.TopicsSet{}
	var ps []*part
	r.mu.Lock()
	for _, t := range ts {
		for _, p := range t.parts {
			if p.running {
				set.Add(t.spec.SourceTopic, p.id)
				ps = append(ps, p)
			}
		}
	}
	r.mu.Unlock()
	if len(ps) == 0 {
		return
	}
	ends, err := r.srcMeta.listEnds(ctx, set)
	if err != nil {
		return
	}
	for _, p := range ps {
		if o, ok := ends.Lookup(p.t.spec.SourceTopic, p.id); ok && o.Err == nil {
			raise64(&p.srcHW, o.Offset)
		}
	}
}

func raise64(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// refreshLags reads source high watermarks and mirror end offsets of
// every partition of ts.
func (r *Runner) refreshLags(ctx context.Context, ts []*topicRun) {
	var ps []*part
	for _, t := range ts {
		ps = append(ps, t.parts...)
	}
	r.refreshParts(ctx, ps)
}

// refreshParts reads the source high watermarks and mirror end offsets of
// ps, in one ListOffsets per broker and cluster. The end offset of a
// partition whose worker runs here is the worker's to keep.
func (r *Runner) refreshParts(ctx context.Context, ps []*part) {
	if len(ps) == 0 {
		return
	}
	src := kadm.TopicsSet{}
	dst := kadm.TopicsSet{}
	before := make([]int64, len(ps))
	for i, p := range ps {
		src.Add(p.t.spec.SourceTopic, p.id)
		dst.Add(p.t.spec.Topic, p.id)
		// A value read before a worker started must not overwrite the
		// worker's, hence the compare-and-swap below.
		before[i] = p.destEnd.Load()
	}
	now := time.Now().UnixNano()
	// Both clusters at once: a caller waiting for lags waits for one
	// round trip, not two.
	var srcEnds kadm.ListedOffsets
	var srcErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		srcEnds, srcErr = r.srcMeta.listEnds(ctx, src)
	}()
	dstEnds, err := r.destMeta.listEnds(ctx, dst)
	<-done
	if srcErr == nil {
		for _, p := range ps {
			if o, ok := srcEnds.Lookup(p.t.spec.SourceTopic, p.id); ok && o.Err == nil {
				p.srcHW.Store(o.Offset)
			}
		}
	}
	if err == nil {
		r.mu.Lock()
		for i, p := range ps {
			if p.running {
				continue
			}
			if o, ok := dstEnds.Lookup(p.t.spec.Topic, p.id); ok && o.Err == nil {
				p.destEnd.CompareAndSwap(before[i], o.Offset)
				p.lagAt.Store(now)
			}
		}
		r.mu.Unlock()
	}
}

// checkForeignWrites compares the destination end offset of the copying
// partitions whose worker waits with nothing out against the end the
// worker confirmed. A mirror that ends elsewhere was written by someone
// else: the worker is told (part.moved) and reads the mirror back to tell
// a foreign write (which fails the mirror) from a late write of another
// Strait writer (which it adopts). Nothing is failed from here: what the
// runner sees may be a moment old. (A busy partition is checked by its
// own produces: each must land on the source's offset.)
//
// Only the partitions due (see foreignCheckDue) are read, in one
// ListOffsets per broker for exactly them: the check costs what the idle
// partitions number, and less for those idle for long.
func (r *Runner) checkForeignWrites(ctx context.Context, ts []*topicRun, now time.Time) {
	type snap struct {
		p        *part
		end      int64
		produced uint64
	}
	var snaps []snap
	set := kadm.TopicsSet{}
	for _, t := range ts {
		for _, p := range t.parts {
			end := p.confirmedEnd.Load()
			if end < 0 || !foreignCheckDue(now, p.idleSince.Load(), p.checkedAt) {
				continue
			}
			snaps = append(snaps, snap{p, end, p.produced.Load()})
			set.Add(t.spec.Topic, p.id)
		}
	}
	if len(snaps) == 0 {
		return
	}
	ends, err := r.destMeta.listEnds(ctx, set)
	if err != nil {
		return
	}
	for _, s := range snaps {
		p := s.p
		o, ok := ends.Lookup(p.t.spec.Topic, p.id)
		if !ok || o.Err != nil {
			continue
		}
		p.checkedAt = now.UnixNano()
		if p.confirmedEnd.Load() != s.end || p.produced.Load() != s.produced {
			continue
		}
		if o.Offset != s.end {
			p.moved.Store(o.Offset)
			p.wake()
		}
	}
}

// foreignCheckDue reports whether an idle partition's mirror end is due a
// check: every second while it has been idle for under 4 s, then at a
// quarter of how long it has been idle, at most every 30 s. A partition
// idle for two minutes or more is checked twice a minute, one that copies
// now and then at once when it waits again, then every second or so.
func foreignCheckDue(now time.Time, idleSince, checkedAt int64) bool {
	idle := time.Duration(now.UnixNano() - idleSince)
	every := min(max(idle/4, time.Second), 30*time.Second)
	// A check is due a little early rather than a tick late.
	return time.Duration(now.UnixNano()-checkedAt) >= every-100*time.Millisecond || checkedAt < idleSince
}

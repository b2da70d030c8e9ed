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

// metadataLoop probes the source: it keeps partition leaders current for
// the fetchers, reports reachability, and fails topics that were deleted,
// re-created or shrunk at the source.
func (r *Runner) metadataLoop() {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.MetadataInterval)
	defer tick.Stop()
	missing := map[string]time.Time{}
	for {
		r.probeSource(missing)
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		case <-r.metaKick:
		}
	}
}

func (r *Runner) probeSource(missing map[string]time.Time) {
	r.mu.Lock()
	var ts []*topicRun
	for _, t := range r.topics {
		if !t.failed.Load() {
			ts = append(ts, t)
		}
	}
	r.mu.Unlock()
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
	var metas map[string]topicMeta
	var err error
	if len(names) == 0 {
		// Still probe the cluster, so link availability is known.
		_, err = r.srcMeta.load(ctx, nil)
	} else {
		metas, err = r.srcMeta.load(ctx, names)
	}
	if r.ctx.Err() != nil {
		return
	}
	if err != nil {
		r.cfg.Observer.Error(OpSourceMetadata, err)
	}
	r.cfg.Hooks.SourceReachable(err)
	if err != nil {
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
					r.fail(t, ErrSourceTopicDeleted, fmt.Sprintf("source topic '%s' does not exist any more", t.spec.SourceTopic))
				}
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
	for n := 1; ; n++ {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		var idle, running []*part
		var copying []*topicRun
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
		r.checkForeignWrites(ctx, copying)
		if n%sourceEndsEvery == 0 {
			// The source's ends of the copying topics too, from the
			// source itself: a partition whose fetches stopped coming
			// back would otherwise keep the high watermark of its last
			// answer and look caught up.
			r.refreshSourceEnds(ctx, copying)
		}
		// The age of what this instance copies or watches; the others'
		// partitions are their owners' to tell.
		r.refreshAges(ctx, append(idle, running...), time.Now())
		cancel()
		r.watchStalls(copying, time.Now())
	}
}

// sourceEndsEvery is how many lag-loop ticks (seconds) go between two
// reads of the copying topics' source end offsets.
const sourceEndsEvery = 10

// refreshSourceEnds raises the source high watermarks of ts to the source's
// end offsets.
func (r *Runner) refreshSourceEnds(ctx context.Context, ts []*topicRun) {
	if len(ts) == 0 {
		return
	}
	var src []string
	for _, t := range ts {
		src = append(src, t.spec.SourceTopic)
	}
	ends, err := kadm.NewClient(r.cfg.Source).ListEndOffsets(ctx, src...)
	if err != nil {
		return
	}
	for _, t := range ts {
		for _, p := range t.parts {
			if o, ok := ends.Lookup(t.spec.SourceTopic, p.id); ok && o.Err == nil {
				raise64(&p.srcHW, o.Offset)
			}
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
	before := make(map[*part]int64, len(ps))
	for _, p := range ps {
		src.Add(p.t.spec.SourceTopic, p.id)
		dst.Add(p.t.spec.Topic, p.id)
		// A value read before a worker started must not overwrite the
		// worker's, hence the compare-and-swap below.
		before[p] = p.destEnd.Load()
	}
	now := time.Now().UnixNano()
	srcEnds, err := listEnds(ctx, r.cfg.Source, src)
	if err == nil {
		for _, p := range ps {
			if o, ok := srcEnds.Lookup(p.t.spec.SourceTopic, p.id); ok && o.Err == nil {
				p.srcHW.Store(o.Offset)
			}
		}
	}
	dstEnds, err := listEnds(ctx, r.cfg.Dest, dst)
	if err == nil {
		r.mu.Lock()
		for _, p := range ps {
			if p.running {
				continue
			}
			if o, ok := dstEnds.Lookup(p.t.spec.Topic, p.id); ok && o.Err == nil {
				p.destEnd.CompareAndSwap(before[p], o.Offset)
				p.lagAt.Store(now)
			}
		}
		r.mu.Unlock()
	}
}

// listEnds lists the end offsets of exactly the partitions in set.
func listEnds(ctx context.Context, cl *kgo.Client, set kadm.TopicsSet) (kadm.ListedOffsets, error) {
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
				if out[rt.Topic] == nil {
					out[rt.Topic] = map[int32]kadm.ListedOffset{}
				}
				out[rt.Topic][rp.Partition] = kadm.ListedOffset{
					Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset,
					LeaderEpoch: rp.LeaderEpoch, Err: kerr.ErrorForCode(rp.ErrorCode),
				}
			}
		}
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// checkForeignWrites compares the destination end offset of the copying
// partitions whose worker waits with nothing out against the end the
// worker confirmed. A mirror that ends elsewhere was written by someone
// else: the worker is told (part.moved) and reads the mirror back to tell
// a foreign write (which fails the mirror) from a late write of another
// Strait writer (which it adopts). Nothing is failed from here: what the
// runner sees may be a moment old. (A busy partition is checked by its
// own produces: each must land on the source's offset.)
func (r *Runner) checkForeignWrites(ctx context.Context, ts []*topicRun) {
	if len(ts) == 0 {
		return
	}
	type snap struct {
		p        *part
		end      int64
		produced uint64
	}
	var snaps []snap
	var names []string
	for _, t := range ts {
		names = append(names, t.spec.Topic)
		for _, p := range t.parts {
			if end := p.confirmedEnd.Load(); end >= 0 {
				snaps = append(snaps, snap{p, end, p.produced.Load()})
			}
		}
	}
	if len(snaps) == 0 {
		return
	}
	ends, err := kadm.NewClient(r.cfg.Dest).ListEndOffsets(ctx, names...)
	if err != nil {
		return
	}
	for _, s := range snaps {
		p := s.p
		o, ok := ends.Lookup(p.t.spec.Topic, p.id)
		if !ok || o.Err != nil || p.confirmedEnd.Load() != s.end || p.produced.Load() != s.produced {
			continue
		}
		if o.Offset != s.end {
			p.moved.Store(o.Offset)
			p.wake()
		}
	}
}

package mirror

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/batch"
)

// fetcher fetches every mirrored partition led by one source broker with one
// Fetch request at a time and queues the raw batches for the workers.
//
// An idle round costs little: the partitions are kept in order (sorted
// again only when the set changes), the loop reuses its slices, and the
// fetch session sends only what moved; a response, which in a session
// holds only partitions with news, is matched by binary search.
type fetcher struct {
	r      *Runner
	broker int32

	mu    sync.Mutex
	parts map[*part]struct{}
	// order is parts sorted by source topic, then partition; stale while
	// dirty (guarded by mu).
	order []*part
	dirty bool
	// rot rotates which partition comes first in a request: only the
	// first partition is guaranteed a batch larger than its byte limit.
	rot int
	// ready and pos are the loop's: the partitions of this round in
	// order, and rotated for the request.
	ready, pos []fetchPos
	// ids names the topics the broker may answer by id (Fetch v13+): every
	// topic sent in the session; only the loop uses it.
	ids map[[16]byte]string
	// sess is the fetch session (KIP-227) with the broker; only the
	// fetch loop uses it. resetSession asks the loop to open a new one.
	sess         session
	resetSession atomic.Bool

	cancel context.CancelFunc
	done   chan struct{}
}

func newFetcher(r *Runner, broker int32) *fetcher {
	ctx, cancel := context.WithCancel(r.ctx)
	f := &fetcher{r: r, broker: broker, parts: map[*part]struct{}{}, ids: map[[16]byte]string{}, cancel: cancel, done: make(chan struct{})}
	go f.loop(ctx)
	return f
}

func (f *fetcher) add(p *part) {
	f.mu.Lock()
	f.parts[p] = struct{}{}
	f.dirty = true
	f.mu.Unlock()
	f.r.kick.Notify()
}

func (f *fetcher) remove(p *part) {
	f.mu.Lock()
	if _, ok := f.parts[p]; ok {
		delete(f.parts, p)
		f.dirty = true
	}
	f.mu.Unlock()
}

func (f *fetcher) close() {
	f.cancel()
	<-f.done
}

// fetchPos is a partition as it went into a request. held is set when the
// fetcher's session holds the partition, and same when at offset.
type fetchPos struct {
	p          *part
	offset     int64
	gen        uint64
	held, same bool
}

// snapshot lists the partitions that can take more data now, rotated, and
// reports whether some ready partition was left out because its buffer is
// full. The slice is reused by the next snapshot.
func (f *fetcher) snapshot() ([]fetchPos, bool) {
	if f.r.buffered.Load() >= int64(f.r.cfg.BufferBytes) {
		return nil, true // the link's buffer is full: wait for the workers
	}
	f.mu.Lock()
	if f.dirty {
		f.order = f.order[:0]
		for p := range f.parts {
			f.order = append(f.order, p)
		}
		slices.SortFunc(f.order, comparePart)
		f.dirty = false
	}
	ready := f.ready[:0]
	full := false
	for _, p := range f.order {
		p.mu.Lock()
		switch {
		case p.ready && p.queued < f.r.cfg.PartitionBufferBytes:
			held := p.sess.of == &f.sess && p.sess.gen == f.sess.gen
			ready = append(ready, fetchPos{p: p, offset: p.fetchOffset, gen: p.gen,
				held: held, same: held && p.sess.offset == p.fetchOffset})
		case p.ready:
			full = true
		}
		p.mu.Unlock()
	}
	f.mu.Unlock()
	f.ready = ready
	pos := append(f.pos[:0], ready...)
	if n := len(ready); n > 1 {
		f.rot = (f.rot + 1) % n
		pos = append(append(pos[:0], ready[f.rot:]...), ready[:f.rot]...)
	}
	f.pos = pos
	return pos, full
}

// comparePart orders partitions by topic, then partition: requests stay
// stable, which keeps the rotation fair.
func comparePart(a, b *part) int {
	if c := strings.Compare(a.t.spec.SourceTopic, b.t.spec.SourceTopic); c != 0 {
		return c
	}
	return int(a.id) - int(b.id)
}

// lookup finds a partition of this round by binary search in f.ready.
func (f *fetcher) lookup(topic string, partition int32) (fetchPos, bool) {
	i, ok := slices.BinarySearchFunc(f.ready, sessKey{topic, partition}, func(fp fetchPos, k sessKey) int {
		if c := strings.Compare(fp.p.t.spec.SourceTopic, k.topic); c != 0 {
			return c
		}
		return int(fp.p.id) - int(k.part)
	})
	if !ok {
		return fetchPos{}, false
	}
	return f.ready[i], true
}

func (f *fetcher) loop(ctx context.Context) {
	defer close(f.done)
	backoff := newBackoff()
	for ctx.Err() == nil {
		wait := f.r.kick.Wait()
		if f.resetSession.Swap(false) {
			f.sess.reset()
		}
		pos, full := f.snapshot()
		if len(pos) == 0 {
			select {
			case <-ctx.Done():
			case <-wait:
			case <-time.After(time.Second):
			}
			continue
		}
		// While a partition waits for its worker to make room, a fetch of
		// the others must not sit out the broker's full wait: that
		// partition will want data again in a moment.
		maxWait := f.r.cfg.FetchMaxWait
		if full {
			maxWait = min(maxWait, 5*time.Millisecond)
		}
		if err := f.fetchOnce(ctx, pos, maxWait); err != nil {
			if ctx.Err() != nil {
				return
			}
			f.r.log.Debug("fetch failed", "broker", f.broker, "err", err)
			// The leaders of what this broker had may have moved.
			var last *topicRun
			for _, fp := range pos {
				if t := fp.p.t; t != last {
					t.checkMeta.Store(true)
					last = t
				}
			}
			f.r.kickMeta()
			select {
			case <-ctx.Done():
			case <-time.After(backoff.next()):
			}
			continue
		}
		backoff.reset()
	}
}

// fetchOnce sends one Fetch for pos and delivers the results.
func (f *fetcher) fetchOnce(ctx context.Context, pos []fetchPos, maxWait time.Duration) error {
	cfg := f.r.cfg
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(maxWait / time.Millisecond)
	req.MinBytes = 1
	// Never ask for more than the link's buffer has room for.
	req.MaxBytes = int32(min(int64(cfg.FetchMaxBytes), max(int64(cfg.BufferBytes)-f.r.buffered.Load(), 1<<20)))
	req.IsolationLevel = 0 // read_uncommitted: transactions are copied as written
	send, forget := f.sess.plan(pos)
	req.SessionID, req.SessionEpoch = f.sess.id, f.sess.epoch
	byTopic := map[string]int{}
	var forgotten map[string]int
	topicIdx := func(st string, forget bool) (int, error) {
		idx := byTopic
		if forget {
			if forgotten == nil {
				forgotten = map[string]int{}
			}
			idx = forgotten
		}
		if i, ok := idx[st]; ok {
			return i, nil
		}
		tm, err := f.r.srcMeta.get(ctx, st, false)
		if err != nil {
			return 0, err
		}
		// Responses name topics by id (Fetch v13+), also topics of the
		// session that a later request does not send.
		f.ids[tm.id] = st
		if forget {
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.Topic, ft.TopicID = st, tm.id
			req.ForgottenTopics = append(req.ForgottenTopics, ft)
			idx[st] = len(req.ForgottenTopics) - 1
			return idx[st], nil
		}
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = st, tm.id
		req.Topics = append(req.Topics, rt)
		idx[st] = len(req.Topics) - 1
		return idx[st], nil
	}
	for _, fp := range send {
		i, err := topicIdx(fp.p.t.spec.SourceTopic, false)
		if err != nil {
			return err
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = fp.p.id
		rp.FetchOffset = fp.offset
		rp.PartitionMaxBytes = cfg.PartitionMaxBytes
		rp.CurrentLeaderEpoch = -1
		rp.LastFetchedEpoch = -1
		rp.LogStartOffset = -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	for _, k := range forget {
		i, err := topicIdx(k.topic, true)
		if err != nil {
			return err
		}
		req.ForgottenTopics[i].Partitions = append(req.ForgottenTopics[i].Partitions, k.part)
	}
	start := time.Now()
	resp, err := req.RequestWith(ctx, f.r.cfg.Source.Broker(int(f.broker)))
	if ctx.Err() == nil {
		f.r.cfg.Observer.Request(OpFetch, time.Since(start), err)
	}
	if err != nil {
		f.sess.reset()
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		f.r.cfg.Observer.Error(OpFetch, err)
		// FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH and the
		// like: start a new session with a full request.
		f.sess.reset()
		return err
	}
	f.sess.sent(resp.SessionID, send, forget)
	for _, rt := range resp.Topics {
		topic := rt.Topic
		if topic == "" {
			topic = f.ids[rt.TopicID]
		}
		for _, rp := range rt.Partitions {
			fp, ok := f.lookup(topic, rp.Partition)
			if !ok {
				continue
			}
			if rp.ErrorCode != 0 {
				// The session keeps the partition at its old offset; the
				// worker will re-arm it, which resends it.
				f.sess.drop(fp.p)
			}
			f.deliver(fp, &rp)
		}
	}
	return nil
}

// deliver queues one partition's fetch result for its worker.
func (f *fetcher) deliver(fp fetchPos, rp *kmsg.FetchResponseTopicPartition) {
	p := fp.p
	ferr := kerr.ErrorForCode(rp.ErrorCode)
	if ferr == nil {
		p.srcHW.Store(rp.HighWatermark)
	} else {
		f.r.cfg.Observer.Error(OpFetch, ferr)
	}
	var batches []batch.Batch
	var splitErr error
	if ferr == nil && len(rp.RecordBatches) > 0 {
		batches, splitErr = batch.Split(rp.RecordBatches)
		if splitErr != nil {
			ferr = splitErr
		}
	}
	p.mu.Lock()
	if p.gen != fp.gen || !p.ready || p.fetchOffset != fp.offset {
		p.mu.Unlock()
		return // the cursor moved while the request was out
	}
	switch {
	case ferr != nil:
		if isLeaderErr(ferr) {
			p.mu.Unlock()
			f.r.kickTopic(p.t)
			return
		}
		// The worker decides what the error means; no more fetching until
		// it re-arms the partition.
		p.ready = false
		p.events = append(p.events, fetchEvent{gen: p.gen, err: ferr})
	case len(batches) > 0:
		n := 0
		for _, b := range batches {
			n += len(b.Raw)
		}
		if p.queued == 0 {
			// The worker holds nothing: everything before this fetch
			// landed, and its first batch is the oldest not copied.
			if ts, ok := rawTimestamp(batches[0].Raw); ok {
				p.held.set(fp.offset, ts)
			}
		}
		p.queue = append(p.queue, chunk{gen: p.gen, batches: batches, bytes: n})
		p.queued += n
		p.t.buffered.Add(int64(n))
		p.fetchOffset = batches[len(batches)-1].NextOffset()
	default:
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.wake()
}

func isLeaderErr(err error) bool {
	return errors.Is(err, kerr.NotLeaderForPartition) ||
		errors.Is(err, kerr.FencedLeaderEpoch) ||
		errors.Is(err, kerr.UnknownLeaderEpoch) ||
		errors.Is(err, kerr.LeaderNotAvailable) ||
		errors.Is(err, kerr.ReplicaNotAvailable) ||
		errors.Is(err, kerr.KafkaStorageError) ||
		errors.Is(err, kerr.NotCoordinator)
}

// backoff is capped exponential backoff with jitter.
type backoff struct{ n int }

func newBackoff() *backoff { return &backoff{} }

func (b *backoff) reset() { b.n = 0 }

func (b *backoff) next() time.Duration {
	d := 50 * time.Millisecond << min(b.n, 6) // 50ms .. 3.2s
	b.n++
	jitter := time.Duration(time.Now().UnixNano() % int64(d/4+1))
	return d + jitter
}

// sessKey names a partition in a fetch session.
type sessKey struct {
	topic string
	part  int32
}

// session is an incremental fetch session (KIP-227): after a full first
// request, a request carries only the partitions whose fetch offset
// changed, and the ones to forget; the broker answers only partitions with
// something new. With hundreds of partitions most of them idle, requests
// and responses stay small.
//
// Each partition the session holds also carries a mark (part.sess, under
// part.mu) naming the session, its generation and the offset it holds, so
// that an idle round tells what is unchanged without a lookup per
// partition; the map stays the record, and a mark of another session or
// generation is no mark.
type session struct {
	id    int32
	epoch int32
	// gen changes with every new session: marks of an older one are stale.
	gen uint64
	// offsets are the fetch offsets the broker holds for the session, and
	// the partition each is for.
	offsets map[sessKey]sessEntry
}

type sessEntry struct {
	offset int64
	p      *part
}

// sessMark is a partition's mark of the session that holds it.
type sessMark struct {
	of     *session
	gen    uint64
	offset int64
}

// plan splits the partitions to fetch now into the ones to send (new or
// moved) and lists the session's partitions to forget (not wanted now:
// paused, full, or gone to another broker; the broker would otherwise keep
// sending their data).
func (s *session) plan(pos []fetchPos) ([]fetchPos, []sessKey) {
	if s.offsets == nil || s.epoch == 0 {
		s.offsets = map[sessKey]sessEntry{}
		s.epoch = 0
		return pos, nil
	}
	var send []fetchPos
	held := 0 // partitions of pos the session holds
	for _, fp := range pos {
		if fp.held {
			held++
		}
		if !fp.same {
			send = append(send, fp)
		}
	}
	if held == len(s.offsets) {
		return send, nil // nothing to forget: the common, idle case
	}
	want := make(map[sessKey]bool, len(pos))
	for _, fp := range pos {
		want[sessKey{fp.p.t.spec.SourceTopic, fp.p.id}] = true
	}
	var forget []sessKey
	for k := range s.offsets {
		if !want[k] {
			forget = append(forget, k)
		}
	}
	return send, forget
}

// sent records a request the broker accepted.
func (s *session) sent(id int32, send []fetchPos, forget []sessKey) {
	if id == 0 {
		// The broker keeps no session (it has none to give): stay with
		// full requests.
		s.reset()
		return
	}
	s.id = id
	for _, fp := range send {
		k := sessKey{fp.p.t.spec.SourceTopic, fp.p.id}
		if prev, ok := s.offsets[k]; ok && prev.p != fp.p {
			s.unmark(prev.p) // a topic re-created under the same name
		}
		s.offsets[k] = sessEntry{fp.offset, fp.p}
		fp.p.mu.Lock()
		fp.p.sess = sessMark{s, s.gen, fp.offset}
		fp.p.mu.Unlock()
	}
	for _, k := range forget {
		s.unmark(s.offsets[k].p)
		delete(s.offsets, k)
	}
	s.epoch++
	if s.epoch <= 0 {
		s.epoch = 1 // epochs wrap to 1; 0 opens a new session
	}
}

// unmark clears p's mark if it is this session's.
func (s *session) unmark(p *part) {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.sess.of == s && p.sess.gen == s.gen {
		p.sess = sessMark{}
	}
	p.mu.Unlock()
}

// drop makes the next request send the partition again.
func (s *session) drop(p *part) {
	k := sessKey{p.t.spec.SourceTopic, p.id}
	if e, ok := s.offsets[k]; ok {
		s.offsets[k] = sessEntry{-1, e.p}
	}
	p.mu.Lock()
	if p.sess.of == s && p.sess.gen == s.gen {
		p.sess.offset = -1
	}
	p.mu.Unlock()
}

// reset makes the next request open a new session.
func (s *session) reset() {
	s.id, s.epoch, s.offsets = 0, 0, nil
	s.gen++
}

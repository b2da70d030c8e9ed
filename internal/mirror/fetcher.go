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
type fetcher struct {
	r      *Runner
	broker int32

	mu    sync.Mutex
	parts map[*part]struct{}
	// rot rotates which partition comes first in a request: only the
	// first partition is guaranteed a batch larger than its byte limit.
	rot int
	// sess is the fetch session (KIP-227) with the broker; only the
	// fetch loop uses it. resetSession asks the loop to open a new one.
	sess         session
	resetSession atomic.Bool

	cancel context.CancelFunc
	done   chan struct{}
}

func newFetcher(r *Runner, broker int32) *fetcher {
	ctx, cancel := context.WithCancel(r.ctx)
	f := &fetcher{r: r, broker: broker, parts: map[*part]struct{}{}, cancel: cancel, done: make(chan struct{})}
	go f.loop(ctx)
	return f
}

func (f *fetcher) add(p *part) {
	f.mu.Lock()
	f.parts[p] = struct{}{}
	f.mu.Unlock()
	f.r.kick.Notify()
}

func (f *fetcher) remove(p *part) {
	f.mu.Lock()
	delete(f.parts, p)
	f.mu.Unlock()
}

func (f *fetcher) removeTopic(t *topicRun) {
	f.mu.Lock()
	for p := range f.parts {
		if p.t == t {
			delete(f.parts, p)
			p.fetcherID.Store(-1)
		}
	}
	f.mu.Unlock()
}

func (f *fetcher) close() {
	f.cancel()
	<-f.done
}

// fetchPos is a partition as it went into a request.
type fetchPos struct {
	p      *part
	offset int64
	gen    uint64
}

// snapshot lists the partitions that can take more data now, and reports
// whether some ready partition was left out because its buffer is full.
func (f *fetcher) snapshot() ([]fetchPos, bool) {
	if f.r.buffered.Load() >= int64(f.r.cfg.BufferBytes) {
		return nil, true // the link's buffer is full: wait for the workers
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fetchPos, 0, len(f.parts))
	full := false
	for p := range f.parts {
		p.mu.Lock()
		switch {
		case p.ready && p.queued < f.r.cfg.PartitionBufferBytes:
			out = append(out, fetchPos{p: p, offset: p.fetchOffset, gen: p.gen})
		case p.ready:
			full = true
		}
		p.mu.Unlock()
	}
	if len(out) > 1 {
		sortFetchPos(out)
		f.rot = (f.rot + 1) % len(out)
		out = append(out[f.rot:], out[:f.rot]...)
	}
	return out, full
}

// sortFetchPos orders partitions by topic, then partition: requests stay
// stable, which keeps the rotation fair.
func sortFetchPos(ps []fetchPos) {
	slices.SortFunc(ps, func(a, b fetchPos) int {
		if c := strings.Compare(a.p.t.spec.SourceTopic, b.p.t.spec.SourceTopic); c != 0 {
			return c
		}
		return int(a.p.id) - int(b.p.id)
	})
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
	// Responses name topics by id (Fetch v13+), also topics of the session
	// that this request did not send.
	ids := map[[16]byte]string{}
	for _, fp := range pos {
		st := fp.p.t.spec.SourceTopic
		tm, err := f.r.srcMeta.get(ctx, st, false)
		if err != nil {
			return err
		}
		ids[tm.id] = st
	}
	byTopic := map[string]int{}
	topicIdx := func(st string, forgotten bool) (int, error) {
		idx := byTopic
		if forgotten {
			idx = map[string]int{}
			for i, ft := range req.ForgottenTopics {
				idx[ft.Topic] = i
			}
		}
		if i, ok := idx[st]; ok {
			return i, nil
		}
		tm, err := f.r.srcMeta.get(ctx, st, false)
		if err != nil {
			return 0, err
		}
		ids[tm.id] = st
		if forgotten {
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.Topic, ft.TopicID = st, tm.id
			req.ForgottenTopics = append(req.ForgottenTopics, ft)
			return len(req.ForgottenTopics) - 1, nil
		}
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = st, tm.id
		req.Topics = append(req.Topics, rt)
		byTopic[st] = len(req.Topics) - 1
		return len(req.Topics) - 1, nil
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
	index := make(map[sessKey]fetchPos, len(pos))
	for _, fp := range pos {
		index[sessKey{fp.p.t.spec.SourceTopic, fp.p.id}] = fp
	}
	for _, rt := range resp.Topics {
		topic := rt.Topic
		if topic == "" {
			topic = ids[rt.TopicID]
		}
		for _, rp := range rt.Partitions {
			fp, ok := index[sessKey{topic, rp.Partition}]
			if !ok {
				continue
			}
			if rp.ErrorCode != 0 {
				// The session keeps the partition at its old offset; the
				// worker will re-arm it, which resends it.
				f.sess.drop(sessKey{topic, rp.Partition})
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
			f.r.kickMeta()
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
type session struct {
	id    int32
	epoch int32
	// offsets are the fetch offsets the broker holds for the session.
	offsets map[sessKey]int64
}

// plan splits the partitions to fetch now into the ones to send (new or
// moved) and lists the session's partitions to forget (not wanted now:
// paused, full, or gone to another broker; the broker would otherwise keep
// sending their data).
func (s *session) plan(pos []fetchPos) ([]fetchPos, []sessKey) {
	if s.offsets == nil || s.epoch == 0 {
		s.offsets = map[sessKey]int64{}
		s.epoch = 0
		return pos, nil
	}
	want := make(map[sessKey]bool, len(pos))
	var send []fetchPos
	for _, fp := range pos {
		k := sessKey{fp.p.t.spec.SourceTopic, fp.p.id}
		want[k] = true
		if o, ok := s.offsets[k]; !ok || o != fp.offset {
			send = append(send, fp)
		}
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
		s.offsets[sessKey{fp.p.t.spec.SourceTopic, fp.p.id}] = fp.offset
	}
	for _, k := range forget {
		delete(s.offsets, k)
	}
	s.epoch++
	if s.epoch <= 0 {
		s.epoch = 1 // epochs wrap to 1; 0 opens a new session
	}
}

// drop makes the next request send the partition again.
func (s *session) drop(k sessKey) { s.offsets[k] = -1 }

// reset makes the next request open a new session.
func (s *session) reset() {
	s.id, s.epoch, s.offsets = 0, 0, nil
}

package mirror

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strait-dev/strait/internal/batch"
	"github.com/strait-dev/strait/internal/logdedup"
)

// worker copies one partition. It alone produces to the mirror partition.
type worker struct {
	r *Runner
	t *topicRun
	p *part
	// spec is the topic's Spec when the worker started: its Fresh,
	// StartOffset and Align fields are the worker's to read.
	spec Spec

	// prod is the partition's writer (see fence.go) with the sequence of
	// its next batch.
	prod batch.Producer
	// known is set when the broker is known to hold the writer's state
	// on the partition (its last batch is in the log): then a batch out
	// of order is refused, never taken as a first batch. bumpEpoch asks
	// the next setup for a new epoch (see noteRefused).
	known, bumpEpoch bool
	// setups counts the worker's setups: only the first shares the
	// topic's offsets lookup.
	setups int
	// txns holds the replaying producers of source transactions, by source
	// producer id.
	txns map[int64]*txnProducer
	// destEnd is the next offset to produce: the mirror's log end offset
	// once the batches in window have landed.
	destEnd int64
	// confirmed is the offset up to which the mirror is known to hold
	// what the source holds: read at setup, moved by every batch that
	// landed where it belongs.
	confirmed int64
	// destStart is the mirror's log start offset as read at setup.
	destStart int64
	// window holds the batches out (see pipe), oldest first.
	window   []*inFlight
	align    int64 // pending alignment target, -1 for none
	startedC bool  // Started was counted for this partition
	// fails keeps the worker's restarts from flooding the log: a
	// warning per cause, and a line when it copies again.
	fails logdedup.Cause
	// lateStart is set for a partition that joined a copying topic: it
	// reports its own start rather than counting towards the topic's.
	lateStart bool
}

// errFatal wraps errors that fail the whole topic.
type errFatal struct{ code, msg string }

func (e *errFatal) Error() string { return e.code + ": " + e.msg }

func fatal(code, format string, args ...any) error {
	return &errFatal{code: code, msg: fmt.Sprintf(format, args...)}
}

func (w *worker) run(ctx context.Context) {
	w.align = -1
	if a, ok := w.spec.Align[w.p.id]; ok {
		w.align = a
	}
	bo := newBackoff()
	for ctx.Err() == nil {
		err := w.setup(ctx)
		if err == nil {
			bo.reset()
			w.fails.Recover(w.r.log, "mirror partition copies again", "topic", w.t.spec.Topic, "partition", w.p.id)
			err = w.copyLoop(ctx)
		}
		w.p.confirmedEnd.Store(-1)
		if ctx.Err() != nil {
			return
		}
		var fe *errFatal
		if errors.As(err, &fe) {
			w.r.fail(w.t, fe.code, fe.msg)
			return
		}
		w.p.disarm()
		w.p.lastErr.Store(err.Error())
		w.p.counters.Restarts.Add(1)
		// A new topic's metadata takes a moment to reach every broker;
		// only a partition that keeps failing is worth a warning, once
		// per cause.
		if bo.n >= 3 {
			w.fails.Fail(w.r.log, "mirror partition restarting", err, "topic", w.t.spec.Topic, "partition", w.p.id)
		} else {
			w.fails.Quiet(w.r.log, "mirror partition restarting", err, "topic", w.t.spec.Topic, "partition", w.p.id)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(bo.next()):
		}
	}
}

// setup reads the mirror's end and its writer's state (see fence.go),
// finishes or starts an alignment, and arms the fetcher at the mirror's
// end.
func (w *worker) setup(ctx context.Context) error {
	// Open transactions are found again on the destination (resumeTxn).
	w.txns = map[int64]*txnProducer{}
	w.p.confirmedEnd.Store(-1)
	// Fresh metadata: the topic may have been deleted and re-created
	// under the same name since it was cached. Read first, it also
	// refreshes the client's own cache, which the offsets lookups below
	// use: a mirror topic created a moment ago may still be cached as
	// missing there (asking whether it existed, before creating it, put
	// it there), which failed every lookup for half a second.
	if _, err := w.r.destMeta.get(ctx, w.t.spec.Topic, true); err != nil {
		return err
	}
	if _, err := w.r.srcMeta.get(ctx, w.t.spec.SourceTopic, true); err != nil {
		return err
	}
	var start, end int64
	var err error
	if w.setups == 0 {
		start, end, err = w.firstDestOffsets(ctx)
	} else {
		start, end, err = w.destOffsets(ctx)
	}
	w.setups++
	if err != nil {
		return err
	}
	if id := w.r.srcMeta.cluster(); id != "" && id == w.r.cfg.DestClusterID {
		// A link created without validation, to a made-up source cluster
		// id, whose bootstrap servers are the destination's.
		return fatal(ErrIllegalState, "the link's source is the destination cluster itself (cluster id %s): a link to itself would copy topics into themselves", id)
	}
	// The end the copy continues from is the one read together with the
	// writer's last batch, not the listed one: a late batch of another
	// writer may have landed in between.
	if end, err = w.resumeWriter(ctx, start, end); err != nil {
		return err
	}
	w.destStart, w.destEnd, w.confirmed = start, end, end
	w.p.destEnd.Store(end)
	if err := w.verifyTail(ctx, start, end); err != nil {
		return err
	}
	if w.spec.Fresh && end == 0 && w.align < 0 {
		target, err := w.startTarget(ctx)
		if err != nil {
			return err
		}
		if target > 0 {
			if err := w.beginAlign(ctx, target); err != nil {
				return err
			}
		}
	}
	if w.align >= 0 {
		if err := w.continueAlign(ctx, start); err != nil {
			return err
		}
	} else {
		w.p.arm(w.destEnd)
	}
	w.markStarted()
	return nil
}

func (w *worker) markStarted() {
	if w.startedC || !w.spec.Fresh {
		return
	}
	w.startedC = true
	if w.lateStart {
		w.r.cfg.Hooks.Started(w.t.spec.Topic, []int32{w.p.id})
		return
	}
	w.t.startedMu.Lock()
	w.t.startedParts = append(w.t.startedParts, w.p.id)
	done := w.t.startedLeft.Add(-1) == 0
	var ps []int32
	if done {
		ps = slices.Clone(w.t.startedParts)
		slices.Sort(ps)
	}
	w.t.startedMu.Unlock()
	if done {
		w.r.cfg.Hooks.Started(w.t.spec.Topic, ps)
	}
}

// copyLoop handles queued batches and fetch errors until ctx ends or an
// error needs a fresh setup.
func (w *worker) copyLoop(ctx context.Context) error {
	for {
		// Nothing is out: the mirror must end where the worker's last
		// batch ended (the runner checks, see checkForeignWrites).
		w.confirmed = w.destEnd
		w.p.idleSince.Store(time.Now().UnixNano())
		w.p.confirmedEnd.Store(w.destEnd)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.p.notify:
		}
		if end := w.p.moved.Swap(-1); end >= 0 && end != w.destEnd {
			w.p.confirmedEnd.Store(-1)
			return w.suspect(ctx, (&destMoved{end: end}).Error())
		}
		chunks, events := w.p.take()
		w.p.confirmedEnd.Store(-1)
		if err := w.handle(ctx, chunks, events); err != nil {
			return err
		}
	}
}

// handle works through what the worker took from its queue. Every chunk it
// took is given back to the buffer accounting, copied or not.
func (w *worker) handle(ctx context.Context, chunks []chunk, events []fetchEvent) (err error) {
	defer func() {
		// Whatever happened, nothing is left in flight: a stop returns
		// only after the batches out have landed or failed.
		if ferr := w.flush(ctx); err == nil {
			err = ferr
		}
		for _, c := range chunks {
			w.p.consumed(c.bytes)
		}
	}()
	for _, ev := range events {
		if err := w.handleFetchError(ctx, ev.err); err != nil {
			return err
		}
	}
	for _, c := range chunks {
		if err := w.copyChunk(ctx, c); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// copyChunk produces the batches of one fetch, in order.
func (w *worker) copyChunk(ctx context.Context, c chunk) error {
	for i := 0; i < len(c.batches); i++ {
		b := &c.batches[i]
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if b.NextOffset() <= w.destEnd {
			continue // already on the mirror (fetch returns whole batches)
		}
		if err := checkCopyable(b); err != nil {
			return err
		}
		if b.BaseOffset < w.destEnd {
			return fatal(ErrIllegalState, "partition %d: source batch %d-%d straddles the mirror end %d", w.p.id, b.BaseOffset, b.LastOffset(), w.destEnd)
		}
		if !w.pipelined(c.batches[i:]) {
			// Transactions, markers, filler and alignment need what is
			// out to have landed.
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
		if b.BaseOffset > w.destEnd {
			// Offsets the source no longer has: compaction removed whole
			// batches, or an alignment is under way.
			if !w.spec.Compacted && (w.align < 0 || b.BaseOffset > w.align) {
				return fatal(ErrIllegalState, "partition %d: source offsets jump from %d to %d in a topic that is not compacted", w.p.id, w.destEnd, b.BaseOffset)
			}
			if err := w.pad(ctx, b.BaseOffset, b.BaseTimestamp); err != nil {
				return err
			}
		}
		if b.Control() {
			if err := w.copyControl(ctx, b); err != nil {
				return err
			}
			continue
		}
		if n := mergeRun(c.batches[i:]); n > 1 {
			if err := w.copyMerged(ctx, c.batches[i:i+n]); err != nil {
				return err
			}
			i += n - 1
		} else {
			raw, records, err := reencode(b)
			if err != nil {
				return err
			}
			// A batch copied as it is keeps its CRC (carried through the
			// header change); a re-encoded one was checked and has its own.
			carry := &raw[0] == &b.Raw[0]
			if b.Transactional() {
				err = w.copyTxnBatch(ctx, raw, b, records, carry)
			} else {
				err = w.pipe(ctx, raw, b.BaseOffset, records, carry)
			}
			if err != nil {
				return err
			}
		}
		if w.align >= 0 && w.destEnd >= w.align {
			if err := w.flush(ctx); err != nil {
				return err
			}
			if err := w.finishAlign(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// Merging small batches (see batch.Merge): a batch smaller than
// mergeBelow is merged with the small batches that follow it, up to
// mergeUpTo bytes. Larger batches are copied as they are.
const (
	mergeBelow = 16 << 10
	mergeUpTo  = 512 << 10
)

// mergeRun returns how many batches from the start of bs can be merged
// into one: small, plain, contiguous batches of one codec.
func mergeRun(bs []batch.Batch) int {
	first := &bs[0]
	if len(first.Raw) >= mergeBelow || !batch.Mergeable(first) || !batch.CheckCRC(first.Raw) {
		return 1
	}
	size := len(first.Raw)
	n := 1
	for n < len(bs) {
		b := &bs[n]
		if len(b.Raw) >= mergeBelow || size+len(b.Raw) > mergeUpTo || !batch.Mergeable(b) ||
			b.Codec() != first.Codec() || b.BaseOffset != bs[n-1].NextOffset() || !batch.CheckCRC(b.Raw) {
			break
		}
		size += len(b.Raw)
		n++
	}
	return n
}

// copyMerged produces a run of small batches as one batch.
func (w *worker) copyMerged(ctx context.Context, bs []batch.Batch) error {
	raw, records, err := batch.Merge(bs)
	if errors.Is(err, batch.ErrTooLarge) {
		// Small on the wire, huge decompressed: merging is only an
		// optimisation, so the batches go as they are and the
		// destination broker judges them.
		for i := range bs {
			b := &bs[i]
			if err := w.pipe(ctx, b.Raw, b.BaseOffset, b.RecordCount, true); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return fatal(ErrUnsupportedFormat, "partition %d: %v", w.p.id, err)
	}
	return w.pipe(ctx, raw, bs[0].BaseOffset, records, false)
}

// pipelined reports whether the batch at the head of bs is copied by pipe,
// behind the batches out: plain data contiguous with the copy, with no
// alignment under way.
func (w *worker) pipelined(bs []batch.Batch) bool {
	b := &bs[0]
	return w.align < 0 && b.BaseOffset == w.destEnd && !b.Control() && !b.Transactional()
}

// checkCopyable refuses batches that cannot be copied faithfully. The CRC
// of a batch copied as it is is checked by the destination broker (see
// batch.RewriteCarryCRC); batches that are re-encoded are checked here,
// before their records are read.
func checkCopyable(b *batch.Batch) error {
	if b.Magic != 2 {
		return fatal(ErrUnsupportedFormat, "source batch at offset %d has message format v%d; only v2 is supported", b.BaseOffset, b.Magic)
	}
	return nil
}

func checkCRC(b *batch.Batch) error {
	if !batch.CheckCRC(b.Raw) {
		return fatal(ErrIllegalState, "source batch at offset %d fails its CRC", b.BaseOffset)
	}
	return nil
}

// reencode returns the bytes to produce for a source batch and how many
// records they hold: the batch itself, or, for a compacted batch (offset
// gaps inside) or a LogAppendTime one, a re-encoded copy with the same
// offsets, records, timestamps and codec.
func reencode(b *batch.Batch) ([]byte, int32, error) {
	raw, n := b.Raw, b.RecordCount
	if b.Dense() && !b.LogAppendTime() {
		return raw, n, nil
	}
	if err := checkCRC(b); err != nil {
		return nil, 0, err
	}
	if !b.Dense() {
		var err error
		if raw, _, err = batch.Densify(b); err != nil {
			return nil, 0, fatal(ErrUnsupportedFormat, "%v", err)
		}
		n = b.LastOffsetDelta + 1
	}
	if b.LogAppendTime() {
		bs, err := batch.Split(raw)
		if err != nil || len(bs) != 1 {
			return nil, 0, fatal(ErrUnsupportedFormat, "re-encoded batch at %d: %v", b.BaseOffset, err)
		}
		if raw, err = batch.StampLogAppendTime(&bs[0]); err != nil {
			return nil, 0, fatal(ErrUnsupportedFormat, "%v", err)
		}
	}
	return raw, n, nil
}

// handleFetchError reacts to a partition error from the source.
func (w *worker) handleFetchError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, kerr.OffsetOutOfRange):
		return w.outOfRange(ctx)
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		w.r.kickTopic(w.t)
		return fmt.Errorf("source partition: %w", err)
	default:
		return fmt.Errorf("fetch source partition: %w", err)
	}
}

package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/batch"
)

// worker copies one partition. It alone produces to the mirror partition.
type worker struct {
	r *Runner
	t *topicRun
	p *part
	// spec is the topic's Spec when the worker started: its Fresh,
	// StartOffset and Align fields are the worker's to read.
	spec Spec

	prod batch.Producer
	// setups counts the worker's setups: only the first shares the
	// topic's offsets lookup.
	setups int
	// txns holds the replaying producers of source transactions, by source
	// producer id.
	txns map[int64]*txnProducer
	// destEnd is the next offset to produce: the mirror's log end offset
	// once the batches in window have landed.
	destEnd int64
	// window holds the batches out (see pipe), oldest first.
	window   []*inFlight
	align    int64 // pending alignment target, -1 for none
	startedC bool  // Started was counted for this partition
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
			err = w.copyLoop(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		var fe *errFatal
		if errors.As(err, &fe) {
			w.r.fail(w.t, fe.code, fe.msg)
			return
		}
		w.p.disarm()
		// A new topic's metadata takes a moment to reach every broker;
		// only a partition that keeps failing is worth a warning.
		level := slog.LevelDebug
		if bo.n >= 3 {
			level = slog.LevelWarn
		}
		w.r.log.Log(ctx, level, "mirror partition restarting", "topic", w.t.spec.Topic, "partition", w.p.id, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(bo.next()):
		}
	}
}

// setup reads the mirror's end, gets a producer id, finishes or starts an
// alignment, and arms the fetcher at the mirror's end.
func (w *worker) setup(ctx context.Context) error {
	// Open transactions are found again on the destination (resumeTxn).
	w.txns = map[int64]*txnProducer{}
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
	w.destEnd = end
	w.p.destEnd.Store(end)
	// Fresh metadata: the topic may have been deleted and re-created
	// under the same name since it was cached.
	if _, err := w.r.destMeta.get(ctx, w.t.spec.Topic, true); err != nil {
		return err
	}
	if _, err := w.r.srcMeta.get(ctx, w.t.spec.SourceTopic, true); err != nil {
		return err
	}
	if err := w.verifyTail(ctx, start, end); err != nil {
		return err
	}
	if err := w.newProducer(ctx); err != nil {
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
	if w.t.startedLeft.Add(-1) == 0 {
		w.r.cfg.Hooks.Started(w.t.spec.Topic)
	}
}

// copyLoop handles queued batches and fetch errors until ctx ends or an
// error needs a fresh setup.
func (w *worker) copyLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.p.notify:
		}
		chunks, events := w.p.take()
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
		w.r.kickMeta()
		return fmt.Errorf("source partition: %w", err)
	default:
		return fmt.Errorf("fetch source partition: %w", err)
	}
}

// outOfRange handles a fetch cursor the source does not have: the source
// log start moved past the mirror's end (retention or DeleteRecords), or
// the source lost data the mirror has.
func (w *worker) outOfRange(ctx context.Context) error {
	// A source topic deleted and re-created under the same name also
	// answers out of range: say so rather than call it a truncation.
	tm, err := w.r.srcMeta.get(ctx, w.t.spec.SourceTopic, true)
	if err != nil {
		return err
	}
	var zero [16]byte
	switch {
	case int32(len(tm.leaders)) < w.t.spec.Partitions:
		return fatal(ErrSourcePartitionsDecrease, "source topic '%s' has %d partitions, the mirror has %d", w.t.spec.SourceTopic, len(tm.leaders), w.t.spec.Partitions)
	case w.t.spec.SourceTopicID != zero && tm.id != w.t.spec.SourceTopicID:
		return fatal(ErrSourceTopicIDChanged, "source topic '%s' was deleted and re-created (its topic id changed)", w.t.spec.SourceTopic)
	}
	srcStart, srcEnd, err := w.sourceOffsets(ctx)
	if err != nil {
		return err
	}
	switch {
	case w.destEnd > srcEnd:
		return fatal(ErrUnexpectedTruncation, "partition %d: the mirror ends at %d but the source ends at %d: the source lost records (an unclean leader election?) or something other than Strait wrote to the mirror topic", w.p.id, w.destEnd, srcEnd)
	case w.destEnd < srcStart:
		w.r.log.Warn("the source deleted records before they were copied; aligning the mirror to the source log start", "topic", w.t.spec.Topic, "partition", w.p.id, "from", w.destEnd, "to", srcStart)
		if w.destEnd > 0 || !w.spec.Fresh {
			w.r.cfg.Hooks.Skipped(w.t.spec.Topic, w.p.id, w.destEnd, srcStart)
		}
		return w.beginAlign(ctx, srcStart)
	default:
		w.p.arm(w.destEnd) // the source moved; try again
		return nil
	}
}

// startTarget resolves mirror.start.offset.spec for a fresh partition.
func (w *worker) startTarget(ctx context.Context) (int64, error) {
	st := w.t.spec.SourceTopic
	ts := int64(-2) // earliest
	switch spec := w.spec.StartOffset; spec {
	case "", "earliest":
	case "latest":
		ts = -1
	default:
		t, err := time.Parse(time.RFC3339Nano, spec)
		if err != nil {
			return 0, fatal(ErrIllegalState, "bad mirror.start.offset.spec %q", spec)
		}
		ts = t.UnixMilli()
	}
	o, err := listOffset(ctx, w.r.cfg.Source, st, w.p.id, ts)
	if err != nil {
		return 0, err
	}
	if o < 0 {
		// No record at or after the timestamp: start at the end.
		return listOffset(ctx, w.r.cfg.Source, st, w.p.id, -1)
	}
	return o, nil
}

// beginAlign saves target, then pads the mirror up to the base offset of
// the source batch holding target, and arms the fetcher there.
func (w *worker) beginAlign(ctx context.Context, target int64) error {
	if err := w.r.cfg.Hooks.SaveAlign(ctx, w.t.spec.Topic, w.p.id, target); err != nil {
		return err
	}
	w.align = target
	return w.continueAlign(ctx, -1)
}

// continueAlign resumes a saved alignment. destStart is the mirror's log
// start offset if known, -1 otherwise.
func (w *worker) continueAlign(ctx context.Context, destStart int64) error {
	if w.destEnd >= w.align {
		var err error
		if destStart >= w.align {
			err = w.clearAlign(ctx)
		} else {
			err = w.finishAlign(ctx)
		}
		if err == nil {
			w.p.arm(w.destEnd)
		}
		return err
	}
	base, ts, err := w.batchBaseAt(ctx, w.align)
	if err != nil {
		return err
	}
	if base > w.destEnd {
		if err := w.pad(ctx, base, ts); err != nil {
			return err
		}
	}
	if w.destEnd >= w.align {
		// The padding reached the target (a batch starts right there,
		// or the source is empty above it): copy on from the end.
		if err := w.finishAlign(ctx); err != nil {
			return err
		}
		w.p.arm(w.destEnd)
		return nil
	}
	// Fetch at the target, not at the mirror's end: the source has nothing
	// below its log start. The batch holding the target starts at the
	// mirror's end now.
	w.p.arm(w.align)
	return nil
}

// finishAlign removes the filler below the alignment target.
func (w *worker) finishAlign(ctx context.Context) error {
	adm := kadm.NewClient(w.r.cfg.Dest)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: w.t.spec.Topic, Partition: w.p.id, At: w.align})
	resp, err := adm.DeleteRecords(ctx, offs)
	if err == nil {
		err = resp.Error()
	}
	if errors.Is(err, kerr.PolicyViolation) && w.spec.Compacted {
		// DeleteRecords needs cleanup.policy to include delete: add it
		// for the call.
		err = withDeletePolicy(ctx, adm, w.t.spec.Topic, func() error {
			resp, err := adm.DeleteRecords(ctx, offs)
			if err == nil {
				err = resp.Error()
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("delete filler below %d: %w", w.align, err)
	}
	return w.clearAlign(ctx)
}

// withDeletePolicy runs fn with cleanup.policy=compact,delete on a
// compacted topic, and sets compact back after.
func withDeletePolicy(ctx context.Context, adm *kadm.Client, topic string, fn func() error) error {
	set := func(v string) error {
		resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr(v)}}, topic)
		if err == nil {
			_, err = resp.On(topic, nil)
		}
		return err
	}
	if err := set("compact,delete"); err != nil {
		return err
	}
	ferr := fn()
	if err := set("compact"); err != nil && ferr == nil {
		ferr = err
	}
	return ferr
}

func (w *worker) clearAlign(ctx context.Context) error {
	if err := w.r.cfg.Hooks.SaveAlign(ctx, w.t.spec.Topic, w.p.id, -1); err != nil {
		return err
	}
	w.align = -1
	return nil
}

// batchBaseAt finds the base offset and timestamp of the source batch that
// holds offset o; with no batch there (o is the source end), o itself.
func (w *worker) batchBaseAt(ctx context.Context, o int64) (int64, int64, error) {
	b, ok, err := fetchBatchAt(ctx, w.r.cfg.Source, &w.r.srcMeta, w.t.spec.SourceTopic, w.p.id, o)
	if err != nil {
		return 0, 0, fmt.Errorf("fetch source at %d: %w", o, err)
	}
	if !ok {
		return o, time.Now().UnixMilli(), nil
	}
	return min(b.BaseOffset, o), b.BaseTimestamp, nil
}

// fetchBatchAt fetches the first complete batch at or around offset o of a
// partition, ok false when there is none.
func fetchBatchAt(ctx context.Context, cl *kgo.Client, meta *metaCache, topic string, partition int32, o int64) (batch.Batch, bool, error) {
	leader, id, err := meta.leader(ctx, topic, partition, false)
	if err != nil {
		return batch.Batch{}, false, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, o, 1<<20
	rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		return batch.Batch{}, false, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition != partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				if isLeaderErr(err) {
					meta.leader(ctx, topic, partition, true) //nolint:errcheck // refresh only
				}
				return batch.Batch{}, false, err
			}
			bs, err := batch.Split(p.RecordBatches)
			if err != nil || len(bs) == 0 {
				return batch.Batch{}, false, err
			}
			return bs[0], true, nil
		}
	}
	return batch.Batch{}, false, errors.New("fetch response without the partition")
}

// verifyTail checks, when a worker starts on a mirror that already has
// data, that the mirror's last batch holds the same records as the source
// batch at the same offsets. The mirror's end is the copy cursor, so a
// record appended by someone else while no worker was running would
// otherwise shift the copy silently.
func (w *worker) verifyTail(ctx context.Context, start, end int64) error {
	if end <= start || w.align >= 0 {
		return nil // empty, or the tail is alignment filler
	}
	d, ok, err := fetchBatchAt(ctx, w.r.cfg.Dest, &w.r.destMeta, w.t.spec.Topic, w.p.id, end-1)
	if err != nil || !ok {
		return err
	}
	s, ok, err := fetchBatchAt(ctx, w.r.cfg.Source, &w.r.srcMeta, w.t.spec.SourceTopic, w.p.id, end-1)
	if errors.Is(err, kerr.OffsetOutOfRange) || (err == nil && !ok) {
		return nil // the source no longer has (or not yet) those offsets
	}
	if err != nil {
		return err
	}
	// Batch boundaries may differ (small batches are merged): compare the
	// last record itself.
	sr, serr := recordAt(&s, end-1)
	if serr != nil {
		return nil // compacted away at the source since: nothing to compare
	}
	dr, derr := recordAt(&d, end-1)
	if derr != nil || !sameRecord(dr, sr) {
		return fatal(ErrIllegalState, "partition %d: the mirror's last record (offset %d) is not the source's; something other than Strait wrote to the mirror topic", w.p.id, end-1)
	}
	return nil
}

// absRecord is a record with its absolute offset and timestamp.
type absRecord struct {
	offset, ts int64
	r          batch.Record
	// control marks a transaction marker: the destination writes its own,
	// so only its place and kind can be compared.
	control bool
}

// recordAt finds the record at offset o in b.
func recordAt(b *batch.Batch, o int64) (absRecord, error) {
	if b.Control() {
		return absRecord{offset: o, control: true}, nil
	}
	recs, err := b.Records()
	if err != nil {
		return absRecord{}, err
	}
	for _, r := range recs {
		if b.BaseOffset+int64(r.OffsetDelta) == o {
			ts := b.BaseTimestamp + r.TimestampDelta
			if b.LogAppendTime() {
				ts = b.MaxTimestamp
			}
			return absRecord{offset: o, ts: ts, r: r}, nil
		}
	}
	return absRecord{}, fmt.Errorf("no record at %d", o)
}

func sameRecord(a, b absRecord) bool {
	if a.control || b.control {
		return a.control == b.control && a.offset == b.offset
	}
	return a.offset == b.offset && a.ts == b.ts &&
		bytes.Equal(a.r.Key, b.r.Key) && (a.r.Key == nil) == (b.r.Key == nil) &&
		bytes.Equal(a.r.Value, b.r.Value) && (a.r.Value == nil) == (b.r.Value == nil) &&
		bytes.Equal(a.r.Headers, b.r.Headers)
}

// pad produces filler records until the mirror ends at upTo: null
// records, or on a compacted mirror (which refuses null keys) tombstones
// under the filler key.
func (w *worker) pad(ctx context.Context, upTo, ts int64) error {
	for w.destEnd < upTo {
		var raw []byte
		var n int64
		if w.spec.Compacted {
			n = min(upTo-w.destEnd, batch.MaxKeyedFillerRecords)
			raw = batch.FillerKeyed(int32(n), ts)
		} else {
			n = min(upTo-w.destEnd, batch.MaxFillerRecords)
			raw = batch.Filler(int32(n), ts)
		}
		if err := w.produce(ctx, raw, w.destEnd, int32(n)); err != nil {
			return err
		}
	}
	return nil
}

// destOffsets returns the mirror partition's log start and end offsets.
func (w *worker) destOffsets(ctx context.Context) (int64, int64, error) {
	return listOffsets(ctx, w.r.cfg.Dest, w.t.spec.Topic, w.p.id)
}

// firstDestOffsets is destOffsets for a worker's first setup in a topic
// run: the workers of the topic, starting together, share one lookup of all
// the topic's partitions. That is safe only then: no worker of the run has
// produced yet, and only a partition's own worker moves its end.
func (w *worker) firstDestOffsets(ctx context.Context) (int64, int64, error) {
	return w.t.startOffsets.get(ctx, w.p.id, func(ctx context.Context) (map[int32][2]int64, error) {
		adm := kadm.NewClient(w.r.cfg.Dest)
		starts, err := adm.ListStartOffsets(ctx, w.t.spec.Topic)
		if err != nil {
			return nil, err
		}
		ends, err := adm.ListEndOffsets(ctx, w.t.spec.Topic)
		if err != nil {
			return nil, err
		}
		out := map[int32][2]int64{}
		var ferr error
		for i, listed := range []kadm.ListedOffsets{starts, ends} {
			listed.Each(func(o kadm.ListedOffset) {
				if o.Err != nil {
					ferr = o.Err
				}
				v := out[o.Partition]
				v[i] = o.Offset
				out[o.Partition] = v
			})
		}
		return out, ferr
	})
}

// offsetsOnce runs one offsets lookup for all the workers that ask for it
// together; a failed lookup is not kept.
type offsetsOnce struct {
	mu   sync.Mutex
	done chan struct{}
	got  map[int32][2]int64
	err  error
}

func (o *offsetsOnce) get(ctx context.Context, p int32, fetch func(context.Context) (map[int32][2]int64, error)) (int64, int64, error) {
	o.mu.Lock()
	if o.done == nil {
		o.done = make(chan struct{})
		o.mu.Unlock()
		got, err := fetch(ctx)
		o.mu.Lock()
		o.got, o.err = got, err
		close(o.done)
		if err != nil {
			o.done = nil // the next caller tries again
		}
		o.mu.Unlock()
	} else {
		done := o.done
		o.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return 0, 0, o.err
	}
	v, ok := o.got[p]
	if !ok {
		return 0, 0, fmt.Errorf("no offsets for partition %d", p)
	}
	return v[0], v[1], nil
}

func (w *worker) sourceOffsets(ctx context.Context) (int64, int64, error) {
	return listOffsets(ctx, w.r.cfg.Source, w.t.spec.SourceTopic, w.p.id)
}

// listOffsets returns one partition's log start and end offsets.
func listOffsets(ctx context.Context, cl *kgo.Client, topic string, p int32) (int64, int64, error) {
	start, err := listOffset(ctx, cl, topic, p, -2)
	if err != nil {
		return 0, 0, err
	}
	end, err := listOffset(ctx, cl, topic, p, -1)
	return start, end, err
}

// listOffset asks the partition's leader for one offset: ts -2 is the log
// start, -1 the end, else the first offset at or after the timestamp (-1
// when there is none). Only the one partition is asked about: a worker
// per partition asking for the whole topic costs partitions squared.
func listOffset(ctx context.Context, cl *kgo.Client, topic string, p int32, ts int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			if rp.Partition != p {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return 0, fmt.Errorf("list offsets of %s[%d]: %w", topic, p, err)
			}
			return rp.Offset, nil
		}
	}
	return 0, fmt.Errorf("no offsets for %s[%d]", topic, p)
}

// newProducer takes a fresh idempotent producer id for this partition.
// A fresh id after every restart means sequence numbers never need to be
// recovered: the mirror's end offset is the only state.
func (w *worker) newProducer(ctx context.Context) error {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp, err := req.RequestWith(ctx, w.r.cfg.Dest)
	if err != nil {
		return fmt.Errorf("init producer id: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("init producer id: %w", err)
	}
	w.prod = batch.Producer{ID: resp.ProducerID, Epoch: resp.ProducerEpoch, Sequence: 0}
	return nil
}

// produce writes one batch to the mirror partition and checks that it
// landed at want. Retriable errors are retried with the same sequence
// number, which the broker deduplicates.
func (w *worker) produce(ctx context.Context, raw []byte, want int64, records int32) error {
	return w.produceWith(ctx, raw, want, records, &w.prod, nil, false)
}

// produceWith is produce with a given producer, inside the transaction
// txnID when that is not nil. With carryCRC the new CRC is derived from the
// batch's own (a source batch copied as it is) instead of computed over
// the records. Batches still in flight (see pipe) land first.
func (w *worker) produceWith(ctx context.Context, raw []byte, want int64, records int32, prod *batch.Producer, txnID *string, carryCRC bool) error {
	if err := w.flush(ctx); err != nil {
		return err
	}
	rewrite(raw, *prod, txnID, carryCRC)
	if err := w.retry(ctx, &inFlight{raw: raw, want: want, records: records}, txnID, 0); err != nil {
		return err
	}
	w.landed(want, records)
	prod.Sequence = nextSequence(prod.Sequence, records)
	return nil
}

func rewrite(raw []byte, prod batch.Producer, txnID *string, carryCRC bool) {
	if carryCRC {
		batch.RewriteCarryCRC(raw, prod, txnID != nil)
	} else {
		batch.Rewrite(raw, prod, txnID != nil)
	}
}

// landed records a batch the destination put where it belongs.
func (w *worker) landed(want int64, records int32) {
	w.destEnd = max(w.destEnd, want+int64(records))
	w.p.destEnd.Store(want + int64(records))
	w.p.produced.Add(1)
}

// inFlight is a batch produced (or being produced) and not yet accounted.
type inFlight struct {
	raw     []byte
	want    int64
	records int32
	job     *produceJob
}

// retry produces f until it lands, from attempt on, and checks where it
// landed. Retriable errors are retried with the same bytes and so the same
// sequence number, which the broker deduplicates.
func (w *worker) retry(ctx context.Context, f *inFlight, txnID *string, attempt int) error {
	bo := newBackoff()
	refresh := attempt > 0
	w.p.inflight.Add(1)
	defer w.p.inflight.Add(-1)
	for ; ; attempt++ {
		if attempt > 0 {
			// A stop lets the attempt in flight finish (the send ignores
			// ctx) but does not retry: the next setup re-reads the
			// mirror's end, so a batch that did land is not produced
			// twice.
			select {
			case <-time.After(bo.next()):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		base, err := w.produceOnce(f.raw, refresh, txnID)
		if err == nil {
			return w.checkLanded(f, base)
		}
		if txnID != nil && (errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidTxnState)) {
			return fatal(ErrIllegalState, "partition %d: destination transaction %s is gone (%v): it was aborted or fenced on the destination, for example after transaction.max.timeout.ms", w.p.id, *txnID, err)
		}
		var fe *errFatal
		if errors.As(err, &fe) || !retriable(err) || attempt >= 20 {
			return err
		}
		refresh = needsRefresh(err)
		w.r.log.Debug("produce retry", "topic", w.t.spec.Topic, "partition", w.p.id, "err", err)
	}
}

func needsRefresh(err error) bool {
	return isLeaderErr(err) || errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID)
}

// checkLanded checks that f landed on the source's offset.
func (w *worker) checkLanded(f *inFlight, base int64) error {
	if base != f.want {
		return fatal(ErrIllegalState, "partition %d: the destination put source offset %d at offset %d; something other than Strait wrote to the mirror topic", w.p.id, f.want, base)
	}
	return nil
}

// pipe produces a plain (not transactional) batch without waiting for the
// ones before it: up to maxPipe batches of the partition are out at once,
// with consecutive sequence numbers. flush waits for them.
func (w *worker) pipe(ctx context.Context, raw []byte, want int64, records int32, carryCRC bool) error {
	for len(w.window) >= maxPipe {
		if err := w.awaitOldest(ctx); err != nil {
			return err
		}
	}
	leader, id, err := w.r.destMeta.leader(ctx, w.t.spec.Topic, w.p.id, false)
	if err != nil {
		if ferr := w.flush(ctx); ferr != nil {
			return ferr
		}
		return err
	}
	// A broker takes the first batch of a producer it does not know with
	// any sequence number (KIP-360), so a first batch overtaken by the
	// next would let that one land in its place. The first batch goes
	// alone; after it, a batch out of order is refused, never misplaced.
	first := w.prod.Sequence == 0
	rewrite(raw, w.prod, nil, carryCRC)
	w.prod.Sequence = nextSequence(w.prod.Sequence, records)
	f := &inFlight{raw: raw, want: want, records: records, job: &produceJob{
		topic: w.t.spec.Topic, topicID: id, partition: w.p.id, leader: leader, raw: raw,
	}}
	w.p.inflight.Add(1)
	w.r.sink.submit(f.job)
	w.window = append(w.window, f)
	raise(&w.r.sink.peakPipe, int32(len(w.window)))
	// The copy goes on from the end of what is out; the partition's
	// reported end (lag) moves only when a batch lands.
	w.destEnd = want + int64(records)
	if first {
		return w.flush(ctx)
	}
	return nil
}

// flush waits until every batch out has landed, or fails.
func (w *worker) flush(ctx context.Context) error {
	for len(w.window) > 0 {
		if err := w.awaitOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

// awaitOldest waits for the oldest batch out. If it failed, every batch
// after it is waited for too (their sequences follow its, so the broker
// refuses them) and, when the failure is retriable and none of them
// landed, they are produced again in order, one at a time. Anything else
// goes back to the worker's setup, which starts from the mirror's end.
func (w *worker) awaitOldest(ctx context.Context) error {
	f := w.window[0]
	res := <-f.job.done
	w.p.inflight.Add(-1)
	w.popWindow(1)
	if res.err == nil {
		if err := w.checkLanded(f, res.base); err != nil {
			w.abandon()
			return err
		}
		w.landed(f.want, f.records)
		return nil
	}
	failed := []*inFlight{f}
	var laterLanded bool
	var misplaced error
	for _, g := range w.window {
		r := <-g.job.done
		w.p.inflight.Add(-1)
		if r.err == nil {
			// Only if the failed batch did land after all (its answer
			// was lost) can a later one land, and then where it belongs.
			laterLanded = true
			if err := w.checkLanded(g, r.base); err != nil && misplaced == nil {
				misplaced = err
			}
		}
		failed = append(failed, g)
	}
	w.popWindow(len(w.window))
	if misplaced != nil {
		return misplaced
	}
	var fe *errFatal
	if errors.As(res.err, &fe) || !retriable(res.err) || laterLanded {
		// A fresh setup starts again from the mirror's end.
		return res.err
	}
	w.r.log.Debug("produce retry", "topic", w.t.spec.Topic, "partition", w.p.id, "batches", len(failed), "err", res.err)
	for _, g := range failed {
		if err := w.retry(ctx, g, nil, 1); err != nil {
			return err
		}
		w.landed(g.want, g.records)
	}
	return nil
}

// abandon waits out the batches still out after a fatal error, so that
// nothing of the worker is in flight when it returns.
func (w *worker) abandon() {
	for _, g := range w.window {
		<-g.job.done
		w.p.inflight.Add(-1)
	}
	w.popWindow(len(w.window))
}

// popWindow drops the n oldest batches of the window. The slots they
// leave are cleared: a batch's bytes share the fetch response they came
// in, so a stale pointer in the array would keep a whole response alive.
func (w *worker) popWindow(n int) {
	k := copy(w.window, w.window[n:])
	clear(w.window[k:])
	w.window = w.window[:k]
}

func nextSequence(seq, n int32) int32 {
	if int64(seq)+int64(n) > math.MaxInt32 {
		return int32(int64(seq) + int64(n) - math.MaxInt32 - 1)
	}
	return seq + n
}

func retriable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return true // connection errors
}

// produceOnce sends one batch and waits for it. It deliberately does not
// take the worker's context: once a stop is requested the in-flight batch
// is still seen through, so nothing lands after the stop returns. Plain
// batches go through the sink, with other partitions' batches; a
// transaction's go alone, under its transactional id.
func (w *worker) produceOnce(raw []byte, refresh bool, txnID *string) (int64, error) {
	ctx, cancel := context.WithTimeout(w.r.ctx, w.r.cfg.ProduceTimeout)
	defer cancel()
	leader, id, err := w.r.destMeta.leader(ctx, w.t.spec.Topic, w.p.id, refresh)
	if err != nil {
		return 0, err
	}
	if txnID == nil {
		j := &produceJob{topic: w.t.spec.Topic, topicID: id, partition: w.p.id, leader: leader, raw: raw}
		w.r.sink.submit(j)
		res := <-j.done
		return res.base, res.err
	}
	req := kmsg.NewPtrProduceRequest()
	req.TransactionID = txnID
	req.Acks = -1
	req.TimeoutMillis = int32(w.r.cfg.ProduceTimeout / time.Millisecond)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = w.t.spec.Topic, id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = w.p.id
	rp.Records = raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, w.r.cfg.Dest.Broker(int(leader)))
	if err != nil {
		return 0, err
	}
	res := findProduced(resp, &produceJob{topic: w.t.spec.Topic, topicID: id, partition: w.p.id, raw: raw})
	return res.base, res.err
}

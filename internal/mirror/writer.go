package mirror

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/batch"
)

// produce writes one batch to the mirror partition and checks that it
// landed at want. Retriable errors are retried with the same sequence
// number, which the broker deduplicates.
func (w *worker) produce(ctx context.Context, raw []byte, want int64, records int32) error {
	return w.produceWith(ctx, raw, want, records, &w.prod, nil, -1, false)
}

// produceWith is produce with a given producer, inside the transaction
// txnID of the source producer sourcePID when that is not nil. With carryCRC the new CRC is derived from the
// batch's own (a source batch copied as it is) instead of computed over
// the records. Batches still in flight (see pipe) land first.
func (w *worker) produceWith(ctx context.Context, raw []byte, want int64, records int32, prod *batch.Producer, txnID *string, sourcePID int64, carryCRC bool) error {
	if err := w.flush(ctx); err != nil {
		return err
	}
	rewrite(raw, *prod, txnID, carryCRC)
	w.noteHeld(want, raw)
	if err := w.retry(ctx, &inFlight{raw: raw, want: want, records: records, sourcePID: sourcePID}, txnID, 0); err != nil {
		return err
	}
	w.landed(want, records)
	if txnID != nil {
		// Transactional data; a plain batch here is filler.
		w.copied(records, len(raw))
	}
	prod.Sequence = nextSequence(prod.Sequence, records)
	if prod == &w.prod {
		w.known = true
	}
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
	w.confirmed = max(w.confirmed, want+int64(records))
	w.p.destEnd.Store(want + int64(records))
	w.p.produced.Add(1)
}

// copied counts records and bytes of source batches that landed.
func (w *worker) copied(records int32, bytes int) {
	w.p.counters.Records.Add(int64(records))
	w.p.counters.Bytes.Add(int64(bytes))
}

// noteHeld notes the batch raw, to land at offset at, as the oldest
// source batch the worker holds that has not landed (see age.go).
func (w *worker) noteHeld(at int64, raw []byte) {
	if ts, ok := rawTimestamp(raw); ok {
		w.p.held.set(at, ts)
	}
}

// landedOut accounts for the oldest batch out, which landed where it
// belongs: the cursor, the counters, and the next batch out is now the
// oldest not landed.
func (w *worker) landedOut(f *inFlight) {
	w.landed(f.want, f.records)
	w.copied(f.records, len(f.raw))
	w.known = true
	if len(w.window) > 0 {
		w.noteHeld(w.window[0].want, w.window[0].raw)
	}
}

// inFlight is a batch produced (or being produced) and not yet accounted.
type inFlight struct {
	raw     []byte
	want    int64
	records int32
	job     *produceJob
	// sourcePID is the source producer of a transactional batch.
	sourcePID int64
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
			return w.checkLanded(ctx, f, base)
		}
		if txnID != nil && (errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidTxnState)) {
			// Another owner took the transaction over, or the destination
			// aborted it (transaction.max.timeout.ms). Neither is known
			// until the mirror is read: the next setup compares its tail
			// with the source.
			delete(w.txns, f.sourcePID)
			return fmt.Errorf("destination transaction %s: %w", *txnID, err)
		}
		if txnID == nil {
			w.noteRefused(err)
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

// checkLanded checks that f landed on the source's offset. An answer with
// another offset is a duplicate of a batch another writer of Strait's
// wrote with the same sequence, or a batch that landed behind someone
// else's write: reading the mirror tells which.
func (w *worker) checkLanded(ctx context.Context, f *inFlight, base int64) error {
	if base != f.want {
		return w.suspect(ctx, fmt.Sprintf("partition %d: the destination answered source offset %d with offset %d", w.p.id, f.want, base))
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
	// next would let that one land in its place. Until the broker is
	// known to hold the writer's state, a batch goes alone; after that, a
	// batch out of order is refused, never misplaced.
	first := !w.known
	rewrite(raw, w.prod, nil, carryCRC)
	w.prod.Sequence = nextSequence(w.prod.Sequence, records)
	f := &inFlight{raw: raw, want: want, records: records, job: &produceJob{
		topic: w.t.spec.Topic, topicID: id, partition: w.p.id, leader: leader, raw: raw,
	}}
	w.p.inflight.Add(1)
	w.r.sink.submit(f.job)
	if len(w.window) == 0 {
		w.noteHeld(want, raw)
	}
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
		if res.base != f.want {
			w.abandon()
			return w.checkLanded(ctx, f, res.base)
		}
		w.landedOut(f)
		return nil
	}
	w.noteRefused(res.err)
	failed := []*inFlight{f}
	var laterLanded, misplaced bool
	for _, g := range w.window {
		r := <-g.job.done
		w.p.inflight.Add(-1)
		if r.err == nil {
			// Only if the failed batch did land after all (its answer
			// was lost) can a later one land, and then where it belongs.
			laterLanded = true
			misplaced = misplaced || r.base != g.want
		}
		failed = append(failed, g)
	}
	w.popWindow(len(w.window))
	if misplaced {
		return w.suspect(ctx, fmt.Sprintf("partition %d: a batch after a failed one was answered at another offset", w.p.id))
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
		w.copied(g.records, len(g.raw))
		w.known = true
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
	start := time.Now()
	resp, err := req.RequestWith(ctx, w.r.cfg.Dest.Broker(int(leader)))
	w.r.cfg.Observer.Request(OpProduce, time.Since(start), err)
	if err != nil {
		return 0, err
	}
	res := findProduced(resp, &produceJob{topic: w.t.spec.Topic, topicID: id, partition: w.p.id, raw: raw})
	if res.err != nil {
		w.r.cfg.Observer.Error(OpProduce, res.err)
	}
	return res.base, res.err
}

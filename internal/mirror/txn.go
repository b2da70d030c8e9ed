package mirror

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/batch"
)

// Transactions. A client cannot produce a transaction marker, so each
// source transaction is replayed as a destination transaction: one
// transactional id per source producer and mirror partition, the source's
// data batches produced in it, and the source's commit or abort marker
// turned into EndTxn, whose marker lands on the destination at the offset
// the source marker has (every batch before it is already copied, one at a
// time, in order). Transactions of several source producers interleave on
// a partition the same way they do at the source.
//
// Nothing about open transactions is kept by Strait itself: after a restart
// a worker finds a destination transaction still open for a source
// producer through DescribeTransactions and DescribeProducers and carries
// on with it, because initialising the transactional id again would abort
// it and put a marker on an offset the source does not have.

// txnTimeout is the destination transaction timeout asked for: Kafka's
// default transaction.max.timeout.ms. A source transaction open longer
// than the destination allows is aborted there, and the mirror fails.
const txnTimeout = 15 * time.Minute

// txnProducer is the destination transactional producer that replays one
// source producer's transactions on one partition.
type txnProducer struct {
	id   string
	prod batch.Producer
	// open is set while a destination transaction with this partition in
	// it is open.
	open bool
}

// txnID names the destination transaction of a source producer on a
// mirror partition.
func (w *worker) txnID(sourcePID int64) string {
	return fmt.Sprintf("%s/%s/%d/%d", w.r.cfg.TxnIDPrefix, w.t.spec.Topic, w.p.id, sourcePID)
}

// txn returns the replaying producer of a source producer. Its producer id
// and epoch come from the destination's transaction coordinator: an open
// destination transaction is continued, a finished one's epoch is taken as
// it is. InitProducerID is sent only for a transactional id the
// coordinator does not know: on an existing one it would abort a
// transaction left open by an earlier owner and put an abort marker where
// the source has none, and a failed description is never taken for "no
// transaction". The sequence comes from the mirror's log (see fence.go).
func (w *worker) txn(ctx context.Context, sourcePID int64) (*txnProducer, error) {
	if tp, ok := w.txns[sourcePID]; ok {
		return tp, nil
	}
	tp := &txnProducer{id: w.txnID(sourcePID)}
	d, found, err := w.describeTxn(ctx, tp.id)
	if err != nil {
		return nil, err
	}
	if !found {
		if err := w.initTxn(ctx, tp); err != nil {
			return nil, err
		}
		// A new producer id: nothing of it is in the log.
		w.txns[sourcePID] = tp
		return tp, nil
	}
	switch d.State {
	case "Ongoing":
		_, tp.open = d.Topics[w.t.spec.Topic][w.p.id]
		w.r.log.Info("resuming open destination transaction", "topic", w.t.spec.Topic, "partition", w.p.id, "txn", tp.id, "in_partition", tp.open)
	case "Empty", "CompleteCommit", "CompleteAbort":
	default:
		// PrepareCommit, PrepareAbort, PrepareEpochFence: the
		// coordinator is finishing a transaction; ask again shortly.
		return nil, fmt.Errorf("destination transaction %s is %s", tp.id, d.State)
	}
	tp.prod = batch.Producer{ID: d.ProducerID, Epoch: d.ProducerEpoch}
	if err := w.resumeSequence(ctx, tp); err != nil {
		return nil, err
	}
	w.txns[sourcePID] = tp
	return tp, nil
}

// describeTxn describes a transactional id; found is false only when the
// coordinator answered that it does not know it.
func (w *worker) describeTxn(ctx context.Context, id string) (kadm.DescribedTransaction, bool, error) {
	described, err := kadm.NewClient(w.r.cfg.Dest).DescribeTransactions(ctx, id)
	d, ok := described[id]
	switch {
	case ok && errors.Is(d.Err, kerr.TransactionalIDNotFound):
		return d, false, nil
	case ok && d.Err != nil:
		return d, false, fmt.Errorf("describe transaction %s: %w", id, d.Err)
	case err != nil:
		return d, false, fmt.Errorf("describe transaction %s: %w", id, err)
	case !ok:
		return d, false, fmt.Errorf("describe transaction %s: no answer for it", id)
	}
	return d, true, nil
}

// resumeSequence sets tp's next sequence from its last batch in the
// mirror's log: the one after it at the same epoch, 0 at a newer epoch
// (KIP-890 bumps the epoch after every transaction, and the sequence
// starts again). The log must end where the worker believes it to: a
// batch that landed since the worker's setup was written by someone else.
func (w *worker) resumeSequence(ctx context.Context, tp *txnProducer) error {
	last, err := w.lastBatchOf(ctx, tp.prod.ID, w.destStart, w.destEnd)
	if err != nil {
		return err
	}
	if last.end != w.destEnd {
		return w.suspect(ctx, fmt.Sprintf("partition %d: the mirror ends at %d, not %d, when transaction %s is resumed", w.p.id, last.end, w.destEnd, tp.id))
	}
	tp.prod.Sequence = 0
	if last.found && last.hdr.ProducerEpoch == tp.prod.Epoch {
		tp.prod.Sequence = nextSequence(last.hdr.BaseSequence, last.hdr.RecordCount)
	}
	return nil
}

// initTxn takes a producer id and epoch for a new transactional id.
func (w *worker) initTxn(ctx context.Context, tp *txnProducer) error {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = kmsg.StringPtr(tp.id)
	req.TransactionTimeoutMillis = int32(txnTimeout / time.Millisecond)
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp, err := req.RequestWith(ctx, w.r.cfg.Dest)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if errors.Is(err, kerr.InvalidTransactionTimeout) {
		// The destination allows less: take one minute.
		req.TransactionTimeoutMillis = 60000
		resp, err = req.RequestWith(ctx, w.r.cfg.Dest)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
	}
	if err != nil {
		return fmt.Errorf("init transactional producer %s: %w", tp.id, err)
	}
	tp.prod = batch.Producer{ID: resp.ProducerID, Epoch: resp.ProducerEpoch}
	tp.open = false
	return nil
}

// begin adds the partition to tp's transaction.
func (w *worker) begin(ctx context.Context, tp *txnProducer) error {
	if tp.open {
		return nil
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.TransactionalID = tp.id
	req.ProducerID, req.ProducerEpoch = tp.prod.ID, tp.prod.Epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic = w.t.spec.Topic
	rt.Partitions = []int32{w.p.id}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, w.r.cfg.Dest)
	if err != nil {
		return fmt.Errorf("add partition to transaction %s: %w", tp.id, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return w.txnError(tp, "add the partition to", err)
			}
		}
	}
	tp.open = true
	return nil
}

// txnError reports a refused transaction request. A fenced epoch or a
// transaction that is not open means another owner took the transactional
// id over, or the destination aborted the transaction (after
// transaction.max.timeout.ms); which one is known only by reading the
// mirror, so the worker starts again, and its setup compares the mirror's
// tail with the source.
func (w *worker) txnError(tp *txnProducer, what string, err error) error {
	for pid, cur := range w.txns {
		if cur == tp {
			delete(w.txns, pid)
		}
	}
	return fmt.Errorf("%s transaction %s: %w", what, tp.id, err)
}

// copyTxnBatch produces a transactional data batch inside the replaying
// transaction of its source producer.
func (w *worker) copyTxnBatch(ctx context.Context, raw []byte, b *batch.Batch, records int32, carryCRC bool) error {
	tp, err := w.txn(ctx, b.ProducerID)
	if err != nil {
		return err
	}
	if err := w.begin(ctx, tp); err != nil {
		return err
	}
	return w.produceWith(ctx, raw, b.BaseOffset, records, &tp.prod, &tp.id, b.ProducerID, carryCRC)
}

// copyControl replays a source transaction marker: EndTxn on the replaying
// transaction, then a wait until its marker has landed on the source
// marker's offset.
func (w *worker) copyControl(ctx context.Context, b *batch.Batch) error {
	recs, err := b.Records()
	if err != nil || len(recs) != 1 || len(recs[0].Key) < 4 {
		return fatal(ErrUnsupportedFormat, "partition %d: unreadable control batch at %d: %v", w.p.id, b.BaseOffset, err)
	}
	commit := binary.BigEndian.Uint16(recs[0].Key[2:4]) == 1
	tp, err := w.txn(ctx, b.ProducerID)
	if err != nil {
		return err
	}
	// A marker whose data came before the mirror's start still needs its
	// offset: a transaction with the partition and no data writes one.
	if err := w.begin(ctx, tp); err != nil {
		return err
	}
	w.p.inflight.Add(1)
	defer w.p.inflight.Add(-1)
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID = tp.id
	req.ProducerID, req.ProducerEpoch = tp.prod.ID, tp.prod.Epoch
	req.Commit = commit
	resp, err := req.RequestWith(ctx, w.r.cfg.Dest)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		// The answer may be lost, or come after the marker was written
		// (a retried EndTxn of an earlier owner, a timeout): whether the
		// marker is there is read, not guessed.
		delete(w.txns, b.ProducerID)
		if lerr := w.awaitMarker(ctx, b.BaseOffset, 2*time.Second, true); lerr == nil {
			return nil
		}
		return w.txnError(tp, "end", err)
	}
	tp.open = false
	if resp.GetVersion() >= 5 && resp.ProducerID >= 0 && (resp.ProducerID != tp.prod.ID || resp.ProducerEpoch != tp.prod.Epoch) {
		// KIP-890: the epoch is bumped after every transaction, and the
		// sequence starts again.
		tp.prod = batch.Producer{ID: resp.ProducerID, Epoch: resp.ProducerEpoch}
	}
	return w.awaitMarker(ctx, b.BaseOffset, 30*time.Second, false)
}

// awaitMarker waits, up to wait, until the destination partition ends right
// after the marker offset (brokers write markers after EndTxn answers).
// With verify (the EndTxn was not answered with success) it also checks
// that the marker there is the source's.
func (w *worker) awaitMarker(ctx context.Context, at int64, wait time.Duration, verify bool) error {
	deadline := time.Now().Add(wait)
	for {
		_, end, err := w.destOffsets(ctx)
		switch {
		case err != nil:
			// A failed read says nothing about the marker.
		case end == at+1:
			if verify {
				if diverged, err := w.diffRange(ctx, at, end); err != nil || diverged != nil {
					if diverged != nil {
						return diverged
					}
					return err
				}
			}
			w.destEnd, w.confirmed = end, end
			w.p.destEnd.Store(end)
			w.p.produced.Add(1)
			return nil
		case end > at+1:
			return w.suspect(ctx, fmt.Sprintf("partition %d: after the transaction marker for source offset %d the mirror ends at %d", w.p.id, at, end))
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("transaction marker for offset %d: %w", at, err)
			}
			return fmt.Errorf("transaction marker for offset %d did not land (mirror ends at %d)", at, end)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// AbortOpenTransactions aborts the destination transactions Strait left
// open on a topic's partitions: source transactions that had not ended when
// the mirror stopped. Their records stay on the topic, invisible to
// read_committed consumers, as if the source had aborted them; without this
// the open transactions would hold back every read_committed consumer of
// the promoted topic until they timed out. Call it once the topic's copy
// has stopped.
func (r *Runner) AbortOpenTransactions(ctx context.Context, topic string, partitions int32) error {
	adm := kadm.NewClient(r.cfg.Dest)
	set := kadm.TopicsSet{topic: {}}
	for p := int32(0); p < partitions; p++ {
		set[topic][p] = struct{}{}
	}
	ps, err := adm.DescribeProducers(ctx, set)
	if err != nil {
		return fmt.Errorf("describe producers of %s: %w", topic, err)
	}
	var pids []int64
	ps.EachProducer(func(p kadm.DescribedProducer) {
		if p.CurrentTxnStartOffset >= 0 {
			pids = append(pids, p.ProducerID)
		}
	})
	if len(pids) == 0 {
		return nil
	}
	listed, err := adm.ListTransactions(ctx, pids, []string{"Ongoing"})
	if err != nil {
		return fmt.Errorf("list transactions: %w", err)
	}
	prefix := r.cfg.TxnIDPrefix + "/" + topic + "/"
	var ids []string
	for id := range listed {
		if strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	described, err := adm.DescribeTransactions(ctx, ids...)
	if err != nil {
		return fmt.Errorf("describe transactions: %w", err)
	}
	for id, d := range described {
		if d.Err != nil || d.State != "Ongoing" {
			continue
		}
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID = id
		req.ProducerID, req.ProducerEpoch = d.ProducerID, d.ProducerEpoch
		req.Commit = false
		resp, err := req.RequestWith(ctx, r.cfg.Dest)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			return fmt.Errorf("abort transaction %s: %w", id, err)
		}
		r.log.Info("aborted a transaction left open by a stopped mirror", "topic", topic, "txn", id)
	}
	return nil
}

package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/batch"
)

// The fence: whoever writes a mirror partition writes it as the same
// producer, so that the broker, not hope, decides which of two writes
// lands.
//
// Each mirror partition has a writer identity, a producer id and epoch,
// allocated once (InitProducerID) and kept in the mirror's state record
// (Spec.Writers, Hooks.SaveWriters). Plain data and filler are produced as
// that producer, whatever process copies the partition: a restart, another
// instance, a process that was frozen and woke up. A broker appends a batch
// of an idempotent producer only if its first sequence number is the one
// after the producer's last batch on the partition; a batch that repeats
// one of the last five is answered as a duplicate with its original
// offset, anything else is refused (OUT_OF_ORDER_SEQUENCE_NUMBER). So the
// sequence number works as a compare-and-set on the partition: a writer
// that took its sequence from a consistent read of the log can only append
// where it read the end to be.
//
// A new owner (worker setup) reads the destination partition from its tail
// to its end in one pass (lastBatchOf): the last batch of the writer gives
// the epoch and the next sequence, and the position where the fetches stop
// is the end, from the same reads. Every writer assigns sequence numbers
// to the same source offsets in the same order, because it continues from
// that batch, so a late batch of a dead process (held by a slow broker, or
// sent by a process that was stopped and continued) either lands where the
// new owner would have put the same records, or is refused because the new
// owner's batch with that sequence came first. The same holds for the
// transactional producers that replay source transactions (txn.go): their
// epoch and sequence also come from the log, and an open destination
// transaction is continued, never re-initialised.
//
// Where the log has no batch of the writer within lastBatchScan of its
// end, the broker may still know the producer (its last batch is older),
// or not (retention removed it, or it never wrote here). The worker then
// starts at sequence 0 and, if the broker refuses it as out of order, bumps
// the epoch (KIP-360: a higher epoch starts again at 0). Such a first write
// is not fenced against a late batch of an earlier writer; docs/fencing.md
// says when that can happen.

// WriterID is the producer a mirror partition is written as.
type WriterID struct {
	ID    int64 `json:"id"`
	Epoch int16 `json:"epoch"`
}

// lastBatchScan bounds the bytes read back from a partition's end to find
// its writer's last batch.
const lastBatchScan = 64 << 20

// writerIDs hands out the writer identities of a topic's partitions: the
// ones stored, and new ones for the partitions that have none, allocated
// once for the whole topic and saved in one state write.
type writerIDs struct {
	mu   sync.Mutex
	ids  map[int32]WriterID
	busy chan struct{} // closed when an allocation round ends
}

func newWriterIDs(stored map[int32]WriterID) *writerIDs {
	ids := make(map[int32]WriterID, len(stored))
	for p, id := range stored {
		ids[p] = id
	}
	return &writerIDs{ids: ids}
}

// get returns partition p's writer, allocating the topic's missing writers
// first if p has none.
func (x *writerIDs) get(ctx context.Context, w *worker) (WriterID, error) {
	for {
		x.mu.Lock()
		if id, ok := x.ids[w.p.id]; ok {
			x.mu.Unlock()
			return id, nil
		}
		if x.busy != nil {
			busy := x.busy
			x.mu.Unlock()
			select {
			case <-busy:
				continue
			case <-ctx.Done():
				return WriterID{}, ctx.Err()
			}
		}
		x.busy = make(chan struct{})
		var missing []int32
		for p := int32(0); p < w.t.spec.Partitions; p++ {
			if _, ok := x.ids[p]; !ok {
				missing = append(missing, p)
			}
		}
		x.mu.Unlock()
		got, err := w.allocateWriters(ctx, missing)
		x.mu.Lock()
		for p, id := range got {
			x.ids[p] = id
		}
		close(x.busy)
		x.busy = nil
		x.mu.Unlock()
		if err != nil {
			return WriterID{}, err
		}
	}
}

// set records a new epoch of p's writer.
func (x *writerIDs) set(p int32, id WriterID) {
	x.mu.Lock()
	x.ids[p] = id
	x.mu.Unlock()
}

// allocateWriters takes a producer id for each partition in ps and saves
// them durably before any is used. A crash between the two leaves only
// unused producer ids behind.
func (w *worker) allocateWriters(ctx context.Context, ps []int32) (map[int32]WriterID, error) {
	ids := make(map[int32]WriterID, len(ps))
	for _, p := range ps {
		id, err := initProducerID(ctx, w)
		if err != nil {
			return nil, err
		}
		ids[p] = id
	}
	saved, err := w.r.cfg.Hooks.SaveWriters(ctx, w.t.spec.Topic, ids)
	if err != nil {
		return nil, fmt.Errorf("save writer ids: %w", err)
	}
	return saved, nil
}

func initProducerID(ctx context.Context, w *worker) (WriterID, error) {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp, err := req.RequestWith(ctx, w.r.cfg.Dest)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		return WriterID{}, fmt.Errorf("init producer id: %w", err)
	}
	return WriterID{ID: resp.ProducerID, Epoch: resp.ProducerEpoch}, nil
}

// lastBatch is what a read of a partition's tail found.
type lastBatch struct {
	hdr   batch.Header
	found bool
	// end is where the read stopped: the partition's log end offset, read
	// in the same pass as hdr.
	end int64
}

// lastBatchOf reads the destination partition back from its end, in
// growing windows, until it finds the last batch of producer pid or has
// read lastBatchScan bytes or reached start. The first window is read up
// to the end of the log, and that end is returned: no batch of pid can
// land unseen between the batch found and the end.
func (w *worker) lastBatchOf(ctx context.Context, pid int64, start, end int64) (lastBatch, error) {
	out := lastBatch{end: end}
	from := max(start, end-1)
	upTo := int64(-1) // read the first window to the end of the log
	read := 0
	for step := int64(64); ; step *= 64 {
		pos := from
		for upTo < 0 || pos < upTo {
			bs, hw, err := fetchFrom(ctx, w.r.cfg.Dest, &w.r.destMeta, w.t.spec.Topic, w.p.id, pos, 1<<20)
			if err != nil {
				return lastBatch{}, fmt.Errorf("read the mirror's tail at %d: %w", pos, err)
			}
			moved := false
			for i := range bs {
				b := &bs[i]
				if b.NextOffset() <= pos || (upTo >= 0 && b.BaseOffset >= upTo) {
					continue
				}
				read += len(b.Raw)
				if b.ProducerID == pid && !b.Control() {
					out.hdr, out.found = b.Header, true
				}
				pos, moved = b.NextOffset(), true
			}
			if upTo < 0 && !moved {
				// The first window ends where the log ends, in this read.
				out.end = max(pos, hw)
				break
			}
			if !moved {
				break
			}
			if read > lastBatchScan {
				return lastBatch{}, fmt.Errorf("the mirror grew by more than %d MiB while it was read: another writer?", lastBatchScan>>20)
			}
		}
		if upTo < 0 {
			upTo = from
		}
		if out.found || from <= start || read > lastBatchScan {
			return out, nil
		}
		upTo, from = from, max(start, end-step)
	}
}

// resumeWriter sets the worker's producer from the mirror's log: the
// stored writer, at the epoch and sequence after its last batch. end is
// the log end read in the same pass, which the copy continues from.
func (w *worker) resumeWriter(ctx context.Context, start, end int64) (int64, error) {
	id, err := w.t.writers.get(ctx, w)
	if err != nil {
		return 0, err
	}
	if w.bumpEpoch {
		// The broker refused sequence 0 at this epoch from a writer whose
		// last batch is not in the log: start a new epoch.
		id.Epoch++
		if _, err := w.r.cfg.Hooks.SaveWriters(ctx, w.t.spec.Topic, map[int32]WriterID{w.p.id: id}); err != nil {
			return 0, fmt.Errorf("save writer epoch: %w", err)
		}
		w.t.writers.set(w.p.id, id)
		w.bumpEpoch = false
	}
	last, err := w.lastBatchOf(ctx, id.ID, start, end)
	if err != nil {
		return 0, err
	}
	w.prod = batch.Producer{ID: id.ID, Epoch: id.Epoch}
	w.known = last.found && last.hdr.ProducerEpoch >= id.Epoch
	if w.known {
		if last.hdr.ProducerEpoch > id.Epoch {
			// Another owner moved to a newer epoch: take it.
			id.Epoch = last.hdr.ProducerEpoch
			w.t.writers.set(w.p.id, id)
			w.prod.Epoch = id.Epoch
		}
		w.prod.Sequence = nextSequence(last.hdr.BaseSequence, last.hdr.RecordCount)
	}
	return last.end, nil
}

// noteRefused records a refusal of the worker's first batch at sequence 0
// by a broker that knows the writer from a batch the log no longer shows:
// the next setup bumps the epoch.
func (w *worker) noteRefused(err error) {
	if !w.known && (errors.Is(err, kerr.OutOfOrderSequenceNumber) || errors.Is(err, kerr.UnknownProducerID)) {
		w.bumpEpoch = true
	}
}

// destMoved is posted to a worker when the mirror's end moved while the
// worker had nothing out: someone wrote to the mirror partition.
type destMoved struct{ end int64 }

func (d *destMoved) Error() string {
	return fmt.Sprintf("the mirror's end moved to %d while nothing of this worker was out", d.end)
}

// suspect is called when the mirror is not where the worker believes it
// to be (a batch answered at another offset, a marker that left the end
// elsewhere, an end that moved while the worker was idle). It reads the
// mirror from the last offset the worker knows to be right and compares
// it with the source: a difference fails the mirror; none means another
// writer of Strait's wrote what the worker would have, and the worker
// starts again from the mirror's end.
func (w *worker) suspect(ctx context.Context, why string) error {
	var end int64
	var err error
	for attempt := 0; ; attempt++ {
		_, end, err = w.destOffsets(ctx)
		if err == nil {
			break
		}
		if attempt >= 5 || ctx.Err() != nil {
			return fmt.Errorf("%s; the mirror could not be read to check it: %w", why, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond << attempt):
		}
	}
	diverged, err := w.diffRange(ctx, w.confirmed, end)
	if err != nil {
		return fmt.Errorf("%s; the mirror could not be compared with the source: %w", why, err)
	}
	if diverged != nil {
		return diverged
	}
	w.r.log.Info("the mirror moved as Strait would have moved it; starting again from its end", "topic", w.t.spec.Topic, "partition", w.p.id, "why", why, "from", w.confirmed, "end", end)
	return fmt.Errorf("%s (the mirror is identical to the source up to %d)", why, end)
}

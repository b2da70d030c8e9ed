package mirror

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strait-dev/strait/internal/batch"
)

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

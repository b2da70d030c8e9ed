package mirror

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/batch"
)

// Reading the clusters back. A mirror is failed only for a difference that
// was read: an error code, a lost answer or an offset in a produce response
// says what a broker did, not what the mirror holds. When something looks
// wrong, the worker reads the mirror and the source at the same offsets and
// compares them (diffRange); only a record that differs, or a mirror that
// holds offsets the source does not, fails the mirror.

// fetchFrom fetches the batches of a partition from offset o, up to about
// maxBytes, and the partition's high watermark.
func fetchFrom(ctx context.Context, cl *kgo.Client, meta *metaCache, topic string, partition int32, o int64, maxBytes int32) ([]batch.Batch, int64, error) {
	leader, id, err := meta.leader(ctx, topic, partition, false)
	if err != nil {
		return nil, 0, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = maxBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, o, maxBytes
	rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		return nil, 0, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, 0, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition != partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				if isLeaderErr(err) || errors.Is(err, kerr.UnknownTopicID) {
					meta.leader(ctx, topic, partition, true) //nolint:errcheck // refresh only
				}
				return nil, 0, err
			}
			bs, err := batch.Split(p.RecordBatches)
			if err != nil {
				return nil, 0, err
			}
			return bs, p.HighWatermark, nil
		}
	}
	return nil, 0, errors.New("fetch response without the partition")
}

// fetchBatchAt fetches the first complete batch at or around offset o of a
// partition, ok false when there is none.
func fetchBatchAt(ctx context.Context, cl *kgo.Client, meta *metaCache, topic string, partition int32, o int64) (batch.Batch, bool, error) {
	bs, _, err := fetchFrom(ctx, cl, meta, topic, partition, o, 1<<20)
	if err != nil || len(bs) == 0 {
		return batch.Batch{}, false, err
	}
	return bs[0], true, nil
}

// readRange returns the records a partition holds at offsets [from, to),
// by offset, and the high watermark of the last fetch. Batches that do not
// decode are an error: they cannot be compared.
func readRange(ctx context.Context, cl *kgo.Client, meta *metaCache, topic string, partition int32, from, to int64) (map[int64]absRecord, int64, error) {
	out := map[int64]absRecord{}
	pos, hw := from, int64(-1)
	for pos < to {
		bs, h, err := fetchFrom(ctx, cl, meta, topic, partition, pos, 4<<20)
		if err != nil {
			return nil, 0, err
		}
		hw = h
		if len(bs) == 0 {
			break // nothing more (the partition ends below to)
		}
		for i := range bs {
			b := &bs[i]
			if b.NextOffset() <= pos {
				continue
			}
			recs, err := batchRecords(b)
			if err != nil {
				return nil, 0, fmt.Errorf("%s[%d] batch at %d: %w", topic, partition, b.BaseOffset, err)
			}
			for _, r := range recs {
				if r.offset >= pos && r.offset < to {
					out[r.offset] = r
				}
			}
			pos = b.NextOffset()
		}
	}
	return out, hw, nil
}

// maxCompare bounds the offsets diffRange compares; a longer range is
// compared over its last maxCompare offsets.
const maxCompare = 100_000

// diffRange compares the mirror and the source at offsets [from, to) and
// returns the first difference as the error that fails the mirror, nil
// when there is none. Offsets the source no longer has (compacted away,
// below its log start) may hold anything on the mirror; a mirror that
// holds offsets the source has not written differs. A read that fails is
// returned as a plain error: nothing was learned.
func (w *worker) diffRange(ctx context.Context, from, to int64) (diverged, err error) {
	if to-from > maxCompare {
		from = to - maxCompare
	}
	if from >= to {
		return nil, nil
	}
	dst, _, err := readRange(ctx, w.r.cfg.Dest, &w.r.destMeta, w.t.spec.Topic, w.p.id, from, to)
	if err != nil {
		return nil, fmt.Errorf("read the mirror at %d: %w", from, err)
	}
	src, srcHW, err := readRange(ctx, w.r.cfg.Source, &w.r.srcMeta, w.t.spec.SourceTopic, w.p.id, from, to)
	if err != nil && !errors.Is(err, kerr.OffsetOutOfRange) {
		return nil, fmt.Errorf("read the source at %d: %w", from, err)
	}
	if err != nil {
		src = nil // below the source's log start: nothing to compare with
		srcHW = -1
	}
	for o := from; o < to; o++ {
		d, dok := dst[o]
		s, sok := src[o]
		switch {
		case dok && sok && d.control && !d.commit && !(s.control && !s.commit):
			return fatal(ErrIllegalState, "partition %d: the destination aborted a replayed transaction and wrote an abort marker at offset %d, where the source has %s (was the mirror paused longer than the destination's transaction.max.timeout.ms in the middle of a transaction?)", w.p.id, o, s), nil
		case dok && sok:
			if !sameRecord(d, s) {
				return fatal(ErrIllegalState, "partition %d: offset %d holds %s on the mirror and %s on the source; something other than Strait wrote to the mirror topic", w.p.id, o, d, s), nil
			}
		case dok && srcHW >= 0 && o >= srcHW:
			return fatal(ErrUnexpectedTruncation, "partition %d: the mirror holds offset %d but the source ends at %d: the source lost records (an unclean leader election?) or something other than Strait wrote to the mirror topic", w.p.id, o, srcHW), nil
		}
	}
	return nil, nil
}

// verifyTail checks, when a worker starts on a mirror that already has
// data, that the mirror's last record is the source's. The mirror's end is
// the copy cursor, so a record appended by someone else while no worker was
// running would otherwise shift the copy silently.
func (w *worker) verifyTail(ctx context.Context, start, end int64) error {
	if end <= start || w.align >= 0 {
		return nil // empty, or the tail is alignment filler
	}
	diverged, err := w.diffRange(ctx, end-1, end)
	if err != nil {
		return err
	}
	return diverged
}

// absRecord is a record with its absolute offset and timestamp.
type absRecord struct {
	offset, ts int64
	r          batch.Record
	// control marks a transaction marker: the destination writes its own,
	// so only its place and kind can be compared.
	control, commit bool
}

func (a absRecord) String() string {
	switch {
	case a.control && a.commit:
		return "a commit marker"
	case a.control:
		return "an abort marker"
	case isFiller(a):
		return "a filler record"
	}
	return fmt.Sprintf("a record with key %q", trim(a.r.Key))
}

func trim(b []byte) []byte {
	if len(b) > 32 {
		return append(b[:32:32], "..."...)
	}
	return b
}

// isFiller reports a record Strait writes where the source has none.
func isFiller(a absRecord) bool {
	return !a.control && a.r.Value == nil && (a.r.Key == nil || bytes.Equal(a.r.Key, batch.FillerKey))
}

// batchRecords decodes b's records with their absolute offsets.
func batchRecords(b *batch.Batch) ([]absRecord, error) {
	recs, err := b.Records()
	if err != nil {
		return nil, err
	}
	out := make([]absRecord, 0, len(recs))
	for _, r := range recs {
		a := absRecord{offset: b.BaseOffset + int64(r.OffsetDelta), ts: b.BaseTimestamp + r.TimestampDelta, r: r}
		if b.LogAppendTime() {
			a.ts = b.MaxTimestamp
		}
		if b.Control() {
			a.control = true
			a.commit = len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:4]) == 1
		}
		out = append(out, a)
	}
	return out, nil
}

func sameRecord(a, b absRecord) bool {
	if a.control || b.control {
		return a.control == b.control && a.offset == b.offset && a.commit == b.commit
	}
	return a.offset == b.offset && a.ts == b.ts &&
		bytes.Equal(a.r.Key, b.r.Key) && (a.r.Key == nil) == (b.r.Key == nil) &&
		bytes.Equal(a.r.Value, b.r.Value) && (a.r.Value == nil) == (b.r.Value == nil) &&
		bytes.Equal(a.r.Headers, b.r.Headers)
}

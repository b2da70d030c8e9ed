package mirror

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// SourceTimestamps returns, per partition, the timestamp in Unix ms of the
// source batch at offsets[p] of topic: its first record's (for a
// LogAppendTime batch, the time the broker appended it). A mirror's end is
// always at a source batch's start, so at the mirror's end this is the
// timestamp of the oldest record not yet copied. A partition with no batch
// at its offset (the offset is the source's end) is left out.
func SourceTimestamps(ctx context.Context, src *kgo.Client, topic string, offsets map[int32]int64) (map[int32]int64, error) {
	meta := &metaCache{cl: src}
	out := make(map[int32]int64, len(offsets))
	for p, o := range offsets {
		b, ok, err := fetchBatchAt(ctx, src, meta, topic, p, o)
		if err != nil {
			return nil, fmt.Errorf("fetch %s[%d] at %d: %w", topic, p, o, err)
		}
		if !ok || b.NextOffset() <= o {
			continue
		}
		if b.LogAppendTime() {
			out[p] = b.MaxTimestamp
		} else {
			out[p] = b.BaseTimestamp
		}
	}
	return out, nil
}

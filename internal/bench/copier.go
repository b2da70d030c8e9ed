package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CopierOptions configures the baseline copier, `strait bench copier`.
type CopierOptions struct {
	// Source and Dest are the clusters' bootstrap addresses.
	Source, Dest string
	// Topic is read from the start; every record is written to DestTopic,
	// which must exist with at least as many partitions, to the same
	// partition number.
	Topic, DestTopic string
	// Compression is the producer's codec: "none" or "lz4".
	Compression string
	// Follow keeps copying until ctx ends. Without it the copier stops
	// once it has copied every record that was in Topic when it started.
	Follow bool
	// Log receives warnings; nil discards them.
	Log *slog.Logger
}

// RunCopier runs the baseline copier: a consume-then-produce loop with
// franz-go's kgo client, the way Redpanda Migrator and MirrorMaker 2 copy a
// topic. Every record is decompressed and decoded by the consumer, and
// re-batched, re-compressed and re-encoded by the producer, whose settings
// are kgo's defaults (idempotent, acks=all, 10ms linger, batches up to
// 1,000,012 bytes) apart from the codec. Unlike those tools it commits no
// consumer offsets, which only makes it cheaper.
func RunCopier(ctx context.Context, o CopierOptions) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var codec kgo.CompressionCodec
	switch o.Compression {
	case "none", "":
		codec = kgo.NoCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	default:
		return fmt.Errorf("compression %q: want none or lz4", o.Compression)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	cons, err := kgo.NewClient(
		kgo.SeedBrokers(o.Source),
		kgo.ClientID("bench-baseline-consumer"),
		kgo.ConsumeTopics(o.Topic),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	defer cons.Close()
	prod, err := kgo.NewClient(
		kgo.SeedBrokers(o.Dest),
		kgo.ClientID("bench-baseline-producer"),
		kgo.DefaultProduceTopic(o.DestTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(codec),
	)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer prod.Close()

	// remaining maps each partition to the end offset to reach; nil when
	// following.
	var remaining map[int32]int64
	if !o.Follow {
		listed, err := kadm.NewClient(cons).ListEndOffsets(ctx, o.Topic)
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			return fmt.Errorf("end offsets of %s: %w", o.Topic, err)
		}
		remaining = map[int32]int64{}
		listed.Each(func(l kadm.ListedOffset) {
			if l.Offset > 0 {
				remaining[l.Partition] = l.Offset
			}
		})
	}

	var once sync.Once
	produced := func(_ *kgo.Record, err error) {
		if err != nil {
			once.Do(func() { cancel(fmt.Errorf("produce to %s: %w", o.DestTopic, err)) })
		}
	}
	for remaining == nil || len(remaining) > 0 {
		fetches := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fetches.EachError(func(t string, p int32, err error) {
			log.Warn("fetch error", "topic", t, "partition", p, "err", err)
		})
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			for _, r := range fp.Records {
				// Key, value and headers point into the fetched buffers,
				// which the consumer never reuses: no copy is needed.
				prod.Produce(ctx, &kgo.Record{
					Key:       r.Key,
					Value:     r.Value,
					Headers:   r.Headers,
					Timestamp: r.Timestamp,
					Partition: r.Partition,
				}, produced)
			}
			if n := len(fp.Records); n > 0 && remaining != nil {
				if end, ok := remaining[fp.Partition]; ok && fp.Records[n-1].Offset+1 >= end {
					delete(remaining, fp.Partition)
				}
			}
		})
	}
	// Flush even when stopped: what was read is written, if the
	// destination takes it within a few seconds.
	flushCtx, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelFlush()
	flushErr := prod.Flush(flushCtx)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if flushErr != nil {
		return fmt.Errorf("flush to %s: %w", o.DestTopic, flushErr)
	}
	return nil
}

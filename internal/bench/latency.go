package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// latencyWarmup is left out of the latency figures: clients connect
	// and the copier's pipelines fill during it.
	latencyWarmup = 2 * time.Second
	// latencyPartitions is the latency topic's partition count, as in
	// large-3.
	latencyPartitions = 3
	// latencyLinger is the latency producer's linger. The large cases'
	// 50ms would add up to 50ms of waiting in the producer to every
	// record, hiding what the copier adds.
	latencyLinger = 5 * time.Millisecond
)

// runLatency measures end-to-end latency through copier: a producer
// writes large-shaped records at the set rate with the send time as their
// timestamp, and consumers of the source and of the destination topic
// record now minus the timestamp for each record they get.
func (e *env) runLatency(ctx context.Context, copier string) LatencyResult {
	res := LatencyResult{Copier: copier}
	fail := func(err error) LatencyResult {
		res.Error = err.Error()
		return res
	}
	s := largeShape()
	s.linger = latencyLinger
	topic := "bench-latency-" + copier
	dt := destTopic(copier, topic)
	label := "latency-" + copier
	if err := e.src.createTopic(ctx, topic, latencyPartitions); err != nil {
		return fail(err)
	}
	e.log.Info("latency", "copier", copier, "rate_mb_s", e.o.LatencyRate, "seconds", e.o.LatencySeconds)
	p, err := e.startCopier(ctx, copier, label, topic, latencyPartitions, s)
	if err != nil {
		return fail(err)
	}
	defer p.stop(10 * time.Second)

	prod, err := s.producer(e.src.addr, topic)
	if err != nil {
		return fail(fmt.Errorf("latency producer: %w", err))
	}
	defer prod.Close()
	m := newRecordMaker(s, 1)
	var seq int64
	next := func() *kgo.Record {
		r := m.record(seq)
		r.Partition = int32(seq % latencyPartitions)
		r.Timestamp = time.Now()
		seq++
		return r
	}

	// Wait until the copier delivers: probe records, left out of the
	// figures by the warm-up, until one reaches the destination.
	err = waitFor(ctx, 60*time.Second, 50*time.Millisecond, func() error {
		if err := p.exited(); err != nil {
			return stopWaiting{err}
		}
		if err := prod.ProduceSync(ctx, next()).FirstErr(); err != nil {
			return stopWaiting{fmt.Errorf("probe: %w", err)}
		}
		ends, err := e.dst.endOffsets(ctx, dt)
		if err != nil {
			return err
		}
		if sumEnds(ends) == 0 {
			return fmt.Errorf("%s: nothing copied yet", dt)
		}
		return nil
	})
	if err != nil {
		return fail(fmt.Errorf("%s not copying: %w", copier, err))
	}

	start := time.Now()
	from := start.Add(latencyWarmup)
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	srcR, err := startLatencyReader(readCtx, e.src.addr, topic, from)
	if err != nil {
		return fail(err)
	}
	defer srcR.close()
	dstR, err := startLatencyReader(readCtx, e.dst.addr, dt, from)
	if err != nil {
		return fail(err)
	}
	defer dstR.close()

	// Produce at the rate: every 2ms, whatever is due since start.
	perSec := e.o.LatencyRate * 1e6 / float64(s.recordSize)
	duration := time.Duration(e.o.LatencySeconds) * time.Second
	var (
		mu      sync.Mutex
		prodErr error
	)
	produced := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			prodErr = err
			mu.Unlock()
		}
	}
	var u0 usage
	var u0At time.Time
	first := seq
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for now := time.Now(); now.Sub(start) < duration; now = time.Now() {
		if u0At.IsZero() && !now.Before(from) {
			if u0, err = p.usage(); err != nil {
				return fail(err)
			}
			u0At = now
		}
		for due := first + int64(now.Sub(start).Seconds()*perSec); seq < due; {
			prod.Produce(ctx, next(), produced)
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-tick.C:
		}
	}
	sentFor := time.Since(start)
	if err := prod.Flush(ctx); err != nil {
		return fail(fmt.Errorf("latency producer: %w", err))
	}
	mu.Lock()
	err = prodErr
	mu.Unlock()
	if err != nil {
		return fail(fmt.Errorf("latency producer: %w", err))
	}
	res.RateMBPerSec = float64((seq-first)*int64(s.recordSize)) / 1e6 / sentFor.Seconds()

	want, err := e.src.endOffsets(ctx, topic)
	if err != nil {
		return fail(err)
	}
	err = waitFor(ctx, 60*time.Second, 50*time.Millisecond, func() error {
		if err := p.exited(); err != nil {
			return stopWaiting{err}
		}
		if !srcR.caughtUp(want) {
			return fmt.Errorf("source reader behind")
		}
		if !dstR.caughtUp(want) {
			return fmt.Errorf("destination reader behind")
		}
		return nil
	})
	if err != nil {
		return fail(fmt.Errorf("%s did not deliver every record: %w", copier, err))
	}
	u1, err := p.usage()
	if err != nil {
		return fail(err)
	}
	if !u0At.IsZero() {
		res.CopierCPUPercent = 100 * (u1.CPUSeconds - u0.CPUSeconds) / time.Since(u0At).Seconds()
	}
	res.PeakRSSMiB = float64(u1.PeakRSSBytes) / (1 << 20)
	stopReading()

	dl, sl := dstR.latencies(), srcR.latencies()
	res.Records = len(dl)
	res.P50Ms, res.P99Ms, res.MaxMs = ms(percentile(dl, 50)), ms(percentile(dl, 99)), ms(percentile(dl, 100))
	res.SourceP50Ms, res.SourceP99Ms, res.SourceMaxMs = ms(percentile(sl, 50)), ms(percentile(sl, 99)), ms(percentile(sl, 100))
	if !e.o.Keep {
		if err := e.src.deleteTopics(ctx, topic); err != nil {
			e.log.Warn("cleanup", "err", err)
		}
		if err := e.dst.deleteTopics(ctx, dt, "__strait_state_"+label); err != nil {
			e.log.Warn("cleanup", "err", err)
		}
	}
	return res
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// latencyReader consumes a topic from the start and records, for each
// record stamped at or after from, the time from its timestamp to its
// arrival.
type latencyReader struct {
	cl   *kgo.Client
	from time.Time
	done chan struct{}

	mu   sync.Mutex
	lat  []time.Duration
	next map[int32]int64 // partition: offset after the last record read
}

func startLatencyReader(ctx context.Context, addr, topic string, from time.Time) (*latencyReader, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return nil, fmt.Errorf("latency reader on %s: %w", topic, err)
	}
	r := &latencyReader{cl: cl, from: from, done: make(chan struct{}), next: map[int32]int64{}}
	go r.run(ctx)
	return r, nil
}

func (r *latencyReader) run(ctx context.Context) {
	defer close(r.done)
	for {
		fetches := r.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		// One clock reading per poll: the records of a fetch arrived
		// together.
		now := time.Now()
		r.mu.Lock()
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			for _, rec := range fp.Records {
				if !rec.Timestamp.Before(r.from) {
					r.lat = append(r.lat, now.Sub(rec.Timestamp))
				}
				r.next[rec.Partition] = rec.Offset + 1
			}
		})
		r.mu.Unlock()
	}
}

// caughtUp reports whether the reader has read every partition to ends.
func (r *latencyReader) caughtUp(ends map[int32]int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, e := range ends {
		if e > 0 && r.next[p] < e {
			return false
		}
	}
	return true
}

// latencies returns a copy of what was recorded.
func (r *latencyReader) latencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.lat...)
}

// close stops the reader; its context must be cancelled first or soon.
func (r *latencyReader) close() {
	r.cl.Close()
	<-r.done
}

package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Producing: a broker takes one batch per partition per produce request,
// and a worker copies one partition. Left alone, every worker would send
// its own one-batch request and wait for it. The sink puts the batches of
// many partitions that wait for the same destination broker into one
// request, and keeps up to sinkInflight requests out per broker.
//
// A partition may have several batches out at once (see worker.pipe);
// their idempotent sequences make the broker refuse, never misplace, a
// batch that arrives out of order, but a refusal costs a round of
// recovery. So the sink writes requests in the order it issues them: it
// issues the next only once kgo reports the one before written to the
// connection (a HookBrokerWrite on a client of its own, which nothing else
// produces through), and a broker answers a connection's requests in
// order.

// sinkInflight bounds the produce requests out per destination broker, and
// maxPipe the batches out per partition. Five is what a Kafka broker
// remembers per idempotent producer to recognise a resent batch.
const (
	sinkInflight = 5
	maxPipe      = 5
)

// sinkRequestBytes caps the batches of one produce request; a single
// larger batch still goes, alone.
const sinkRequestBytes = 4 << 20

// produceJob is one batch for one partition.
type produceJob struct {
	topic     string
	topicID   [16]byte
	partition int32
	leader    int32
	raw       []byte
	// done receives the outcome once; buffered.
	done chan produceResult
}

type produceResult struct {
	base int64 // the offset the destination gave the batch
	err  error
}

// sink sends produce jobs, per destination broker, in the order they come.
type sink struct {
	ctx     context.Context
	cl      *kgo.Client
	own     bool // cl is the sink's, to close
	timeout time.Duration
	obs     Observer

	mu      sync.Mutex
	brokers map[int32]*brokerSink
	wg      sync.WaitGroup

	// peakOut, peakPartitions and peakPipe are the most requests out at
	// once to one broker, partitions in one request and batches of one
	// partition out at once: what tests check the pipelining with.
	peakOut, peakPartitions, peakPipe atomic.Int32
}

func raise(peak *atomic.Int32, v int32) {
	for {
		old := peak.Load()
		if v <= old || peak.CompareAndSwap(old, v) {
			return
		}
	}
}

// newSink makes a sink producing with a client of its own, cloned from
// dest with the write hook added. If that client cannot be made it uses
// dest, one request per broker at a time, which needs no hook.
func newSink(ctx context.Context, dest *kgo.Client, timeout time.Duration, obs Observer) *sink {
	s := &sink{ctx: ctx, timeout: timeout, obs: obs, brokers: map[int32]*brokerSink{}}
	opts := append(append([]kgo.Opt{}, dest.Opts()...), kgo.WithHooks(writeHook{s}))
	if cl, err := kgo.NewClient(opts...); err == nil {
		s.cl, s.own = cl, true
	} else {
		s.cl = dest
	}
	return s
}

// close waits for the brokers' loops, which end with the sink's context,
// and closes the sink's client.
func (s *sink) close() {
	s.wg.Wait()
	if s.own {
		s.cl.Close()
	}
}

// writeHook tells a broker's loop that a produce request was written.
// Only a write that succeeded counts: kgo calls the hook for a failed write
// too and then writes the same request again on a new connection, and a
// signal for each would let the next request go before this one is on the
// wire, for good (one signal ahead per failure).
type writeHook struct{ s *sink }

func (h writeHook) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != 0 || err != nil { // Produce, written
		return
	}
	h.s.mu.Lock()
	b := h.s.brokers[meta.NodeID]
	h.s.mu.Unlock()
	if b != nil {
		select {
		case b.written <- struct{}{}:
		default:
		}
	}
}

// submit queues j for its leader; the outcome arrives on j.done.
func (s *sink) submit(j *produceJob) {
	j.done = make(chan produceResult, 1)
	s.mu.Lock()
	b := s.brokers[j.leader]
	if b == nil {
		b = &brokerSink{
			s:       s,
			node:    j.leader,
			wake:    make(chan struct{}, 1),
			written: make(chan struct{}, 2*sinkInflight),
			slots:   make(chan struct{}, sinkInflight),
		}
		if !s.own {
			b.slots = make(chan struct{}, 1)
		}
		s.brokers[j.leader] = b
		s.wg.Add(1)
		go b.loop()
	}
	s.mu.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		j.done <- produceResult{err: s.ctx.Err()}
		return
	}
	b.queue = append(b.queue, j)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// brokerSink sends the jobs for one destination broker.
type brokerSink struct {
	s       *sink
	node    int32
	wake    chan struct{}
	written chan struct{}
	slots   chan struct{} // one per request out

	mu     sync.Mutex
	queue  []*produceJob
	closed bool // the loop has ended: no job is taken any more
}

func (b *brokerSink) loop() {
	defer b.s.wg.Done()
	for {
		select {
		case <-b.wake:
		case <-b.s.ctx.Done():
			b.failQueued(b.s.ctx.Err())
			return
		}
		for {
			select {
			case b.slots <- struct{}{}:
			case <-b.s.ctx.Done():
				b.failQueued(b.s.ctx.Err())
				return
			}
			jobs := b.next()
			if len(jobs) == 0 {
				<-b.slots
				break
			}
			if len(b.slots) == 1 {
				// Nothing else is out: a signal still waiting is left over
				// from a request whose answer came first (a canceled
				// write), and must not release the next one early.
				for len(b.written) > 0 {
					<-b.written
				}
			}
			raise(&b.s.peakOut, int32(len(b.slots)))
			raise(&b.s.peakPartitions, int32(len(jobs)))
			sent := make(chan struct{})
			go func() {
				b.send(jobs)
				<-b.slots
				close(sent)
			}()
			if !b.s.own {
				continue // one request at a time: the slot orders them
			}
			// The next request goes out only after this one is on the
			// wire (or failed before it got there).
			select {
			case <-b.written:
			case <-sent:
				select {
				case <-b.written:
				default:
				}
			}
		}
	}
}

// next takes the queued jobs for one request: the oldest job of each
// partition, in queue order, up to sinkRequestBytes.
func (b *brokerSink) next() []*produceJob {
	b.mu.Lock()
	defer b.mu.Unlock()
	type tp struct {
		topic string
		p     int32
	}
	seen := map[tp]bool{}
	var jobs []*produceJob
	rest := b.queue[:0]
	size := 0
	for _, j := range b.queue {
		k := tp{j.topic, j.partition}
		if seen[k] || (len(jobs) > 0 && size+len(j.raw) > sinkRequestBytes) {
			seen[k] = true // keeps the partition's later jobs behind this one
			rest = append(rest, j)
			continue
		}
		seen[k] = true
		jobs = append(jobs, j)
		size += len(j.raw)
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	return jobs
}

func (b *brokerSink) failQueued(err error) {
	b.mu.Lock()
	q := b.queue
	b.queue, b.closed = nil, true
	b.mu.Unlock()
	for _, j := range q {
		j.done <- produceResult{err: err}
	}
}

// send produces jobs in one request and hands each its outcome.
func (b *brokerSink) send(jobs []*produceJob) {
	ctx, cancel := context.WithTimeout(b.s.ctx, b.s.timeout)
	defer cancel()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = int32(b.s.timeout / time.Millisecond)
	byTopic := map[string]int{}
	for _, j := range jobs {
		i, ok := byTopic[j.topic]
		if !ok {
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic, rt.TopicID = j.topic, j.topicID
			req.Topics = append(req.Topics, rt)
			i = len(req.Topics) - 1
			byTopic[j.topic] = i
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = j.partition, j.raw
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	start := time.Now()
	resp, err := req.RequestWith(ctx, b.s.cl.Broker(int(b.node)))
	b.s.obs.Request(OpProduce, time.Since(start), err)
	if err != nil {
		for _, j := range jobs {
			j.done <- produceResult{err: err}
		}
		return
	}
	// One pass over the response, not one per job: a request may carry
	// hundreds of partitions.
	type tp struct {
		topic     string
		partition int32
	}
	answers := make(map[tp]*kmsg.ProduceResponseTopicPartition, len(jobs))
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		name := t.Topic
		if name == "" { // v13+ answers by topic id
			for _, rt := range req.Topics {
				if rt.TopicID == t.TopicID {
					name = rt.Topic
				}
			}
		}
		for pi := range t.Partitions {
			answers[tp{name, t.Partitions[pi].Partition}] = &t.Partitions[pi]
			if code := t.Partitions[pi].ErrorCode; code != 0 {
				b.s.obs.Error(OpProduce, kerr.ErrorForCode(code))
			}
		}
	}
	for _, j := range jobs {
		if p := answers[tp{j.topic, j.partition}]; p != nil {
			j.done <- partitionResult(p, j)
		} else {
			j.done <- produceResult{err: errors.New("produce response without the partition")}
		}
	}
}

// findProduced picks j's partition out of a produce response.
func findProduced(resp *kmsg.ProduceResponse, j *produceJob) produceResult {
	for _, t := range resp.Topics {
		if t.Topic != j.topic && (t.TopicID == [16]byte{} || t.TopicID != j.topicID) {
			continue
		}
		for _, p := range t.Partitions {
			if p.Partition == j.partition {
				return partitionResult(&p, j)
			}
		}
	}
	return produceResult{err: errors.New("produce response without the partition")}
}

// partitionResult is j's outcome from its partition's answer.
func partitionResult(p *kmsg.ProduceResponseTopicPartition, j *produceJob) produceResult {
	if err := produceError(p, j.partition, len(j.raw)); err != nil {
		return produceResult{err: err}
	}
	return produceResult{base: p.BaseOffset}
}

// produceError turns a partition's produce error into what the worker acts
// on: fatal for a batch the destination will never take, plain otherwise.
func produceError(p *kmsg.ProduceResponseTopicPartition, partition int32, size int) error {
	err := kerr.ErrorForCode(p.ErrorCode)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.OutOfOrderSequenceNumber), errors.Is(err, kerr.UnknownProducerID), errors.Is(err, kerr.InvalidProducerEpoch):
		// Our producer state is gone on the broker, or a batch before
		// this one did not land; a fresh setup re-reads the end offset
		// and takes a new id.
		return fmt.Errorf("produce: %w", err)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fatal(ErrIllegalState, "partition %d: the destination refuses a %d-byte batch as too large (raise max.message.bytes on the mirror topic)", partition, size)
	case errors.Is(err, kerr.CorruptMessage), errors.Is(err, kerr.InvalidRecord):
		msg := ""
		if p.ErrorMessage != nil {
			msg = *p.ErrorMessage
		}
		return fatal(ErrIllegalState, "partition %d: the destination refuses the batch: %v %s", partition, err, msg)
	}
	return err
}

package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// shape is what a case's records and batches look like.
type shape struct {
	name       string // "large" or "small"
	recordSize int    // key plus value bytes
	keySize    int
	// textSize bytes at the start of each value repeat a phrase; the rest
	// is random, so a codec shrinks a record by about textSize bytes.
	textSize int
	codec    string // "lz4" or "none"
	// batchMaxBytes and linger are the generating producer's settings:
	// they decide how big the source batches are.
	batchMaxBytes int32
	linger        time.Duration
	// partitionMajor writes every record of partition 0, then of
	// partition 1, and so on, so each batch fills to batchMaxBytes even with
	// hundreds of partitions; otherwise records go round-robin over the
	// partitions, so one produce request carries a batch for every
	// partition (many small batches are written much faster that way).
	partitionMajor bool
}

// largeShape is 1 KiB records, mostly random so lz4 shrinks them by about
// an eighth only, in lz4 batches of up to 1 MiB.
func largeShape() shape {
	return shape{
		name: "large", recordSize: 1024, keySize: 16, textSize: 128, codec: "lz4",
		batchMaxBytes: 1 << 20, linger: 50 * time.Millisecond, partitionMajor: true,
	}
}

// smallShape is 100-byte records, uncompressed, about 10 to a batch: a
// batch of ten such records is about 1,150 bytes on the wire, and kgo closes
// a batch before it would pass batchMaxBytes.
func smallShape() shape {
	return shape{
		name: "small", recordSize: 100, keySize: 10, codec: "none",
		batchMaxBytes: 1160, linger: 0,
	}
}

// producer returns a client writing records of this shape to topic on
// the cluster at addr, partitioned by the records themselves.
func (s shape) producer(addr, topic string) (*kgo.Client, error) {
	return kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(s.compression()),
		kgo.ProducerBatchMaxBytes(s.batchMaxBytes),
		kgo.ProducerLinger(s.linger),
	)
}

// compression is the kgo codec for s.codec.
func (s shape) compression() kgo.CompressionCodec {
	if s.codec == "lz4" {
		return kgo.Lz4Compression()
	}
	return kgo.NoCompression()
}

const textPhrase = "strait bench record; "

// recordMaker builds benchmark records. It is not safe for concurrent use.
type recordMaker struct {
	s   shape
	rng *rand.ChaCha8
}

func newRecordMaker(s shape, seed uint64) *recordMaker {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return &recordMaker{s: s, rng: rand.NewChaCha8(key)}
}

// record returns record number i of the shape: a zero-padded decimal key
// and a value of repeated text then random bytes.
func (m *recordMaker) record(i int64) *kgo.Record {
	key := fmt.Appendf(make([]byte, 0, m.s.keySize), "%0*d", m.s.keySize, i)
	value := make([]byte, m.s.recordSize-len(key))
	t := min(m.s.textSize, len(value))
	for j := 0; j < t; {
		j += copy(value[j:t], textPhrase)
	}
	_, _ = m.rng.Read(value[t:]) // ChaCha8.Read never fails
	return &kgo.Record{Key: key, Value: value}
}

// generated describes the data of one case's source topic.
type generated struct {
	Records     int64
	RecordBytes int64 // sum of key and value lengths
	Batches     int64
	StoredBytes int64 // sum of batch sizes in the log, headers included
	Seconds     float64
}

// generate writes about totalBytes of records of shape s to topic, which
// has n partitions, spread evenly, and then counts the batches that were
// written.
func generate(ctx context.Context, src *cluster, topic string, n int, s shape, totalBytes int64) (generated, error) {
	start := time.Now()
	records := max(totalBytes/int64(s.recordSize), int64(n))
	cl, err := s.producer(src.addr, topic)
	if err != nil {
		return generated{}, fmt.Errorf("generator client: %w", err)
	}
	defer cl.Close()

	var (
		mu       sync.Mutex
		firstErr error
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	m := newRecordMaker(s, uint64(records))
	perPart := records / int64(n)
	var g generated
	for i := range records {
		r := m.record(i)
		if s.partitionMajor {
			r.Partition = int32(min(i/perPart, int64(n-1)))
		} else {
			r.Partition = int32(i % int64(n))
		}
		g.Records++
		g.RecordBytes += int64(len(r.Key) + len(r.Value))
		cl.Produce(ctx, r, done)
		if i%10000 == 0 {
			mu.Lock()
			err := firstErr
			mu.Unlock()
			if err != nil {
				break
			}
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return g, fmt.Errorf("generate %s: flush: %w", topic, err)
	}
	mu.Lock()
	err = firstErr
	mu.Unlock()
	if err != nil {
		return g, fmt.Errorf("generate %s: produce: %w", topic, err)
	}
	g.Seconds = time.Since(start).Seconds()

	ends, err := src.endOffsets(ctx, topic)
	if err != nil {
		return g, err
	}
	if sumEnds(ends) != g.Records {
		return g, fmt.Errorf("generate %s: produced %d records, topic holds %d", topic, g.Records, sumEnds(ends))
	}
	g.Batches, g.StoredBytes, err = countBatches(ctx, src, topic, ends)
	return g, err
}

// countBatches reads topic from the start to ends with raw fetches and
// counts its record batches and their bytes, reading only batch headers.
func countBatches(ctx context.Context, c *cluster, topic string, ends map[int32]int64) (batches, size int64, err error) {
	md, err := c.adm.Metadata(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return 0, 0, fmt.Errorf("metadata of %s: %v", topic, td.Err)
	}
	next := map[int32]int64{}
	for p := range ends {
		next[p] = 0
	}
	for {
		// One request per leader, for the partitions not read to the end.
		byLeader := map[int32][]int32{}
		for p, o := range next {
			if o < ends[p] {
				leader := td.Partitions[p].Leader
				byLeader[leader] = append(byLeader[leader], p)
			}
		}
		if len(byLeader) == 0 {
			return batches, size, nil
		}
		progress := false
		for leader, parts := range byLeader {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID = -1
			req.MaxBytes = 64 << 20
			req.SessionEpoch = -1
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = topic, td.ID
			for _, p := range parts {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, next[p], 8<<20
				rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, c.cl.Broker(int(leader)))
			if err != nil {
				return 0, 0, fmt.Errorf("fetch %s: %w", topic, err)
			}
			if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
				return 0, 0, fmt.Errorf("fetch %s: %w", topic, err)
			}
			for _, t := range resp.Topics {
				for _, rp := range t.Partitions {
					if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
						return 0, 0, fmt.Errorf("fetch %s/%d: %w", topic, rp.Partition, err)
					}
					n, sz, last, err := walkBatches(rp.RecordBatches)
					if err != nil {
						return 0, 0, fmt.Errorf("fetch %s/%d at %d: %w", topic, rp.Partition, next[rp.Partition], err)
					}
					if n == 0 {
						// The response's byte limit was reached before
						// this partition: it is read in a later round.
						continue
					}
					batches, size = batches+n, size+sz
					next[rp.Partition] = last + 1
					progress = true
				}
			}
		}
		if !progress {
			return 0, 0, fmt.Errorf("fetch %s: no complete batch in a round of fetches", topic)
		}
	}
}

// walkBatches walks the v2 record batches in a fetched record set: it
// returns how many complete batches there are, their bytes, and the last
// offset of the last one. A trailing partial batch (a fetch may cut one) is
// left out.
func walkBatches(b []byte) (n, size, lastOffset int64, err error) {
	// A batch starts with baseOffset int64 and batchLength int32 (the bytes
	// after the length); lastOffsetDelta is the int32 at byte 23.
	const headerLen = 12
	for len(b) >= headerLen {
		base := int64(binary.BigEndian.Uint64(b))
		length := int64(int32(binary.BigEndian.Uint32(b[8:])))
		if length < 49 { // the rest of a v2 header is 49 bytes
			return 0, 0, 0, errors.New("record batch shorter than its header")
		}
		total := headerLen + length
		if int64(len(b)) < total {
			break
		}
		lastOffset = base + int64(int32(binary.BigEndian.Uint32(b[23:])))
		n++
		size += total
		b = b[total:]
	}
	return n, size, lastOffset, nil
}
